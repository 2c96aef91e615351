package cycle

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

func discoveryConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "s3cret")
	cfg, err := config.Parse("discovery.yml", []byte(`domains:
  - name: corp.test
    domain_controllers: [ldaps://dc1.corp.test]
    bind: {username: krbmon@corp.test, password: {env: KERBEROS_EXPORTER_TEST_PASSWORD}}
sql_instances:
  - {name: sql01, host: sql01.corp.test, auth: {method: windows}}
  - {name: named, host: sqln.corp.test, instance_name: RED, auth: {method: windows}}
discovery:
  include: ["*.corp.test*"]
  exclude: ["test-*"]
  template:
    auth: {method: sql, username: krbmon_sql, password: {env: KERBEROS_EXPORTER_TEST_PASSWORD}}
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestInstancesFromSPNs(t *testing.T) {
	cfg := discoveryConfig(t, "")
	var found []foundSPN
	for _, s := range []string{
		"MSSQLSvc/sql01.corp.test:1433", // configured as sql01: the configuration wins
		"MSSQLSvc/sql02.corp.test:1433", "MSSQLSvc/SQL02.corp.test", "MSSQLSvc/sql02:1433", "MSSQLSvc/sql02",
		"MSSQLSvc/sql03.corp.test:BLUE", "MSSQLSvc/sql03.corp.test:50123", // one named instance, its port from the Browser
		"MSSQLSvc/sql04.corp.test:green", // the Browser does not answer
		"MSSQLSvc/sql05.corp.test:1500",
		"MSSQLSvc/sql06.corp.test", // a default instance's bare SPN
		"MSSQLSvc/test-01.corp.test:1433",
		"MSSQLSvc/sql07.other.test:1433",
		"MSSQLSvc/sqln.corp.test:RED", // configured as named
		`MSSQLSvc/evil"host.corp.test:1433`, "MSSQLSvc/sql08.corp.test:BAD$NAME", "MSSQLSvc/sql09.corp.test:1433/extra",
		"HTTP/web.corp.test",
	} {
		found = append(found, foundSPN{spn: s, domain: "corp.test"})
	}
	browse := func(_ context.Context, host, instance string) (int, error) {
		if host == "sql03.corp.test" && instance == "BLUE" {
			return 50123, nil
		}
		return 0, errors.New("no answer")
	}
	got := instancesFromSPNs(context.Background(), cfg, found, slog.New(slog.DiscardHandler), browse)
	type inst struct {
		name, host string
		port       int
		instance   string
	}
	var names []inst
	for _, s := range got {
		names = append(names, inst{s.Name, s.Host, s.Port, s.InstanceName})
		if !s.Discovered || s.Auth.Username != "krbmon_sql" || s.Auth.Password.Value() != "s3cret" || s.Domain != "corp.test" || s.Encrypt != "true" {
			t.Errorf("%s: not made from the template: %+v", s.Name, s)
		}
	}
	want := []inst{
		{"sql02.corp.test", "sql02.corp.test", 1433, ""},
		{"sql03.corp.test:BLUE", "sql03.corp.test", 50123, "BLUE"},
		{"sql04.corp.test:GREEN", "sql04.corp.test", 0, "GREEN"},
		{"sql05.corp.test:1500", "sql05.corp.test", 1500, ""},
		{"sql06.corp.test", "sql06.corp.test", 1433, ""},
	}
	if !slices.Equal(names, want) {
		t.Errorf("discovered\n%v\nwant\n%v", names, want)
	}
}

func TestWithDiscoveredKeepsTheConfigurationFirst(t *testing.T) {
	cfg := discoveryConfig(t, "")
	discovered := []config.SQLInstance{
		cfg.InstanceFromTemplate("sql01.corp.test", "sql01.corp.test", 1433, "", "corp.test"), // now configured
		cfg.InstanceFromTemplate("sql02.corp.test", "sql02.corp.test", 1433, "", "corp.test"),
	}
	merged := withDiscovered(cfg, discovered)
	var names []string
	for _, s := range merged.SQLInstances {
		names = append(names, s.Name)
	}
	if want := []string{"sql01", "named", "sql02.corp.test"}; !slices.Equal(names, want) {
		t.Errorf("instances %q, want %q", names, want)
	}
	if len(cfg.SQLInstances) != 2 {
		t.Error("withDiscovered changed the configuration it was given")
	}
}

// A reload that changes the discovery settings drops the instances found
// under the old ones at once (their template's credentials, the old
// patterns), even while the directory cannot be searched; a reload that
// leaves discovery alone keeps them until the next search.
func TestReloadDropsInstancesOfOldDiscoverySettings(t *testing.T) {
	cfg := discoveryConfig(t, "")
	r := NewRunner(cfg, slog.New(slog.DiscardHandler))
	found := cfg.InstanceFromTemplate("sql02.corp.test", "sql02.corp.test", 1433, "", "corp.test")
	r.discovered = []config.SQLInstance{found}

	same := *cfg
	r.SetConfig(&same)
	if !slices.ContainsFunc(r.Config().SQLInstances, func(s config.SQLInstance) bool { return s.Name == found.Name }) {
		t.Error("a reload with the same discovery settings dropped the discovered instance")
	}

	changed := *cfg
	d := *cfg.Discovery
	d.Exclude = []string{"sql02*"}
	changed.Discovery = &d
	r.SetConfig(&changed)
	if slices.ContainsFunc(r.Config().SQLInstances, func(s config.SQLInstance) bool { return s.Name == found.Name }) {
		t.Error("after a reload that excludes it, the instance found under the old settings is still watched")
	}
}
