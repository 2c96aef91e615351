package cycle

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// Discovery against the Samba DC: the fixture's accounts hold the MSSQLSvc
// SPNs of sqla, sqlb and sqld (sqlc has none); sqla is configured, so only
// sqlb and sqld are added, and the patterns and base DNs narrow that.
func TestWorldDiscovery(t *testing.T) {
	w := world.ForTest(t)
	sqlpw := filepath.Join(t.TempDir(), "sql-password")
	if err := os.WriteFile(sqlpw, []byte("Passw0rd!Sql1"), 0o600); err != nil {
		t.Fatal(err)
	}
	users := "CN=Users," + config.BaseDNFromDomain(w.Domain)
	discover := func(t *testing.T, baseDN, exclude string) (*Runner, *Status) {
		cfg := worldConfig(t, w, []worldInstance{{"sqla", `CORP\sqlsvc_a`}}, fmt.Sprintf(`discovery:
  base_dns: [%q]
  include: ["sql[a-d].%s*"]
  exclude: [%q]
  template:
    auth: {method: sql, username: krbmon_sql, password: {file: %s}}
    timeout: 3s
`, baseDN, w.Domain, exclude, sqlpw))
		r := NewRunner(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
		r.browse = nil // the world has no SQL Browser
		return r, r.refreshDiscovery(context.Background())
	}
	names := func(r *Runner) []string {
		var out []string
		for _, s := range r.Config().SQLInstances {
			out = append(out, s.Name)
		}
		return out
	}

	t.Run("in the users container", func(t *testing.T) {
		r, st := discover(t, users, "none")
		if st == nil || !st.Success {
			t.Fatalf("discovery status %+v", st)
		}
		want := []string{"sqla", "sqlb." + w.Domain, "sqld." + w.Domain}
		if got := names(r); !slices.Equal(got, want) {
			t.Fatalf("instances %q, want %q", got, want)
		}
		sqlb := r.Config().SQLInstances[1]
		if !sqlb.Discovered || sqlb.Host != "sqlb."+w.Domain || sqlb.Port != 1433 || sqlb.Auth.Method != "sql" || sqlb.Timeout.Duration() != 3*time.Second {
			t.Errorf("sqlb from the template: %+v", sqlb)
		}

		// Labelled as discovered in the exporter's metrics.
		res := &Result{Config: r.Config(), Snapshot: facts.New(time.Now()), Status: map[string]Status{}}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(&Exporter{last: func() *Result { return res }})
		want2 := fmt.Sprintf(`# HELP kerberos_exporter_sql_instance_info %s
# TYPE kerberos_exporter_sql_instance_info gauge
kerberos_exporter_sql_instance_info{source="discovery",sql_instance="sqlb.%[2]s"} 1
kerberos_exporter_sql_instance_info{source="discovery",sql_instance="sqld.%[2]s"} 1
kerberos_exporter_sql_instance_info{source="static",sql_instance="sqla"} 1
`, "A SQL instance the exporter watches; source is static (configured) or discovery (found from its MSSQLSvc SPNs). Always 1.", w.Domain)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want2), "kerberos_exporter_sql_instance_info"); err != nil {
			t.Error(err)
		}
	})

	t.Run("excluded", func(t *testing.T) {
		r, _ := discover(t, users, "sqld.*")
		if got, want := names(r), []string{"sqla", "sqlb." + w.Domain}; !slices.Equal(got, want) {
			t.Errorf("instances %q, want %q", got, want)
		}
	})

	t.Run("a base DN without SQL Servers", func(t *testing.T) {
		r, st := discover(t, "OU=Domain Controllers,"+config.BaseDNFromDomain(w.Domain), "none")
		if !st.Success {
			t.Fatalf("discovery status %+v", st)
		}
		if got := names(r); !slices.Equal(got, []string{"sqla"}) {
			t.Errorf("instances %q, want only the configured one", got)
		}
	})
}

// A named instance, through the real directory and the stand-in's real SQL
// Browser: discovery finds MSSQLSvc/sqln:INST1, asks the Browser on
// sqln's address for INST1's port, merges MSSQLSvc/sqln:49733 into that
// instance (the port the Browser gave), and go-mssqldb logs in there.
func TestWorldDiscoveryNamedInstanceThroughTheBrowser(t *testing.T) {
	w := world.ForTest(t)
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	sc, err := tdsserver.LoadScenario(filepath.Join("..", "testenv", "scenarios", "sqln.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// Its own port, as the SPN says: the Browser's answer must merge the two.
	g, err := tdsserver.StartGroup([]*tdsserver.Scenario{sc}, tdsserver.GroupOptions{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })

	sqlpw := filepath.Join(t.TempDir(), "sql-password")
	if err := os.WriteFile(sqlpw, []byte("Passw0rd!Sql1"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := worldConfig(t, w, []worldInstance{{"sqla", `CORP\sqlsvc_a`}}, fmt.Sprintf(`discovery:
  include: ["sqln.*"]
  template:
    auth: {method: sql, username: krbmon_sql, password: {file: %s}}
    encrypt: disable
    timeout: 3s
`, sqlpw))
	r := NewRunner(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	// The world's names are in the DC's DNS, not the system resolver's:
	// resolve there, then ask the real Browser as the exporter does.
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, w.DNSServer())
	}}
	asked := 0
	r.browse = func(ctx context.Context, host, instance string) (int, error) {
		asked++
		addrs, err := resolver.LookupHost(ctx, host)
		if err != nil || len(addrs) == 0 {
			return 0, fmt.Errorf("resolving %s in the world: %v", host, err)
		}
		return browseSQL(ctx, addrs[0], instance)
	}
	st := r.refreshDiscovery(context.Background())
	if st == nil || !st.Success {
		t.Fatalf("discovery status %+v", st)
	}
	var found []config.SQLInstance
	for _, s := range r.Config().SQLInstances {
		if s.Discovered {
			found = append(found, s)
		}
	}
	want := "sqln." + w.Domain + ":INST1"
	if asked != 1 || len(found) != 1 || found[0].Name != want || found[0].InstanceName != "INST1" || found[0].Port != 49733 || found[0].Host != "sqln."+w.Domain {
		t.Fatalf("Browser asked %d times; discovered %+v, want one instance %s on port 49733", asked, found, want)
	}

	// go-mssqldb reaches the named instance on the port the Browser gave.
	addrs, err := resolver.LookupHost(context.Background(), found[0].Host)
	if err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("krbmon_sql", "Passw0rd!Sql1"),
		Host: net.JoinHostPort(addrs[0], strconv.Itoa(found[0].Port)), RawQuery: "encrypt=disable&dial+timeout=3"}
	db, err := sql.Open("sqlserver", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("go-mssqldb to the discovered %s: %v", found[0].Name, err)
	}
	if h := g.Server("sqln").LoginHistory(); len(h) == 0 || h[len(h)-1].Login != "krbmon_sql" {
		t.Errorf("the named instance's logins %+v, want krbmon_sql's", h)
	}
}

type worldInstance struct{ name, account string }

func worldConfig(t *testing.T, w *world.World, instances []worldInstance, extra string) *config.Config {
	t.Helper()
	var in []world.Instance
	for _, i := range instances {
		in = append(in, world.Instance{Name: i.name, Account: i.account})
	}
	return w.Config(t, in, extra)
}
