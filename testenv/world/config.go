package world

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// Instance is a SQL instance of the world by its short host name, with
// its service account when the configuration should name one. Address,
// Port and Timeout, when set, point it at a SQL Server stand-in (which
// speaks no TLS: encrypt is then disabled).
type Instance struct{ Name, Account, Address, Port, Timeout string }

// Config loads, through the real loader, a configuration for the world's
// domain with the given SQL instances (host NAME.corp.test, NetBIOS name
// NAME, port 1433, service_account when given) and extra YAML.
func (w *World) Config(t testing.TB, instances []Instance, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "ldap-password")
	sqlpw := filepath.Join(dir, "sql-password")
	for file, secret := range map[string]string{pw: w.MonitorPassword, sqlpw: "Passw0rd!Sql1"} {
		if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `domains:
  - name: %s
    netbios_name: CORP
    domain_controllers: ["ldaps://%s", "ldaps://%s"]
    global_catalogs: ["ldaps://%s:3269"]
    tls: {ca_file: %s}
    bind: {method: simple, username: %s@%s, password: {file: %s}}
    timeout: 10s
    ntp_port: 123
sql_instances:
`, w.Domain, w.DC1, w.DC2, w.DC1, w.CACert, w.MonitorUser, w.Domain, pw)
	for _, inst := range instances {
		fmt.Fprintf(&b, "  - {name: %s, host: %s.%s, netbios_name: %s, auth: {method: sql, username: krbmon_sql, password: {file: %s}}",
			inst.Name, inst.Name, w.Domain, inst.Name, sqlpw)
		if inst.Address != "" {
			fmt.Fprintf(&b, ", address: %s, port: %s, encrypt: disable", inst.Address, inst.Port)
		}
		if inst.Timeout != "" {
			fmt.Fprintf(&b, ", timeout: %s", inst.Timeout)
		}
		if inst.Account != "" {
			fmt.Fprintf(&b, `, service_account: '%s'`, inst.Account)
		}
		b.WriteString("}\n")
	}
	b.WriteString(extra)
	cfg, err := config.Parse("world.yml", []byte(b.String()))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", b.String(), err)
	}
	return cfg
}
