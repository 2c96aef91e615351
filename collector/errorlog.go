package collector

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func init() {
	register("errorlog", PhaseSQL, true, func() Collector { return errorLogCollector{} })
}

// errorLogCollector reads whether each instance registered its SPNs at its
// last start-up (error log messages 26059 and 26067).
type errorLogCollector struct{}

func (errorLogCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	return storePerInstance(ctx, env, snap.ErrorLogs, errorLog)
}

// errorLog returns nil when the instance could not be asked at all (the sql
// collector reports why): registration is then unknown, not unreadable.
func errorLog(ctx context.Context, env *Env, inst *config.SQLInstance) (*facts.ErrorLog, error) {
	s, err := env.SQL.Session(ctx, inst.Name)
	if err != nil {
		return nil, nil
	}
	out := &facts.ErrorLog{Instance: inst.Name}
	qctx, cancel := withTimeout(ctx, inst.Timeout.Duration())
	defer cancel()
	regs, err := s.SPNRegistrations(qctx)
	if err != nil {
		return out, readFailed(inst.Name, err, &out.Error, &out.PermissionDenied)
	}
	out.Readable = true
	out.Registrations = regs
	return out, nil
}

// SPN registration states (metric label).
const (
	spnRegistered = "registered"
	spnFailed     = "failed"
)

var (
	errorLogReadableDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "errorlog_readable"),
		"1 if the exporter may read the error log; 0 means SPN registration is unknown.",
		[]string{"sql_instance"})
	spnRegistrationDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "spn_registration"),
		"1 for the last start-up's SPN registration result per SPN; state: registered or failed.",
		[]string{"sql_instance", "spn", "state"})
	spnRegistrationCodeDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "spn_registration_failure_code"),
		"1 for the Windows return code of a failed SPN registration (0x2098: the service account may not write its SPN).",
		[]string{"sql_instance", "spn", "return_code"})
)

func (errorLogCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for name, l := range snap.ErrorLogs {
		errorLogReadableDesc.send(ch, boolFloat(l.Readable), name)
		for _, r := range l.Registrations {
			if r.Registered {
				spnRegistrationDesc.send(ch, 1, name, r.SPN, spnRegistered)
				continue
			}
			spnRegistrationDesc.send(ch, 1, name, r.SPN, spnFailed)
			if r.ReturnCode != "" {
				spnRegistrationCodeDesc.send(ch, 1, name, r.SPN, r.ReturnCode)
			}
		}
	}
}
