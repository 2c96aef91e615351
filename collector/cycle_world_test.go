package collector

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// A SQL Server that accepts TCP and never answers (the stall stand-in,
// with a two-minute login timeout) must not hold the other instances'
// directory work: their expected SPNs are looked up in the real Samba DC
// while the stalled login is still waiting.
func TestWorldStalledInstanceDelaysOnlyItself(t *testing.T) {
	w := world.ForTest(t)
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	g := startStandIns(t, "sqlb", "sqld", "stall")

	dir := t.TempDir()
	pw := filepath.Join(dir, "ldap-password")
	sqlpw := filepath.Join(dir, "sql-password")
	for file, secret := range map[string]string{pw: w.MonitorPassword, sqlpw: "Passw0rd!Sql1"} {
		if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global:
  collection_interval: 10m
  collector_timeout: 5m
domains:
  - name: %s
    netbios_name: CORP
    domain_controllers: ["ldaps://%s"]
    global_catalogs: ["ldaps://%s:3269"]
    tls: {ca_file: %s}
    bind: {method: simple, username: %s@%s, password: {file: %s}}
    timeout: 10s
sql_instances:
`, w.Domain, w.DC1, w.DC1, w.CACert, w.MonitorUser, w.Domain, pw)
	for _, name := range []string{"sqlb", "stall", "sqld"} {
		host, port, _ := net.SplitHostPort(g.Server(name).Addr())
		timeout := "10s"
		if name == "stall" {
			timeout = "2m"
		}
		fmt.Fprintf(&b, "  - {name: %s, host: %s.%s, address: %s, port: %s, encrypt: disable, timeout: %s, auth: {method: sql, username: krbmon_sql, password: {file: %s}}}\n",
			name, name, w.Domain, host, port, timeout, sqlpw)
	}
	cfg, err := config.Parse("stall.yml", []byte(b.String()))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", b.String(), err)
	}

	mine := []string{"sql", "linkedserver", "errorlog", "spn"}
	for _, name := range Names() {
		was := *registrations[name].enabled
		t.Cleanup(func() { SetEnabled(name, was) })
		if err := SetEnabled(name, slices.Contains(mine, name)); err != nil {
			t.Fatal(err)
		}
	}
	r := NewRunner(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	events := make(chan string, 100)
	r.progress = func(stage, instance string) { events <- stage + " " + instance }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Result)
	go func() { done <- r.RunOnce(ctx) }()
	waiting := map[string]bool{"directory sqlb": true, "directory sqld": true}
	guard := time.After(3 * time.Minute) // against hanging, not a speed check
	for len(waiting) > 0 {
		select {
		case ev := <-events:
			if ev == "sql stall" {
				t.Fatalf("the stalled login ended before the directory work of %v", waiting)
			}
			delete(waiting, ev)
		case <-guard:
			t.Fatalf("no %v", waiting)
		}
	}
	cancel() // the stalled login has made its point
	res := <-done

	for _, name := range []string{"sqlb", "sqld"} {
		if f := res.Snapshot.SQL[name]; f == nil || !f.Up {
			t.Errorf("%s: sql facts %+v, want up", name, f)
		}
	}
	holders := map[string][]string{}
	for _, e := range res.Snapshot.SPNs {
		if e.Target != "stall" && e.LookupError != "" {
			t.Errorf("%s %s: %s", e.Target, e.SPN, e.LookupError)
		}
		holders[e.Target+" "+e.SPN] = e.Holders
	}
	for key, want := range map[string][]string{
		"sqlb MSSQLSvc/sqlb.corp.test:1433": {`CORP\sqlsvc_b`},
		"sqld MSSQLSvc/sqld.corp.test:1433": {`CORP\wrongacct`},
	} {
		if got, ok := holders[key]; !ok || !slices.Equal(got, want) {
			t.Errorf("%s: holders %q (looked up: %v), want %q", key, got, ok, want)
		}
	}
	if f := res.Snapshot.SQL["stall"]; f == nil || f.Up {
		t.Errorf("stall: sql facts %+v, want down", f)
	}
}
