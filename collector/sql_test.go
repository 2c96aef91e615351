package collector

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
)

func TestSQLMetrics(t *testing.T) {
	snap := facts.New(time.Now())
	snap.SQL["sqla"] = &facts.SQLInstance{
		Name: "sqla", Up: true, ExpectKerberos: true,
		AuthScheme: "KERBEROS", NetTransport: "TCP",
		MachineName: "SQLA", EngineAccount: `CORP\sqlsvc_a`,
		ListenerPorts: []int{1433, 51433},
		ClockSkew:     1500 * time.Millisecond, ClockMeasured: true,
		Connections: []facts.ConnectionCount{{NetTransport: "TCP", AuthScheme: "KERBEROS", Count: 3}, {NetTransport: "TCP", AuthScheme: "NTLM", Count: 2}},
		NTLMClients: []facts.NTLMClient{{Host: "WKS-1", Login: `CORP\alice`, Program: "SSMS", Connections: 2}},
	}
	snap.SQL["sqlc"] = &facts.SQLInstance{
		Name: "sqlc", Up: true, ExpectKerberos: true, AuthScheme: "NTLM", NetTransport: "TCP",
		UsedNTLMFallback: true, Local: true, PermissionErrors: []string{queryServiceAccounts},
	}
	snap.SQL["gone"] = &facts.SQLInstance{Name: "gone", Cause: "network"}
	c := snapshotMetrics{c: &sqlCollector{}, snap: snap}
	want := `
# HELP kerberos_sql_clock_skew_seconds Server clock minus exporter clock, corrected by half the round trip.
# TYPE kerberos_sql_clock_skew_seconds gauge
kerberos_sql_clock_skew_seconds{sql_instance="sqla"} 1.5
# HELP kerberos_sql_connect_error 1 for the cause of a failed login: login_failed, network, timeout, tls, kerberos or other.
# TYPE kerberos_sql_connect_error gauge
kerberos_sql_connect_error{cause="network",sql_instance="gone"} 1
# HELP kerberos_sql_connection_auth_scheme 1 for the auth_scheme of the exporter's own session (KERBEROS, NTLM, SQL).
# TYPE kerberos_sql_connection_auth_scheme gauge
kerberos_sql_connection_auth_scheme{auth_scheme="KERBEROS",sql_instance="sqla"} 1
kerberos_sql_connection_auth_scheme{auth_scheme="NTLM",sql_instance="sqlc"} 1
# HELP kerberos_sql_connection_net_transport 1 for the net_transport of the exporter's own session.
# TYPE kerberos_sql_connection_net_transport gauge
kerberos_sql_connection_net_transport{net_transport="TCP",sql_instance="sqla"} 1
kerberos_sql_connection_net_transport{net_transport="TCP",sql_instance="sqlc"} 1
# HELP kerberos_sql_connection_ntlm_fallback 1 when no Kerberos ticket could be had and the exporter logged in with NTLM, as a Windows client would.
# TYPE kerberos_sql_connection_ntlm_fallback gauge
kerberos_sql_connection_ntlm_fallback{sql_instance="sqla"} 0
kerberos_sql_connection_ntlm_fallback{sql_instance="sqlc"} 1
# HELP kerberos_sql_connections Connections to the instance by auth scheme and transport.
# TYPE kerberos_sql_connections gauge
kerberos_sql_connections{auth_scheme="KERBEROS",net_transport="TCP",sql_instance="sqla"} 3
kerberos_sql_connections{auth_scheme="NTLM",net_transport="TCP",sql_instance="sqla"} 2
# HELP kerberos_sql_expect_kerberos 1 when the configuration expects Kerberos on this instance.
# TYPE kerberos_sql_expect_kerberos gauge
kerberos_sql_expect_kerberos{sql_instance="gone"} 0
kerberos_sql_expect_kerberos{sql_instance="sqla"} 1
kerberos_sql_expect_kerberos{sql_instance="sqlc"} 1
# HELP kerberos_sql_exporter_is_local 1 when the exporter runs on the SQL Server host, where logins are always NTLM (auth scheme measurement void).
# TYPE kerberos_sql_exporter_is_local gauge
kerberos_sql_exporter_is_local{sql_instance="sqla"} 0
kerberos_sql_exporter_is_local{sql_instance="sqlc"} 1
# HELP kerberos_sql_listener_port 1 per TCP port the Database Engine listens on.
# TYPE kerberos_sql_listener_port gauge
kerberos_sql_listener_port{port="1433",sql_instance="sqla"} 1
kerberos_sql_listener_port{port="51433",sql_instance="sqla"} 1
# HELP kerberos_sql_ntlm_client_connections Connections over TCP with NTLM by client, top N (ntlm_clients_top).
# TYPE kerberos_sql_ntlm_client_connections gauge
kerberos_sql_ntlm_client_connections{client_host="WKS-1",login="CORP\\alice",program="SSMS",sql_instance="sqla"} 2
# HELP kerberos_sql_permission_denied 1 when a query failed for lack of a grant.
# TYPE kerberos_sql_permission_denied gauge
kerberos_sql_permission_denied{query="service_accounts",sql_instance="sqlc"} 1
# HELP kerberos_sql_server_info The names the server gives itself and the Database Engine's service account; constant 1.
# TYPE kerberos_sql_server_info gauge
kerberos_sql_server_info{instance_name="",machine_name="SQLA",service_account="CORP\\sqlsvc_a",sql_instance="sqla"} 1
# HELP kerberos_sql_up 1 if the exporter could log in to the SQL Server instance.
# TYPE kerberos_sql_up gauge
kerberos_sql_up{sql_instance="gone"} 0
kerberos_sql_up{sql_instance="sqla"} 1
kerberos_sql_up{sql_instance="sqlc"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}

func TestLinkedServerMetrics(t *testing.T) {
	snap := facts.New(time.Now())
	snap.LinkedServers["sqla"] = &facts.LinkedServers{Instance: "sqla", Readable: true, Servers: []facts.LinkedServer{
		{Name: "SQLB", Product: "SQL Server", Provider: "SQLNCLI", DataSource: "sqlb.corp.test", SelfMapped: true,
			Tested: true, TestOK: true, HopTested: true, HopOK: true, HopAuthScheme: "KERBEROS", HopTransport: "TCP", HopClockSkew: 90 * time.Second},
		{Name: "OLD", Provider: "MSOLEDBSQL", DataSource: "old.corp.test", FixedLogin: true},
	}}
	snap.LinkedServers["sqlc"] = &facts.LinkedServers{Instance: "sqlc", Readable: true, Servers: []facts.LinkedServer{
		{Name: "SQLB", Product: "SQL Server", Provider: "SQLNCLI", DataSource: "sqlb.corp.test", SelfMapped: true,
			Tested: true, ErrNumber: 18456, Cause: "delegation"},
	}}
	snap.LinkedServers["sqld"] = &facts.LinkedServers{Instance: "sqld", PermissionDenied: true}
	c := snapshotMetrics{c: linkedServerCollector{}, snap: snap}
	want := `
# HELP kerberos_linked_server_clock_skew_seconds Linked server's clock minus this instance's clock.
# TYPE kerberos_linked_server_clock_skew_seconds gauge
kerberos_linked_server_clock_skew_seconds{linked_server="SQLB",sql_instance="sqla"} 90
# HELP kerberos_linked_server_hop_auth_scheme 1 for the second hop's auth_scheme as the linked server saw it.
# TYPE kerberos_linked_server_hop_auth_scheme gauge
kerberos_linked_server_hop_auth_scheme{auth_scheme="KERBEROS",linked_server="SQLB",sql_instance="sqla"} 1
# HELP kerberos_linked_server_hop_net_transport 1 for the second hop's net_transport as the linked server saw it.
# TYPE kerberos_linked_server_hop_net_transport gauge
kerberos_linked_server_hop_net_transport{linked_server="SQLB",net_transport="TCP",sql_instance="sqla"} 1
# HELP kerberos_linked_server_info A linked server and where it points; constant 1.
# TYPE kerberos_linked_server_info gauge
kerberos_linked_server_info{data_source="old.corp.test",linked_server="OLD",product="",provider="MSOLEDBSQL",sql_instance="sqla"} 1
kerberos_linked_server_info{data_source="sqlb.corp.test",linked_server="SQLB",product="SQL Server",provider="SQLNCLI",sql_instance="sqla"} 1
kerberos_linked_server_info{data_source="sqlb.corp.test",linked_server="SQLB",product="SQL Server",provider="SQLNCLI",sql_instance="sqlc"} 1
# HELP kerberos_linked_server_self_mapped 1 if a login mapping forwards the caller's own identity (needs Kerberos delegation).
# TYPE kerberos_linked_server_self_mapped gauge
kerberos_linked_server_self_mapped{linked_server="OLD",sql_instance="sqla"} 0
kerberos_linked_server_self_mapped{linked_server="SQLB",sql_instance="sqla"} 1
kerberos_linked_server_self_mapped{linked_server="SQLB",sql_instance="sqlc"} 1
# HELP kerberos_linked_server_test_error SQL Server error number of a failed test; cause: delegation, login_failed, network, timeout, no_mapping or other.
# TYPE kerberos_linked_server_test_error gauge
kerberos_linked_server_test_error{cause="delegation",linked_server="SQLB",sql_instance="sqlc"} 18456
# HELP kerberos_linked_server_test_success 1 if sp_testlinkedserver succeeded, 0 if it failed (tested linked servers only).
# TYPE kerberos_linked_server_test_success gauge
kerberos_linked_server_test_success{linked_server="SQLB",sql_instance="sqla"} 1
kerberos_linked_server_test_success{linked_server="SQLB",sql_instance="sqlc"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}

func TestErrorLogMetrics(t *testing.T) {
	snap := facts.New(time.Now())
	snap.ErrorLogs["sqla"] = &facts.ErrorLog{Instance: "sqla", Readable: true, Registrations: []facts.SPNRegistration{
		{SPN: "MSSQLSvc/sqla.corp.test:1433", Registered: true},
	}}
	snap.ErrorLogs["sqlc"] = &facts.ErrorLog{Instance: "sqlc", Readable: true, Registrations: []facts.SPNRegistration{
		{SPN: "MSSQLSvc/sqlc.corp.test:1433", ReturnCode: "0x2098", State: 15},
	}}
	snap.ErrorLogs["sqld"] = &facts.ErrorLog{Instance: "sqld", PermissionDenied: true}
	c := snapshotMetrics{c: errorLogCollector{}, snap: snap}
	want := `
# HELP kerberos_sql_errorlog_readable 1 if the exporter may read the error log; 0 means SPN registration is unknown.
# TYPE kerberos_sql_errorlog_readable gauge
kerberos_sql_errorlog_readable{sql_instance="sqla"} 1
kerberos_sql_errorlog_readable{sql_instance="sqlc"} 1
kerberos_sql_errorlog_readable{sql_instance="sqld"} 0
# HELP kerberos_sql_spn_registration 1 for the last start-up's SPN registration result per SPN; state: registered or failed.
# TYPE kerberos_sql_spn_registration gauge
kerberos_sql_spn_registration{spn="MSSQLSvc/sqla.corp.test:1433",sql_instance="sqla",state="registered"} 1
kerberos_sql_spn_registration{spn="MSSQLSvc/sqlc.corp.test:1433",sql_instance="sqlc",state="failed"} 1
# HELP kerberos_sql_spn_registration_failure_code 1 for the Windows return code of a failed SPN registration (0x2098: the service account may not write its SPN).
# TYPE kerberos_sql_spn_registration_failure_code gauge
kerberos_sql_spn_registration_failure_code{return_code="0x2098",spn="MSSQLSvc/sqlc.corp.test:1433",sql_instance="sqlc"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}

func TestMatchInstance(t *testing.T) {
	instances := []config.SQLInstance{
		{Name: "sqla", Host: "sqla.corp.test", Port: 1433},
		{Name: "sqlb", Host: "sqlb.corp.test", NetBIOSName: "SQLB-NB", Address: "127.0.0.12", Port: 1433},
		{Name: "sqlc-default", Host: "sqlc.corp.test", Port: 1433},
		{Name: "sqlc-inst1", Host: "sqlc.corp.test", InstanceName: "INST1", Port: 50123},
		{Name: "ag", Host: "sqlnode1.corp.test", AGListener: "aglisten.corp.test", Port: 1433},
	}
	tests := map[string]string{
		"sqlb.corp.test":             "sqlb",
		"SQLB.CORP.TEST,1433":        "sqlb",
		"sqlb":                       "sqlb", // short host name
		"SQLB-NB":                    "sqlb", // NetBIOS name
		"127.0.0.12":                 "sqlb", // address
		`tcp:sqlb.corp.test\X,1433`:  "sqlb", // one candidate: no narrowing needed
		"sqlc.corp.test":             "sqlc-default",
		`sqlc\INST1`:                 "sqlc-inst1",
		"sqlc.corp.test,1433":        "sqlc-default",
		"aglisten.corp.test":         "ag",
		"unknown.corp.test":          "",
		"":                           "",
		`sqlc.corp.test\NOSUCH,4000`: "",
	}
	for ds, want := range tests {
		if got := matchInstance(sqlclient.ParseDataSource(ds), instances); got != want {
			t.Errorf("matchInstance(%q) = %q, want %q", ds, got, want)
		}
	}
}

func TestSelectedForTest(t *testing.T) {
	self := &facts.LinkedServer{Name: "SQLB", SelfMapped: true}
	fixed := &facts.LinkedServer{Name: "SQLB_FIXED", FixedLogin: true}
	if !selectedForTest(self, []string{"*"}) || selectedForTest(fixed, []string{"*"}) {
		t.Error(`"*" selects the self-mapped linked servers only`)
	}
	if !selectedForTest(fixed, []string{"*", "sqlb_fixed"}) {
		t.Error("a listed name selects its linked server, case-insensitively")
	}
	if selectedForTest(self, nil) {
		t.Error("nothing is tested unless listed")
	}
}

func TestForEachInstanceAbandonsStalledOnes(t *testing.T) {
	instances := []config.SQLInstance{{Name: "fast"}, {Name: "stalled"}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	defer close(release)
	got := forEachInstance(ctx, instances,
		func(ctx context.Context, inst *config.SQLInstance) string {
			if inst.Name == "stalled" {
				<-release // ignores ctx, as a stuck driver call would
			}
			return "done"
		},
		func(*config.SQLInstance) string { return "abandoned" })
	if got["fast"] != "done" || got["stalled"] != "abandoned" {
		t.Errorf("results = %v", got)
	}
}

func TestSessionWaitHonoursCallerContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c) // accept, then never answer
		}
	}()
	cfg := &config.Config{SQLInstances: []config.SQLInstance{{
		Name: "silent", Host: "silent.corp.test", Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port,
		Encrypt: "disable", Timeout: config.Duration(30 * time.Second),
		Auth: config.SQLAuth{Method: "sql", Username: "u", Password: config.NewSecret("p")},
	}}}
	p := NewSQLConnections(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for range 2 { // the second caller waits on the first caller's login attempt
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		_, err := p.Session(ctx, "silent")
		cancel()
		var ce *sqlclient.ConnectError
		if !errors.As(err, &ce) || ce.Cause != sqlclient.CauseTimeout || time.Since(start) > 2*time.Second {
			t.Fatalf("Session = %v after %s; want a prompt timeout", err, time.Since(start))
		}
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for a login in progress")
	}
	if _, err := p.Session(context.Background(), "silent"); err == nil {
		t.Error("a closed set must not open sessions")
	}
	if _, err := NewSQLConnections(cfg, slog.Default()).Session(context.Background(), "nosuch"); err == nil {
		t.Error("an unknown instance must be an error")
	}
}

func TestDetectLocal(t *testing.T) {
	var logs strings.Builder
	env := &Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	c := &sqlCollector{hostname: func() (string, error) { return "sqla.corp.test", nil }}
	for range 2 {
		f := &facts.SQLInstance{Name: "sqla", PhysicalNetBIOS: "SQLA"}
		c.detectLocal(env, f)
		if !f.Local {
			t.Fatal("SQLA is this machine (sqla.corp.test): the instance is local")
		}
	}
	if n := strings.Count(logs.String(), "runs on the SQL Server host"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
	for _, physical := range []string{"SQLB", ""} {
		f := &facts.SQLInstance{Name: "sqlb", PhysicalNetBIOS: physical}
		c.detectLocal(env, f)
		if f.Local {
			t.Errorf("physical NetBIOS %q on host sqla is not local", physical)
		}
	}
}
