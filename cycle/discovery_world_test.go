package cycle

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
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

type worldInstance struct{ name, account string }

func worldConfig(t *testing.T, w *world.World, instances []worldInstance, extra string) *config.Config {
	t.Helper()
	var in []world.Instance
	for _, i := range instances {
		in = append(in, world.Instance{Name: i.name, Account: i.account})
	}
	return w.Config(t, in, extra)
}
