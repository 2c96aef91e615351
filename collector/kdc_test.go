package collector

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/kdc"
)

func TestKDCMetrics(t *testing.T) {
	snap := facts.New(time.Now())
	snap.Tickets = []facts.TicketProbe{
		{Target: "sqla", SPN: "MSSQLSvc/sqla.corp.test:1433", Realm: "CORP.TEST", OK: true},
		{Target: "sqlc", SPN: "MSSQLSvc/sqlc.corp.test:1433", Realm: "CORP.TEST", ErrorCode: 7, ErrorName: "KDC_ERR_S_PRINCIPAL_UNKNOWN", Error: "service ticket for MSSQLSvc/sqlc.corp.test:1433: KRB Error: (7)"},
		{Target: "sqld", SPN: "MSSQLSvc/sqld.corp.test:1433", Realm: "CORP.TEST", Error: "service ticket for MSSQLSvc/sqld.corp.test:1433: connection refused"},
	}
	c := snapshotMetrics{kdcCollector{}, snap}
	want := `
# HELP kerberos_kdc_ticket_error_code KRB-ERROR code the KDC answered to the service-ticket request (7 principal unknown, 37 clock skew, ...), 0 on success; absent when the request failed without a KRB-ERROR (network, timeout).
# TYPE kerberos_kdc_ticket_error_code gauge
kerberos_kdc_ticket_error_code{spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 0
kerberos_kdc_ticket_error_code{spn="MSSQLSvc/sqlc.corp.test:1433",target="sqlc"} 7
# HELP kerberos_kdc_ticket_success Whether the KDC issued a service ticket for the SPN to the exporter's own principal (1) or not (0).
# TYPE kerberos_kdc_ticket_success gauge
kerberos_kdc_ticket_success{spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 1
kerberos_kdc_ticket_success{spn="MSSQLSvc/sqlc.corp.test:1433",target="sqlc"} 0
kerberos_kdc_ticket_success{spn="MSSQLSvc/sqld.corp.test:1433",target="sqld"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}

func TestTicketProbeFromResult(t *testing.T) {
	got := ticketProbe("sqlc", kdc.Result{
		SPN: "MSSQLSvc/sqlc.corp.test:1433", Realm: "CORP.TEST",
		ErrorCode: 7, ErrorName: "KDC_ERR_S_PRINCIPAL_UNKNOWN", Err: errors.New("principal unknown"),
	})
	want := facts.TicketProbe{
		Target: "sqlc", SPN: "MSSQLSvc/sqlc.corp.test:1433", Realm: "CORP.TEST",
		ErrorCode: 7, ErrorName: "KDC_ERR_S_PRINCIPAL_UNKNOWN", Error: "principal unknown",
	}
	if got != want {
		t.Errorf("ticketProbe = %+v, want %+v", got, want)
	}
	if ok := ticketProbe("sqla", kdc.Result{SPN: "x/y", OK: true}); !ok.OK || ok.Error != "" {
		t.Errorf("ticketProbe of a success = %+v, want OK and no error", ok)
	}
}

// Without a principal, or with probe: false, the collector asks nothing and
// succeeds; its service list would otherwise make it open a session.
func TestKDCCollectorIdleWithoutPrincipal(t *testing.T) {
	off := false
	for _, k := range []config.Kerberos{
		{},
		{Principal: "krbmon@CORP.TEST", Password: config.NewSecret("x"), Krb5Config: "/nonexistent/krb5.conf", Probe: &off},
	} {
		cfg := &config.Config{
			Kerberos: k,
			Services: []config.Service{{Name: "crm", Account: `CORP\crmweb`, SPNs: []string{"HTTP/crm.corp.test"}}},
		}
		snap := facts.New(time.Now())
		env := &Env{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
		if err := (kdcCollector{}).Update(context.Background(), env, snap); err != nil {
			t.Errorf("principal %q probe %v: Update = %v, want nil", k.Principal, k.Probe, err)
		}
		if len(snap.Tickets) != 0 {
			t.Errorf("principal %q probe %v: %d tickets probed, want none", k.Principal, k.Probe, len(snap.Tickets))
		}
	}
}

func TestKDCCollectorFailsOnUnusableCredentials(t *testing.T) {
	cfg := &config.Config{
		Kerberos: config.Kerberos{Principal: "krbmon@CORP.TEST", Krb5Config: "/nonexistent/krb5.conf", Password: config.NewSecret("x")},
		Services: []config.Service{{Name: "crm", Account: `CORP\crmweb`, SPNs: []string{"HTTP/crm.corp.test"}}},
	}
	env := &Env{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
	err := (kdcCollector{}).Update(context.Background(), env, facts.New(time.Now()))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/krb5.conf") {
		t.Errorf("Update = %v, want an error naming the krb5 configuration", err)
	}
}
