package collector

// Integration tests of the directory collectors against the real Samba AD
// DC of testenv/world, bound as krbmon (an ordinary user) over LDAPS with
// the world's CA. Each test asserts the fixture's facts and the metrics.

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// worldInstance is a SQL instance of the world by its short host name.
type worldInstance struct{ name, account string }

func worldConfig(t *testing.T, w *world.World, instances []worldInstance, extra string) *config.Config {
	t.Helper()
	var in []world.Instance
	for _, i := range instances {
		in = append(in, world.Instance{Name: i.name, Account: i.account})
	}
	return w.Config(t, in, extra)
}

func worldEnv(cfg *config.Config) *Env {
	return &Env{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
}

func TestWorldSPNCollector(t *testing.T) {
	w := world.ForTest(t)
	cfg := worldConfig(t, w, []worldInstance{
		{"sqla", `CORP\sqlsvc_a`}, {"sqlc", `CORP\sqlsvc_c`}, {"sqld", `CORP\sqlsvc_d`},
	}, `  - {name: sqldup, host: sqldup.corp.test, service_account: 'sqldup1', auth: {method: windows}}
services:
  - {name: crm, account: 'crmweb@corp.test', spns: [HTTP/crm.corp.test, HTTP/crm]}
`)
	snap := facts.New(testTime)
	if err := (spnCollector{}).Update(context.Background(), worldEnv(cfg), snap); err != nil {
		t.Fatalf("Update: %v", err)
	}

	holders := map[string][]string{}
	for _, e := range snap.SPNs {
		if e.LookupError != "" {
			t.Errorf("%s %s: %s", e.Target, e.SPN, e.LookupError)
		}
		holders[e.Target+" "+e.SPN] = e.Holders
	}
	for key, want := range map[string][]string{
		"sqla MSSQLSvc/sqla.corp.test:1433":     {`CORP\sqlsvc_a`},
		"sqla MSSQLSvc/sqla.corp.test":          {`CORP\sqlsvc_a`},
		"sqla MSSQLSvc/sqla:1433":               {`CORP\sqlsvc_a`},
		"sqla MSSQLSvc/sqla":                    {`CORP\sqlsvc_a`},
		"sqlc MSSQLSvc/sqlc.corp.test:1433":     nil,
		"sqld MSSQLSvc/sqld.corp.test:1433":     {`CORP\wrongacct`},
		"sqldup MSSQLSvc/sqldup.corp.test:1433": {`CORP\sqldup1`, `CORP\sqldup2`},
		"crm HTTP/crm.corp.test":                {`CORP\crmweb`},
		"crm HTTP/crm":                          {`CORP\crmweb`},
	} {
		got, ok := holders[key]
		if !ok || !slices.Equal(got, want) {
			t.Errorf("%s: holders %q (expected SPN: %v), want %q", key, got, ok, want)
		}
	}

	d := snap.Duplicates
	if d == nil || !d.Scanned || d.Error != "" {
		t.Fatalf("duplicate scan: %+v", d)
	}
	if d.Total != 1 || len(d.Top) != 1 || !strings.EqualFold(d.Top[0].SPN, "MSSQLSvc/sqldup.corp.test:1433") ||
		!slices.Equal(d.Top[0].Accounts, []string{`CORP\sqldup1`, `CORP\sqldup2`}) {
		t.Errorf("duplicates: total %d, top %+v; want only MSSQLSvc/sqldup.corp.test:1433 on sqldup1 and sqldup2", d.Total, d.Top)
	}
	if d.AccountsScanned < 13 {
		t.Errorf("accounts scanned %d, want at least the 13 fixture accounts with SPNs", d.AccountsScanned)
	}

	// Missing (no holder) and wrong account (another holder) are told apart.
	c := snapshotMetrics{spnCollector{}, snap}
	want := `
# HELP kerberos_spn_duplicate_holders Number of accounts holding a duplicated SPN; only the SPNs with the most holders, up to max_duplicate_spns.
# TYPE kerberos_spn_duplicate_holders gauge
kerberos_spn_duplicate_holders{spn="MSSQLSvc/sqldup.corp.test:1433"} 2
# HELP kerberos_spn_duplicates Number of SPNs held by more than one account in the forest-wide duplicate scan.
# TYPE kerberos_spn_duplicates gauge
kerberos_spn_duplicates 1
# HELP kerberos_spn_holders How many accounts in the forest hold the expected SPN: 0 missing, 1 as it should be, more is a duplicate.
# TYPE kerberos_spn_holders gauge
kerberos_spn_holders{spn="HTTP/crm",target="crm"} 1
kerberos_spn_holders{spn="HTTP/crm.corp.test",target="crm"} 1
kerberos_spn_holders{spn="MSSQLSvc/sqla",target="sqla"} 1
kerberos_spn_holders{spn="MSSQLSvc/sqla.corp.test",target="sqla"} 1
kerberos_spn_holders{spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 1
kerberos_spn_holders{spn="MSSQLSvc/sqla:1433",target="sqla"} 1
kerberos_spn_holders{spn="MSSQLSvc/sqlc",target="sqlc"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqlc.corp.test",target="sqlc"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqlc.corp.test:1433",target="sqlc"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqlc:1433",target="sqlc"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqld",target="sqld"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqld.corp.test",target="sqld"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqld.corp.test:1433",target="sqld"} 1
kerberos_spn_holders{spn="MSSQLSvc/sqld:1433",target="sqld"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqldup.corp.test",target="sqldup"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqldup.corp.test:1433",target="sqldup"} 2
# HELP kerberos_spn_on_expected_account Whether the target's service account holds the expected SPN (1) or not (0: present on another account, authentication fails); absent when the account is unknown.
# TYPE kerberos_spn_on_expected_account gauge
kerberos_spn_on_expected_account{spn="HTTP/crm",target="crm"} 1
kerberos_spn_on_expected_account{spn="HTTP/crm.corp.test",target="crm"} 1
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqla",target="sqla"} 1
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqla.corp.test",target="sqla"} 1
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 1
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqla:1433",target="sqla"} 1
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqlc",target="sqlc"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqlc.corp.test",target="sqlc"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqlc.corp.test:1433",target="sqlc"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqlc:1433",target="sqlc"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqld",target="sqld"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqld.corp.test",target="sqld"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqld.corp.test:1433",target="sqld"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqld:1433",target="sqld"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqldup.corp.test",target="sqldup"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqldup.corp.test:1433",target="sqldup"} 1
# HELP kerberos_spn_present Whether some account in the forest holds the expected SPN (1) or none does (0: clients fall back to NTLM).
# TYPE kerberos_spn_present gauge
kerberos_spn_present{spn="HTTP/crm",target="crm"} 1
kerberos_spn_present{spn="HTTP/crm.corp.test",target="crm"} 1
kerberos_spn_present{spn="MSSQLSvc/sqla",target="sqla"} 1
kerberos_spn_present{spn="MSSQLSvc/sqla.corp.test",target="sqla"} 1
kerberos_spn_present{spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 1
kerberos_spn_present{spn="MSSQLSvc/sqla:1433",target="sqla"} 1
kerberos_spn_present{spn="MSSQLSvc/sqlc",target="sqlc"} 0
kerberos_spn_present{spn="MSSQLSvc/sqlc.corp.test",target="sqlc"} 0
kerberos_spn_present{spn="MSSQLSvc/sqlc.corp.test:1433",target="sqlc"} 0
kerberos_spn_present{spn="MSSQLSvc/sqlc:1433",target="sqlc"} 0
kerberos_spn_present{spn="MSSQLSvc/sqld",target="sqld"} 0
kerberos_spn_present{spn="MSSQLSvc/sqld.corp.test",target="sqld"} 0
kerberos_spn_present{spn="MSSQLSvc/sqld.corp.test:1433",target="sqld"} 1
kerberos_spn_present{spn="MSSQLSvc/sqld:1433",target="sqld"} 0
kerberos_spn_present{spn="MSSQLSvc/sqldup.corp.test",target="sqldup"} 0
kerberos_spn_present{spn="MSSQLSvc/sqldup.corp.test:1433",target="sqldup"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "kerberos_spn_present", "kerberos_spn_holders",
		"kerberos_spn_on_expected_account", "kerberos_spn_duplicates", "kerberos_spn_duplicate_holders"); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}
