package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// dashboardVars are the values the live tests give the dashboards'
// variables: the job the test's Prometheus scrapes and an instance regex or
// name.
func dashboardVars(sqlInstance string) map[string]string {
	return map[string]string{"datasource": "prometheus", "job": "kerberos_exporter", "sql_instance": sqlInstance}
}

// TestDashboardQueriesParse sends every panel and variable expression, with
// the Grafana variables substituted, to a real Prometheus: a syntax error
// comes back as bad_data. Nothing needs to be scraped for that.
func TestDashboardQueriesParse(t *testing.T) {
	prom := startPrometheus(t, prometheusConfig{ExporterAddr: freeAddr(t)})
	queries := append(dashboardQueries(t), variableQueries(t)...)
	for _, q := range queries {
		expr := substitute(q.Expr, dashboardVars("sqla"))
		if m := labelValuesCall.FindStringSubmatch(expr); m != nil {
			expr = m[1] // label_values(selector, label) is Grafana's, not PromQL
		}
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a variable is left after substitution: %s", q, expr)
			continue
		}
		r, err := prom.query(expr)
		switch {
		case err != nil:
			t.Errorf("%s: %v", q, err)
		case r.Status != "success":
			t.Errorf("%s: Prometheus refuses it (%s: %s)\n%s", q, r.ErrorType, r.Error, expr)
		}
	}
	t.Logf("%d expressions parsed by %s", len(queries), prom.URL)
}

// worldInstances are the test world's scenarios the dashboard test watches:
// SQL A (correct, linked to B with delegation), B (linked-server target, clock
// ahead), C (no SPN: NTLM clients, failed registration, ANONYMOUS hop), D
// (SPN on the wrong account) and a server that accepts TCP and never
// answers (a failed login).
var worldInstances = []string{"sqla", "sqlb", "sqlc", "sqld", "stall"}

// startWorldStandIns serves the world's scenarios on 127.0.<third>.x:1433
// instead of 127.0.0.x:1433, so that the test disturbs no stand-in another
// test runs, and keeps port 1433 so that the SPNs are the usual ones. Linked
// servers are redirected to the moved addresses. It returns each
// instance's address.
func startWorldStandIns(t *testing.T, w *world.World, third int) map[string]string {
	t.Helper()
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	move := func(addr string) string {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || !strings.HasPrefix(host, "127.0.0.") {
			t.Fatalf("scenario address %q is not on 127.0.0.x", addr)
		}
		return fmt.Sprintf("127.0.%d.%s", third, net.JoinHostPort(strings.TrimPrefix(host, "127.0.0."), port))
	}
	var scenarios []*tdsserver.Scenario
	addrs := map[string]string{}
	for _, name := range worldInstances {
		sc, err := tdsserver.LoadScenario(filepath.Join(repoRoot(t), "testenv", "scenarios", name+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		sc.Listen = move(sc.Listen)
		for i := range sc.LinkedServers {
			sc.LinkedServers[i].Connect = move(sc.LinkedServers[i].Connect)
		}
		if ln, err := net.Listen("tcp", sc.Listen); err != nil {
			t.Fatalf("%s: %s is taken: %v", name, sc.Listen, err)
		} else {
			ln.Close()
		}
		addrs[name] = sc.Listen
		scenarios = append(scenarios, sc)
	}
	g, err := tdsserver.StartGroup(scenarios, tdsserver.GroupOptions{Logf: func(string, ...any) {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return addrs
}

// worldExporterConfig watches the world's instances, its directory through
// both DCs (DC2's clock is skewed), the web front end's SPNs and the
// delegated users, like a production configuration would.
func worldExporterConfig(t *testing.T, w *world.World, addrs map[string]string) string {
	t.Helper()
	pw := writeSecret(t, w.MonitorPassword)
	var b strings.Builder
	fmt.Fprintf(&b, `global:
  collection_interval: 10s
  collector_timeout: 10s
kerberos:
  realm: %[1]s
  krb5_config: %[2]s
  principal: %[3]s@%[1]s
  keytab_file: %[4]s
domains:
  - name: %[5]s
    netbios_name: %[10]s
    domain_controllers: [ldaps://%[6]s:636, ldaps://%[7]s:636]
    tls: {ca_file: %[8]s}
    bind: {method: simple, username: %[3]s@%[5]s, password: {file: %[9]s}}
    ntp: false
services:
  - name: crm-web
    account: %[10]s\crmweb
    spns: [HTTP/crm.%[5]s, HTTP/crm]
    hosts: [crm.%[5]s]
  # DNS aliases: crmalias -> crm (healthy), reports -> rptnode1 (SPN only for the alias)
  - name: crm-alias
    account: %[10]s\crmweb
    spns: [HTTP/crmalias.%[5]s]
    hosts: [crmalias.%[5]s]
  - name: reports
    account: %[10]s\rptweb
    spns: [HTTP/reports.%[5]s]
    hosts: [reports.%[5]s]
  # an old SQL service account with an RC4 key only
  - name: sqlold
    account: %[10]s\sqlsvc_old
    spns: [MSSQLSvc/sqlold.%[5]s:1433]
delegated_principals:
  users: ['%[10]s\alice', '%[10]s\bob', '%[10]s\carol']
dns:
  servers: ['%[11]s']
sql_instances:
`, w.Realm, w.Krb5Conf, w.MonitorUser, w.MonitorKeytab, w.Domain, w.DC1, w.DC2, w.CACert, pw, w.NetBIOS, w.DNSServer())
	for _, name := range worldInstances {
		host, port, err := net.SplitHostPort(addrs[name])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, `  - name: %[1]s
    host: %[1]s.%[2]s
    netbios_name: %[3]s
    address: %[4]s
    port: %[5]s
    auth:
      method: kerberos
      ntlm_fallback: true
      password: {file: %[6]s}
    encrypt: disable
    timeout: 3s
    linked_servers: {test: ["*"], timeout: 3s}
`, name, w.Domain, strings.ToUpper(name), host, port, pw)
	}
	return b.String()
}

// TestDashboardsAgainstExporter runs the real exporter on the test world,
// scraped by a real Prometheus, and checks (b) that every panel expression
// returns data and (c) that every metric a panel or an alerting rule uses is
// one the exporter exposes.
func TestDashboardsAgainstExporter(t *testing.T) {
	requireTool(t, "prometheus")
	w := world.ForTest(t)
	addrs := startWorldStandIns(t, w, 77)
	exp := startExporter(t, worldExporterConfig(t, w, addrs))
	prom := startPrometheus(t, prometheusConfig{ExporterAddr: exp.Addr})

	// Two collection cycles scraped: enough for every gauge to be there.
	waitFor(t, "two collection cycles in Prometheus", 2*time.Minute, exp.process, func() (bool, string) {
		r, err := prom.query(`changes(kerberos_exporter_last_collection_timestamp_seconds[5m])`)
		if err != nil || r.Status != "success" || len(r.Data.Result) == 0 {
			return false, fmt.Sprintf("%v %s", err, r.Error)
		}
		return fmt.Sprint(r.Data.Result[0].Value[1]) >= "1", fmt.Sprint(r.Data.Result[0].Value)
	})

	t.Run("panels return data", func(t *testing.T) {
		for _, q := range dashboardQueries(t) {
			// The fleet overview with every instance selected; the drill-down
			// with one instance at a time: some panels only have data for
			// some instances (NTLM clients on C, linked servers on A and C).
			candidates := []string{".*"}
			if strings.Contains(q.Expr, `"$sql_instance"`) || strings.Contains(q.Expr, `"$sql_instance(`) {
				candidates = worldInstances
			}
			var tried []string
			ok := false
			for _, inst := range candidates {
				expr := substitute(q.Expr, dashboardVars(inst))
				n, err := prom.seriesCount(expr)
				if err != nil {
					t.Errorf("%s: %v\n%s", q, err, expr)
					break
				}
				if n > 0 {
					ok = true
					break
				}
				tried = append(tried, inst)
			}
			if !ok {
				t.Errorf("%s: no data for sql_instance in %v:\n%s", q, tried, q.Expr)
			}
		}
	})

	t.Run("metric names exposed", func(t *testing.T) {
		exposed := exp.metricNamesExposed(t)
		used := map[string][]string{}
		for _, q := range append(dashboardQueries(t), variableQueries(t)...) {
			expr := q.Expr
			if m := labelValuesCall.FindStringSubmatch(expr); m != nil {
				expr = m[1]
			}
			for _, n := range metricNames(substitute(expr, dashboardVars("x"))) {
				used[n] = append(used[n], q.String())
			}
		}
		for _, r := range loadRules(t) {
			exprs := []string{r.Expr}
			for _, a := range r.Annotations {
				exprs = append(exprs, templateQueries(a)...)
			}
			for _, e := range exprs {
				for _, n := range metricNames(e) {
					used[n] = append(used[n], "rule "+r.Alert+r.Record)
				}
			}
		}
		for _, n := range sortedKeys(keysOfSlices(used)) {
			if prometheusOwnMetrics[n] || strings.Contains(n, ":") {
				continue // up, and the rules' own recording rules
			}
			if !exposed[n] {
				if why, ok := conditionalMetrics[n]; ok {
					t.Logf("%s: not exposed in this world (%s)", n, why)
					continue
				}
				t.Errorf("%s, used by %s, is not in the exporter's /metrics", n, strings.Join(used[n], "; "))
			}
		}
	})
}

// conditionalMetrics are exposed only in situations the test world does not
// have; the names are still checked against docs/metrics.md.
var conditionalMetrics = map[string]string{
	"kerberos_sql_permission_denied": "only while a query is refused for lack of a grant; the stand-ins grant every query",
}

func keysOfSlices(m map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}
