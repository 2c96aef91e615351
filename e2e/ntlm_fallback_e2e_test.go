package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// The test's own account and SPN: other packages' tests use the shared
// fixtures of the same DC concurrently, so this test never touches them.
const (
	e2eAccount   = "e2esvc"
	e2ePassword  = "Passw0rd!E2e1"
	e2eHost      = "sqle2e.corp.test"
	e2eSPN       = "MSSQLSvc/sqle2e.corp.test:1433" // the one a TCP login asks for
	e2eSPNNoPort = "MSSQLSvc/sqle2e.corp.test"      // the other form SQL Server registers
	e2eInstance  = "sqle2e"
)

// alertWait bounds each wait for a notification: a collection cycle (5 s),
// a scrape (1 s), a rule evaluation (1 s), for: (2 s), Alertmanager's
// group_wait (1 s), with plenty of room for a slow machine.
const alertWait = 3 * time.Minute

// TestNTLMFallbackAlertEndToEnd breaks Kerberos for one SQL Server the way it
// breaks in the field (its SPN is deleted from the directory), and checks
// that the real exporter, Prometheus with the real rule file and
// Alertmanager page KerberosSQLNTLMFallback to a webhook; then restores the
// SPN and checks that the alert resolves.
func TestNTLMFallbackAlertEndToEnd(t *testing.T) {
	requireTool(t, "prometheus")
	requireTool(t, "prometheus-alertmanager")
	w := world.ForTest(t)

	keytab := createServiceAccount(t, w)
	sqlAddr := startE2EStandIn(t, w, keytab)

	hook := startWebhook(t)
	am := startAlertmanager(t, hook.URL+"/hook")
	exp := startExporter(t, e2eExporterConfig(t, w, sqlAddr))
	rules := shortenedRules(t, 2*time.Second)
	prom := startPrometheus(t, prometheusConfig{ExporterAddr: exp.Addr, RuleFiles: []string{rules}, AlertmanagerAddr: am.Addr})

	fallback := map[string]string{"alertname": "KerberosSQLNTLMFallback", "check": "first_hop_ntlm", "target": e2eInstance, "severity": "page"}

	// Before: Kerberos works, nothing pages.
	waitFor(t, "the exporter's login to sqle2e is Kerberos", alertWait, exp.process, func() (bool, string) {
		ok, _ := queryHas(prom, fmt.Sprintf(`kerberos_sql_connection_auth_scheme{sql_instance=%q, auth_scheme="KERBEROS"} == 1`, e2eInstance))
		_, scheme := queryHas(prom, fmt.Sprintf(`kerberos_sql_connection_auth_scheme{sql_instance=%q} == 1`, e2eInstance))
		return ok, "auth scheme " + scheme
	})
	if hook.alertSeen("firing", fallback) {
		t.Fatalf("KerberosSQLNTLMFallback fired while Kerberos worked: %s", hook.summary())
	}

	// Break: no SPN, no ticket; the exporter falls back to NTLM like Windows' Negotiate.
	samba(t, w, "spn", "delete", e2eSPN, e2eAccount)
	waitFor(t, "KerberosSQLNTLMFallback firing at the webhook", alertWait, exp.process, func() (bool, string) {
		if hook.alertSeen("firing", fallback) {
			return true, ""
		}
		_, scheme := queryHas(prom, fmt.Sprintf(`kerberos_sql_connection_auth_scheme{sql_instance=%q} == 1`, e2eInstance))
		_, alerts := queryHas(prom, `ALERTS{alertname="KerberosSQLNTLMFallback"}`)
		return false, fmt.Sprintf("auth scheme %s; ALERTS %s; webhook %s", scheme, alerts, hook.summary())
	})
	t.Logf("paged: %s", hook.summary())

	// Restore: the SPN is back, Kerberos works again, the alert resolves.
	samba(t, w, "spn", "add", e2eSPN, e2eAccount)
	waitFor(t, "KerberosSQLNTLMFallback resolved at the webhook", alertWait, exp.process, func() (bool, string) {
		if hook.alertSeen("resolved", fallback) {
			return true, ""
		}
		_, scheme := queryHas(prom, fmt.Sprintf(`kerberos_sql_connection_auth_scheme{sql_instance=%q} == 1`, e2eInstance))
		return false, fmt.Sprintf("auth scheme %s; webhook %s", scheme, hook.summary())
	})
	t.Logf("resolved: %s", hook.summary())
}

// queryHas reports whether expr returns a series now, and what it returned.
func queryHas(prom *prometheusServer, expr string) (bool, string) {
	r, err := prom.query(expr)
	if err != nil {
		return false, err.Error()
	}
	if r.Status != "success" {
		return false, r.ErrorType + ": " + r.Error
	}
	var parts []string
	for _, s := range r.Data.Result {
		parts = append(parts, fmt.Sprint(s.Metric))
	}
	return len(r.Data.Result) > 0, "[" + strings.Join(parts, " ") + "]"
}

// samba runs samba-tool against the world's DC and fails the test on error.
func samba(t *testing.T, w *world.World, args ...string) string {
	t.Helper()
	out, err := w.SambaTool(args...)
	if err != nil {
		t.Fatalf("samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// createServiceAccount makes the test's own service account with its SPN and
// exports its keytab; the account (and with it the SPN) is deleted when the
// test ends. An account left by an earlier, killed run is deleted first.
func createServiceAccount(t *testing.T, w *world.World) string {
	t.Helper()
	_, _ = w.SambaTool("user", "delete", e2eAccount) // leftover of a killed run, if any
	samba(t, w, "user", "add", e2eAccount, e2ePassword)
	t.Cleanup(func() {
		if out, err := w.SambaTool("user", "delete", e2eAccount); err != nil {
			t.Errorf("deleting the test account %s: %v\n%s", e2eAccount, err, out)
		}
	})
	samba(t, w, "spn", "add", e2eSPN, e2eAccount)
	samba(t, w, "spn", "add", e2eSPNNoPort, e2eAccount)
	keytab := filepath.Join(t.TempDir(), e2eAccount+".keytab")
	for _, principal := range []string{e2eAccount, e2eSPN, e2eSPNNoPort} {
		samba(t, w, "domain", "exportkeytab", keytab, "--principal="+principal)
	}
	return keytab
}

// freeLoopbackSQLAddr finds a loopback address whose port 1433 is free, so
// that the SPN keeps its usual port and no running stand-in is disturbed.
func freeLoopbackSQLAddr(t *testing.T, third int) string {
	t.Helper()
	for last := 20; last < 250; last++ {
		addr := fmt.Sprintf("127.0.%d.%d:1433", third, last)
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatalf("no free port 1433 on 127.0.%d.20-249", third)
	return ""
}

// startE2EStandIn serves testdata/sqle2e.scenario.yml on a free loopback
// address until the test ends.
func startE2EStandIn(t *testing.T, w *world.World, keytab string) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "sqle2e.scenario.yml"))
	if err != nil {
		t.Fatal(err)
	}
	listen := freeLoopbackSQLAddr(t, 78)
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]string{
		"Listen": listen, "Account": e2eAccount, "Keytab": keytab, "Realm": w.Realm, "Krb5Conf": w.Krb5Conf, "SPN": e2eSPN,
	}); err != nil {
		t.Fatal(err)
	}
	sc, err := tdsserver.ParseScenario("sqle2e.yml", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tdsserver.Start(sc, tdsserver.Options{Logf: func(format string, args ...any) { t.Logf("sqle2e: "+format, args...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr()
}

// writeSecret writes a password file for the exporter's configuration.
func writeSecret(t *testing.T, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// e2eExporterConfig watches the test's one stand-in, logging in with
// Kerberos and falling back to NTLM like a Windows client, and reads the
// directory through DC1.
func e2eExporterConfig(t *testing.T, w *world.World, sqlAddr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(sqlAddr)
	if err != nil {
		t.Fatal(err)
	}
	pw := writeSecret(t, w.MonitorPassword)
	return fmt.Sprintf(`global:
  collection_interval: 5s
  collector_timeout: 5s
kerberos:
  realm: %[1]s
  krb5_config: %[2]s
  principal: %[3]s@%[1]s
  keytab_file: %[4]s
domains:
  - name: %[5]s
    netbios_name: %[14]s
    domain_controllers: [ldaps://%[6]s:636]
    tls: {ca_file: %[7]s}
    bind: {method: simple, username: %[3]s@%[5]s, password: {file: %[8]s}}
    ntp: false
sql_instances:
  - name: %[9]s
    host: %[10]s
    address: %[11]s
    port: %[12]s
    domain: %[5]s
    service_account: %[14]s\%[13]s
    auth:
      method: kerberos
      ntlm_fallback: true
      password: {file: %[8]s}
    encrypt: disable
    timeout: 4s
`, w.Realm, w.Krb5Conf, w.MonitorUser, w.MonitorKeytab, w.Domain, w.DC1, w.CACert, pw,
		e2eInstance, e2eHost, host, port, e2eAccount, w.NetBIOS)
}

// shortenedRules copies alerts/*.rules.yml into one file with every for:
// set to d, so that the real expressions fire within seconds.
func shortenedRules(t *testing.T, d time.Duration) string {
	t.Helper()
	var all yaml.Node
	for i, p := range ruleFilePaths(t) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		setFor(&doc, d.String())
		if i == 0 {
			all = doc
			continue
		}
		// append this file's groups to the first file's
		mappingValue(all.Content[0], "groups").Content = append(mappingValue(all.Content[0], "groups").Content,
			mappingValue(doc.Content[0], "groups").Content...)
	}
	out, err := yaml.Marshal(&all)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// setFor sets the value of every "for" key under n.
func setFor(n *yaml.Node, value string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "for" {
				n.Content[i+1].Value = value
			}
		}
	}
	for _, c := range n.Content {
		setFor(c, value)
	}
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return &yaml.Node{}
}
