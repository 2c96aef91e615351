package collector

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/kdc"
)

func init() {
	register("kdc", PhaseDirectory, true, func() Collector { return kdcCollector{} })
}

var (
	kdcTicketSuccessDesc = newGauge(
		prometheus.BuildFQName(Namespace, "kdc", "ticket_success"),
		"Whether the KDC issued a service ticket for the SPN to the exporter's own principal (1) or not (0).",
		[]string{"target", "spn"})
	kdcTicketErrorCodeDesc = newGauge(
		prometheus.BuildFQName(Namespace, "kdc", "ticket_error_code"),
		"KRB-ERROR code the KDC answered to the service-ticket request (7 principal unknown, 37 clock skew, ...), 0 on success; absent when the request failed without a KRB-ERROR (network, timeout).",
		[]string{"target", "spn"})
)

// kdcCollector asks the KDC, as a client would, for a service ticket for
// every expected SPN: the proof that the SPN exists once, on an account the
// KDC can issue tickets for, and that the clocks agree.
type kdcCollector struct{}

func (kdcCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	k := &env.Config.Kerberos
	if k.Principal == "" || (k.Probe != nil && !*k.Probe) {
		return nil
	}
	type probeKey struct{ target, spn string }
	var todo []probeKey
	seen := map[probeKey]bool{}
	for _, t := range expectedTargets(env, snap) {
		for _, spn := range t.SPNs {
			key := probeKey{t.Name, spn}
			if !seen[key] {
				seen[key] = true
				todo = append(todo, key)
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	// A fresh session per cycle: one login, and no service ticket kept from
	// the last cycle, so a removed SPN fails now.
	session, err := kdc.Open(k)
	if err != nil {
		return err
	}
	defer session.Close()
	tickets := make([]facts.TicketProbe, 0, len(todo))
	for _, p := range todo {
		tickets = append(tickets, ticketProbe(p.target, session.Probe(ctx, p.spn)))
	}
	snap.Tickets = tickets
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kdc probes of %d SPNs did not all finish: %w", len(todo), err)
	}
	return nil
}

func ticketProbe(target string, r kdc.Result) facts.TicketProbe {
	p := facts.TicketProbe{
		Target:    target,
		SPN:       r.SPN,
		Realm:     r.Realm,
		OK:        r.OK,
		ErrorCode: r.ErrorCode,
		ErrorName: r.ErrorName,
	}
	if r.Err != nil {
		p.Error = r.Err.Error()
	}
	return p
}

func (kdcCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for _, p := range snap.Tickets {
		kdcTicketSuccessDesc.send(ch, boolFloat(p.OK), p.Target, p.SPN)
		if p.OK || p.ErrorCode != 0 {
			kdcTicketErrorCodeDesc.send(ch, float64(p.ErrorCode), p.Target, p.SPN)
		}
	}
}
