package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/kdc"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
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

// kdcWorldConfig is the world with the exporter's own Kerberos identity
// (krbmon's keytab) against krb5Conf, and services holding the fixture SPNs.
func kdcWorldConfig(t *testing.T, w *world.World, krb5Conf string) *config.Config {
	t.Helper()
	return worldConfig(t, w, []worldInstance{{"sqla", `CORP\sqlsvc_a`}}, fmt.Sprintf(`kerberos:
  principal: %s@%s
  krb5_config: %s
  keytab_file: %s
services:
  - {name: svc_a, account: 'CORP\sqlsvc_a', spns: ["MSSQLSvc/sqla.corp.test:1433"]}
  - {name: svc_c, account: 'CORP\sqlsvc_c', spns: ["MSSQLSvc/sqlc.corp.test:1433"]}
  - {name: dup, account: 'CORP\sqldup1', spns: ["MSSQLSvc/sqldup.corp.test:1433"]}
  - {name: crm, account: 'crmweb@corp.test', spns: [HTTP/crm.corp.test]}
`, w.MonitorUser, w.Realm, krb5Conf, w.MonitorKeytab))
}

// servicesOnly drops the SQL instances' probes, whose SPN list is the spn
// package's business, so that the metrics can be compared exactly.
func servicesOnly(snap *facts.Snapshot) *facts.Snapshot {
	out := facts.New(snap.Started)
	for _, p := range snap.Tickets {
		if p.Target != "sqla" {
			out.Tickets = append(out.Tickets, p)
		}
	}
	return out
}

func TestWorldKDCCollector(t *testing.T) {
	w := world.ForTest(t)
	cfg := kdcWorldConfig(t, w, w.Krb5Conf)
	snap := facts.New(time.Now())
	if err := (kdcCollector{}).Update(context.Background(), worldEnv(cfg), snap); err != nil {
		t.Fatalf("Update: %v", err)
	}
	// The SQL instance's own SPNs are probed too.
	var sqlaProbed bool
	for _, p := range snap.Tickets {
		if p.Target == "sqla" && p.SPN == "MSSQLSvc/sqla.corp.test:1433" {
			sqlaProbed = p.OK
		}
	}
	if !sqlaProbed {
		t.Errorf("no successful probe of MSSQLSvc/sqla.corp.test:1433 for sql instance sqla in %+v", snap.Tickets)
	}
	c := snapshotMetrics{kdcCollector{}, servicesOnly(snap)}
	// dup: Samba answers 7 for an SPN held by two accounts.
	want := `
# HELP kerberos_kdc_ticket_error_code KRB-ERROR code the KDC answered to the service-ticket request (7 principal unknown, 37 clock skew, ...), 0 on success; absent when the request failed without a KRB-ERROR (network, timeout).
# TYPE kerberos_kdc_ticket_error_code gauge
kerberos_kdc_ticket_error_code{spn="HTTP/crm.corp.test",target="crm"} 0
kerberos_kdc_ticket_error_code{spn="MSSQLSvc/sqla.corp.test:1433",target="svc_a"} 0
kerberos_kdc_ticket_error_code{spn="MSSQLSvc/sqlc.corp.test:1433",target="svc_c"} 7
kerberos_kdc_ticket_error_code{spn="MSSQLSvc/sqldup.corp.test:1433",target="dup"} 7
# HELP kerberos_kdc_ticket_success Whether the KDC issued a service ticket for the SPN to the exporter's own principal (1) or not (0).
# TYPE kerberos_kdc_ticket_success gauge
kerberos_kdc_ticket_success{spn="HTTP/crm.corp.test",target="crm"} 1
kerberos_kdc_ticket_success{spn="MSSQLSvc/sqla.corp.test:1433",target="svc_a"} 1
kerberos_kdc_ticket_success{spn="MSSQLSvc/sqlc.corp.test:1433",target="svc_c"} 0
kerberos_kdc_ticket_success{spn="MSSQLSvc/sqldup.corp.test:1433",target="dup"} 0
# HELP kerberos_kdc_session_key_etype Encryption type of the session key the KDC chose for the SPN's ticket from the types the exporter offered; always 1, absent when no ticket was issued.
# TYPE kerberos_kdc_session_key_etype gauge
kerberos_kdc_session_key_etype{etype="aes256-cts-hmac-sha1-96",spn="HTTP/crm.corp.test",target="crm"} 1
kerberos_kdc_session_key_etype{etype="aes256-cts-hmac-sha1-96",spn="MSSQLSvc/sqla.corp.test:1433",target="svc_a"} 1
# HELP kerberos_kdc_ticket_etype Encryption type of the service ticket the KDC issued for the SPN (chosen from the service account's keys; rc4-hmac is Kerberoastable and refused once DCs enforce AES); always 1, absent when no ticket was issued.
# TYPE kerberos_kdc_ticket_etype gauge
kerberos_kdc_ticket_etype{etype="aes256-cts-hmac-sha1-96",spn="MSSQLSvc/sqla.corp.test:1433",target="svc_a"} 1
kerberos_kdc_ticket_etype{etype="rc4-hmac",spn="HTTP/crm.corp.test",target="crm"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, snapshotMetrics{kdcCollector{}, snap})
}

// Against the DC whose clock is 7 minutes ahead, every probe reports 37.
func TestWorldKDCCollectorSkewedDC(t *testing.T) {
	w := world.ForTest(t)
	cfg := kdcWorldConfig(t, w, w.Krb5ConfSkewed)
	snap := facts.New(time.Now())
	if err := (kdcCollector{}).Update(context.Background(), worldEnv(cfg), snap); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if len(snap.Tickets) == 0 {
		t.Fatal("no probes")
	}
	for _, p := range snap.Tickets {
		if p.OK || p.ErrorCode != 37 || p.ErrorName != "KRB_AP_ERR_SKEW" {
			t.Errorf("%s %s: ok=%v code=%d %s (%s); want 37 KRB_AP_ERR_SKEW", p.Target, p.SPN, p.OK, p.ErrorCode, p.ErrorName, p.Error)
		}
	}
	want := `
# HELP kerberos_kdc_ticket_error_code KRB-ERROR code the KDC answered to the service-ticket request (7 principal unknown, 37 clock skew, ...), 0 on success; absent when the request failed without a KRB-ERROR (network, timeout).
# TYPE kerberos_kdc_ticket_error_code gauge
kerberos_kdc_ticket_error_code{spn="HTTP/crm.corp.test",target="crm"} 37
kerberos_kdc_ticket_error_code{spn="MSSQLSvc/sqla.corp.test:1433",target="svc_a"} 37
kerberos_kdc_ticket_error_code{spn="MSSQLSvc/sqlc.corp.test:1433",target="svc_c"} 37
kerberos_kdc_ticket_error_code{spn="MSSQLSvc/sqldup.corp.test:1433",target="dup"} 37
`
	c := snapshotMetrics{kdcCollector{}, servicesOnly(snap)}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "kerberos_kdc_ticket_error_code"); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}
