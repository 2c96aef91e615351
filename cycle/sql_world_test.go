package cycle

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// The SQL side end to end: the real go-mssqldb driver against the TDS
// stand-ins of testenv/scenarios, with real tickets from the Samba DC.
func TestSQLCollectorsAgainstStandIns(t *testing.T) {
	w := world.ForTest(t)
	t.Setenv(tdsserver.TestenvDirVar, w.Dir) // the scenarios' keytab paths
	g := startStandIns(t, "sqla", "sqlb", "sqlc", "sqld", "stall")
	cfg := integrationConfig(t, w, g)
	r := sqlOnlyRunner(t, cfg)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewExporter(r))

	res := r.RunOnce(context.Background())
	for _, name := range []string{"sql", "linkedserver", "errorlog"} {
		if st := res.Status[name]; !st.Success {
			t.Errorf("collector %s failed: %s", name, st.Error)
		}
	}
	m := gatherMetrics(t, reg)

	t.Run("kerberos on both hops", func(t *testing.T) {
		m.want(t, 1, "kerberos_sql_up", "sql_instance", "sqla")
		m.want(t, 1, "kerberos_sql_connection_auth_scheme", "sql_instance", "sqla", "auth_scheme", "KERBEROS")
		m.want(t, 1, "kerberos_sql_connection_net_transport", "sql_instance", "sqla", "net_transport", "TCP")
		m.want(t, 0, "kerberos_sql_connection_ntlm_fallback", "sql_instance", "sqla")
		m.want(t, 0, "kerberos_sql_exporter_is_local", "sql_instance", "sqla")
		m.want(t, 1, "kerberos_sql_expect_kerberos", "sql_instance", "sqla")
		m.want(t, 1, "kerberos_sql_server_info", "sql_instance", "sqla", "machine_name", "SQLA", "instance_name", "", "service_account", `CORP\sqlsvc_a`)
		m.want(t, 1, "kerberos_sql_listener_port", "sql_instance", "sqla", "port", "1433")
		// APP01's two sessions and the exporter's own; BATCH02's SQL login.
		m.wantAtLeast(t, 3, "kerberos_sql_connections", "sql_instance", "sqla", "auth_scheme", "KERBEROS", "net_transport", "TCP")
		m.want(t, 1, "kerberos_sql_connections", "sql_instance", "sqla", "auth_scheme", "SQL", "net_transport", "TCP")
		m.absent(t, "kerberos_sql_connections", "sql_instance", "sqla", "auth_scheme", "NTLM")
		m.wantNear(t, 0, 2, "kerberos_sql_clock_skew_seconds", "sql_instance", "sqla")
		m.want(t, 1, "kerberos_linked_server_self_mapped", "sql_instance", "sqla", "linked_server", "SQLB")
		m.want(t, 1, "kerberos_linked_server_test_success", "sql_instance", "sqla", "linked_server", "SQLB")
		m.want(t, 1, "kerberos_linked_server_hop_auth_scheme", "sql_instance", "sqla", "linked_server", "SQLB", "auth_scheme", "KERBEROS")
		m.want(t, 1, "kerberos_linked_server_hop_net_transport", "sql_instance", "sqla", "linked_server", "SQLB", "net_transport", "TCP")
		if got := linkedServer(t, res, "sqla", "SQLB").TargetInstance; got != "sqlb" {
			t.Errorf("SQLB's target instance = %q, want sqlb", got)
		}
		m.want(t, 1, "kerberos_sql_errorlog_readable", "sql_instance", "sqla")
		m.want(t, 1, "kerberos_sql_spn_registration", "sql_instance", "sqla", "spn", "MSSQLSvc/sqla.corp.test:1433", "state", "registered")
	})

	t.Run("clock skew between A and B", func(t *testing.T) {
		m.wantNear(t, 90, 5, "kerberos_linked_server_clock_skew_seconds", "sql_instance", "sqla", "linked_server", "SQLB")
		m.wantNear(t, 90, 5, "kerberos_sql_clock_skew_seconds", "sql_instance", "sqlb")
	})

	t.Run("fixed remote login", func(t *testing.T) {
		m.want(t, 0, "kerberos_linked_server_self_mapped", "sql_instance", "sqla", "linked_server", "SQLB_FIXED")
		m.want(t, 1, "kerberos_linked_server_test_success", "sql_instance", "sqla", "linked_server", "SQLB_FIXED")
		m.want(t, 1, "kerberos_linked_server_hop_auth_scheme", "sql_instance", "sqla", "linked_server", "SQLB_FIXED", "auth_scheme", "SQL")
		m.absent(t, "kerberos_linked_server_test_error", "sql_instance", "sqla", "linked_server", "SQLB_FIXED")
		if ls := linkedServer(t, res, "sqla", "SQLB_FIXED"); !ls.FixedLogin || ls.SelfMapped {
			t.Errorf("SQLB_FIXED: fixed %v, self-mapped %v; want a fixed login only", ls.FixedLogin, ls.SelfMapped)
		}
	})

	t.Run("hostile linked server name", func(t *testing.T) {
		const hostile = "we]ird'name; --"
		m.want(t, 1, "kerberos_linked_server_info", "sql_instance", "sqla", "linked_server", hostile,
			"product", "", "provider", "MSOLEDBSQL", "data_source", "sqlb.corp.test")
		m.want(t, 1, "kerberos_linked_server_test_success", "sql_instance", "sqla", "linked_server", hostile)
		m.want(t, 1, "kerberos_linked_server_hop_auth_scheme", "sql_instance", "sqla", "linked_server", hostile, "auth_scheme", "SQL")
	})

	t.Run("missing SPN: NTLM fallback on hop 1, anonymous hop 2", func(t *testing.T) {
		m.want(t, 1, "kerberos_sql_up", "sql_instance", "sqlc")
		m.want(t, 1, "kerberos_sql_connection_auth_scheme", "sql_instance", "sqlc", "auth_scheme", "NTLM")
		m.want(t, 1, "kerberos_sql_connection_ntlm_fallback", "sql_instance", "sqlc")
		if f := res.Snapshot.SQL["sqlc"]; f.KerberosErrorCode != 7 {
			t.Errorf("sqlc: KDC error %d (%s), want 7 (principal unknown)", f.KerberosErrorCode, f.KerberosError)
		}
		m.want(t, 3, "kerberos_sql_ntlm_client_connections", "sql_instance", "sqlc", "client_host", "APP07", "login", `CORP\svc_report`, "program", "Report Server")
		m.want(t, 1, "kerberos_sql_listener_port", "sql_instance", "sqlc", "port", "51433")
		m.want(t, 0, "kerberos_linked_server_test_success", "sql_instance", "sqlc", "linked_server", "SQLB")
		m.want(t, 18456, "kerberos_linked_server_test_error", "sql_instance", "sqlc", "linked_server", "SQLB", "cause", "delegation")
		m.absent(t, "kerberos_linked_server_hop_auth_scheme", "sql_instance", "sqlc")
	})

	t.Run("failed SPN registration", func(t *testing.T) {
		m.want(t, 1, "kerberos_sql_spn_registration", "sql_instance", "sqlc", "spn", "MSSQLSvc/sqlc.corp.test:1433", "state", "failed")
		m.want(t, 1, "kerberos_sql_spn_registration_failure_code", "sql_instance", "sqlc", "spn", "MSSQLSvc/sqlc.corp.test:1433", "return_code", "0x2098")
	})

	t.Run("error log not readable", func(t *testing.T) {
		m.want(t, 1, "kerberos_sql_up", "sql_instance", "sqld")
		m.want(t, 0, "kerberos_sql_errorlog_readable", "sql_instance", "sqld")
		m.absent(t, "kerberos_sql_spn_registration", "sql_instance", "sqld")
		if l := res.Snapshot.ErrorLogs["sqld"]; !l.PermissionDenied {
			t.Errorf("sqld: error log %+v; want permission denied", l)
		}
	})

	t.Run("refused connection", func(t *testing.T) {
		m.want(t, 0, "kerberos_sql_up", "sql_instance", "refused")
		m.want(t, 1, "kerberos_sql_connect_error", "sql_instance", "refused", "cause", "network")
		m.absent(t, "kerberos_sql_errorlog_readable", "sql_instance", "refused")
	})

	t.Run("stalled server", func(t *testing.T) {
		m.want(t, 0, "kerberos_sql_up", "sql_instance", "stall")
		m.want(t, 1, "kerberos_sql_connect_error", "sql_instance", "stall", "cause", "timeout")
		for _, other := range []string{"sqla", "sqlb", "sqlc", "sqld"} {
			m.want(t, 1, "kerberos_sql_up", "sql_instance", other)
		}
	})

	t.Run("scrape during a stalled cycle", func(t *testing.T) {
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		defer srv.Close()
		cycle := make(chan struct{})
		go func() { r.RunOnce(context.Background()); close(cycle) }()
		defer func() { <-cycle }()
		time.Sleep(300 * time.Millisecond) // let the cycle reach the stalled server
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape: status %d, %v", resp.StatusCode, err)
		}
		if !bytes.Contains(body, []byte(`kerberos_sql_up{sql_instance="sqla"} 1`)) {
			t.Errorf("the scrape must serve the last completed cycle, got:\n%s", body)
		}
		select {
		case <-cycle:
			t.Log("note: the second cycle had already ended when the scrape returned")
		default:
		}
	})

	t.Run("promlint", func(t *testing.T) {
		requireLintClean(t, NewExporter(r))
	})
}

// startStandIns starts scenarios from testenv/scenarios on free ports of
// their own loopback addresses.
func startStandIns(t testing.TB, names ...string) *tdsserver.Group {
	t.Helper()
	var scs []*tdsserver.Scenario
	for _, n := range names {
		sc, err := tdsserver.LoadScenario(filepath.Join("..", "testenv", "scenarios", n+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	g, err := tdsserver.StartGroup(scs, tdsserver.GroupOptions{EphemeralPorts: true, Logf: t.Logf, HopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// integrationConfig is a configuration file as an operator would write it;
// the stand-ins listen on ephemeral ports, so each instance names the SPN
// its server really registers (port 1433).
var integrationConfigTemplate = template.Must(template.New("cfg").Parse(`
global:
  collection_interval: 60s
  collector_timeout: 30s
sql_instances:
{{- range .Instances}}
  - name: {{.Name}}
    host: {{.Name}}.corp.test
    address: {{.IP}}
    port: {{.Port}}
    encrypt: disable
    timeout: {{.Timeout}}
    auth:
{{- if eq .Auth "kerberos"}}
      method: kerberos
      username: {{$.User}}
      realm: {{$.Realm}}
      krb5_config: {{$.Krb5Conf}}
      server_spn: MSSQLSvc/{{.Name}}.corp.test:1433
{{- if .Fallback}}
      password: {env: KRBMON_PASSWORD}
      ntlm_fallback: true
{{- else}}
      keytab_file: {{$.Keytab}}
{{- end}}
{{- else}}
      method: sql
      username: krbmon_sql
      password: {env: KRBMON_SQL_PASSWORD}
{{- end}}
    linked_servers:
      test: ["*", "SQLB_FIXED", "we]ird'name; --"]
      timeout: 10s
{{- end}}
`))

type integrationInstance struct {
	Name, IP, Timeout, Auth string
	Port                    int
	Fallback                bool
}

func integrationConfig(t *testing.T, w *world.World, g *tdsserver.Group) *config.Config {
	t.Helper()
	t.Setenv("KRBMON_PASSWORD", w.MonitorPassword)
	t.Setenv("KRBMON_SQL_PASSWORD", "Passw0rd!Sql1")
	at := func(name string) (string, int) {
		s := g.Server(name)
		if s == nil {
			t.Fatalf("no stand-in %s", name)
		}
		a := s.Addr()
		host, port, _ := net.SplitHostPort(a)
		var p int
		fmt.Sscan(port, &p)
		return host, p
	}
	inst := func(name, auth string, fallback bool, timeout string) integrationInstance {
		ip, port := at(name)
		return integrationInstance{Name: name, IP: ip, Port: port, Auth: auth, Fallback: fallback, Timeout: timeout}
	}
	// A loopback port where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	data := map[string]any{
		"User": w.MonitorUser, "Realm": w.Realm, "Krb5Conf": w.Krb5Conf, "Keytab": w.MonitorKeytab,
		"Instances": []integrationInstance{
			inst("sqla", "kerberos", false, "10s"),
			inst("sqlb", "sql", false, "10s"),
			inst("sqlc", "kerberos", true, "10s"),
			inst("sqld", "sql", false, "10s"),
			{Name: "refused", IP: "127.0.0.1", Port: refusedPort, Auth: "sql", Timeout: "5s"},
			inst("stall", "sql", false, "2s"),
		},
	}
	var buf bytes.Buffer
	if err := integrationConfigTemplate.Execute(&buf, data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config:\n%s\n%v", buf.String(), err)
	}
	return cfg
}

// sqlOnlyRunner runs the SQL collectors and nothing else; the previous
// selection is restored when the test ends.
func sqlOnlyRunner(t *testing.T, cfg *config.Config) *Runner {
	t.Helper()
	mine := []string{"sql", "linkedserver", "errorlog"}
	onlyCollectors(t, mine...)
	return NewRunner(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
}

func linkedServer(t *testing.T, res *Result, instance, name string) facts.LinkedServer {
	t.Helper()
	if l := res.Snapshot.LinkedServers[instance]; l != nil {
		for _, ls := range l.Servers {
			if ls.Name == name {
				return ls
			}
		}
	}
	t.Fatalf("%s has no linked server %q in the facts", instance, name)
	return facts.LinkedServer{}
}

// gathered is every sample the registry served, for lookups by labels.
type gathered []*dto.MetricFamily

func gatherMetrics(t *testing.T, g prometheus.Gatherer) gathered {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// find returns the samples of name whose labels include the given pairs.
func (m gathered) find(name string, labels ...string) []float64 {
	var out []float64
	for _, mf := range m {
		if mf.GetName() != name {
			continue
		}
	samples:
		for _, metric := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range metric.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if v, ok := have[labels[i]]; !ok || v != labels[i+1] {
					continue samples
				}
			}
			out = append(out, metric.GetGauge().GetValue())
		}
	}
	return out
}

func (m gathered) want(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	got := m.find(name, labels...)
	if len(got) != 1 || got[0] != want {
		t.Errorf("%s%v = %v, want exactly one sample %v", name, labels, got, want)
	}
}

func (m gathered) wantNear(t *testing.T, want, tolerance float64, name string, labels ...string) {
	t.Helper()
	got := m.find(name, labels...)
	if len(got) != 1 || math.Abs(got[0]-want) > tolerance {
		t.Errorf("%s%v = %v, want one sample within %v of %v", name, labels, got, tolerance, want)
	}
}

func (m gathered) wantAtLeast(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	got := m.find(name, labels...)
	if len(got) != 1 || got[0] < want {
		t.Errorf("%s%v = %v, want one sample of at least %v", name, labels, got, want)
	}
}

func (m gathered) absent(t *testing.T, name string, labels ...string) {
	t.Helper()
	if got := m.find(name, labels...); len(got) > 0 {
		t.Errorf("%s%v = %v, want no sample", name, labels, got)
	}
}

// onlyCollectors enables the named collectors and no other; the previous
// selection is restored when the test ends.
func onlyCollectors(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range collector.Names() {
		was := collector.IsEnabled(name)
		t.Cleanup(func() { collector.SetEnabled(name, was) })
		if err := collector.SetEnabled(name, slices.Contains(names, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func requireLintClean(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
