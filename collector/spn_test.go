package collector

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// guid makes a distinct objectGUID for test account n.
func guid(n int) [16]byte {
	var g [16]byte
	g[0], g[1], g[2] = byte(n), byte(n>>8), byte(n>>16)
	return g
}

func TestSPNIndex(t *testing.T) {
	// A stream as ScanSPNs delivers it: one account at a time.
	stream := []struct {
		holder string
		spns   []string
	}{
		{`CORP\sqldup1`, []string{"MSSQLSvc/sqldup.corp.test:1433"}},
		{`CORP\web1`, []string{"HTTP/app.corp.test", "HTTP/app"}},
		// The same SPN twice on one account, in different case: held once.
		{`CORP\odd`, []string{"HTTP/odd.corp.test", "http/ODD.corp.test"}},
		{`CORP\sqldup2`, []string{"mssqlsvc/SQLDUP.corp.test:1433"}},
		{`CORP\web2`, []string{"HTTP/app.corp.test"}},
		{`CORP\web3`, []string{"HTTP/APP.corp.test", "HTTP/app"}},
		{`CHILD\unique`, []string{"MSSQLSvc/sqlu.child.corp.test:1433"}},
	}
	x := newSPNIndex()
	for i, e := range stream {
		x.put(guid(i), e.holder, e.spns)
	}
	got := x.result(10)
	want := facts.DuplicateSPNs{
		Total:           3,
		AccountsScanned: 7,
		Top: []facts.DuplicateSPN{
			{SPN: "HTTP/app.corp.test", Accounts: []string{`CORP\web1`, `CORP\web2`, `CORP\web3`}},
			{SPN: "HTTP/app", Accounts: []string{`CORP\web1`, `CORP\web3`}},
			// Spelled as the account that made it a duplicate spells it.
			{SPN: "mssqlsvc/SQLDUP.corp.test:1433", Accounts: []string{`CORP\sqldup1`, `CORP\sqldup2`}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result(10) =\n%+v\nwant\n%+v", got, want)
	}
	if top := x.result(1); top.Total != 3 || len(top.Top) != 1 || top.Top[0].SPN != "HTTP/app.corp.test" {
		t.Errorf("result(1) = %+v; want the total of 3 and only the SPN with the most holders", top)
	}
	// Only duplicated SPNs keep holder lists.
	if len(x.shared) != 3 || len(x.bySPN) != 5 {
		t.Errorf("index keeps %d holder lists and %d SPN keys; want 3 and 5", len(x.shared), len(x.bySPN))
	}

	// What an incremental scan does: replace changed accounts, drop deleted
	// ones and those left without SPNs.
	x.put(guid(4), `CORP\web2`, []string{"HTTP/web2.corp.test"}) // its SPN moved off the shared name
	x.put(guid(3), `CORP\sqldup2`, nil)                          // its duplicate SPN removed
	x.remove(guid(5))                                            // web3 deleted
	x.remove(guid(99))                                           // never known: no error
	x.put(guid(7), `CORP\new`, []string{"HTTP/ODD.corp.test"})   // a new duplicate
	got = x.result(10)
	want = facts.DuplicateSPNs{
		Total:           1,
		AccountsScanned: 6,
		Top:             []facts.DuplicateSPN{{SPN: "HTTP/ODD.corp.test", Accounts: []string{`CORP\new`, `CORP\odd`}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after changes, result(10) =\n%+v\nwant\n%+v", got, want)
	}
	if len(x.shared) != 1 || len(x.bySPN) != 6 || len(x.free) != 1 {
		t.Errorf("index keeps %d holder lists, %d SPN keys, %d free slots; want 1, 6, 1", len(x.shared), len(x.bySPN), len(x.free))
	}
	x.put(guid(8), `CORP\reuse`, []string{"HTTP/reuse"})
	if len(x.free) != 0 || len(x.slots) != 7 {
		t.Errorf("a freed slot must be reused: %d free, %d slots", len(x.free), len(x.slots))
	}
}

func TestSPNIndexManyAccounts(t *testing.T) {
	x := newSPNIndex()
	for i := range 10000 {
		x.put(guid(i), fmt.Sprintf(`CORP\host%d$`, i), []string{fmt.Sprintf("HOST/host%d.corp.test", i), "HOST/shared"})
	}
	got := x.result(5)
	if got.Total != 1 || got.AccountsScanned != 10000 || len(got.Top) != 1 || len(got.Top[0].Accounts) != 10000 {
		t.Errorf("Total %d, scanned %d, top %d; want 1 duplicate with 10000 holders", got.Total, got.AccountsScanned, len(got.Top))
	}
	for i := range 9999 {
		x.remove(guid(i))
	}
	if got := x.result(5); got.Total != 0 || got.AccountsScanned != 1 || len(x.bySPN) != 2 {
		t.Errorf("after removing all but one: %+v, %d keys", got, len(x.bySPN))
	}
}

func TestSPNMetrics(t *testing.T) {
	snap := facts.New(testTime)
	snap.SPNs = []facts.ExpectedSPN{
		{Target: "sqla", SPN: "MSSQLSvc/sqla.corp.test:1433", ExpectedAccount: `CORP\sqlsvc_a`, Holders: []string{`CORP\sqlsvc_a`}},
		{Target: "sqlc", SPN: "MSSQLSvc/sqlc.corp.test:1433", ExpectedAccount: `CORP\sqlsvc_c`},
		{Target: "sqld", SPN: "MSSQLSvc/sqld.corp.test:1433", ExpectedAccount: `CORP\sqlsvc_d`, Holders: []string{`CORP\wrongacct`}},
		{Target: "sqldup", SPN: "MSSQLSvc/sqldup.corp.test:1433", ExpectedAccount: `CORP\SQLDUP1`, Holders: []string{`CORP\sqldup1`, `CORP\sqldup2`}},
		{Target: "sqlx", SPN: "MSSQLSvc/sqlx.corp.test:1433", Holders: []string{`CORP\someone`}},
		{Target: "sqly", SPN: "MSSQLSvc/sqly.corp.test:1433", ExpectedAccount: `CORP\y`, LookupError: "ldaps://dc1: connection refused"},
	}
	snap.Duplicates = &facts.DuplicateSPNs{Scanned: true, Total: 1, AccountsScanned: 14,
		Top: []facts.DuplicateSPN{{SPN: "MSSQLSvc/sqldup.corp.test:1433", Accounts: []string{`CORP\sqldup1`, `CORP\sqldup2`}}}}
	c := snapshotMetrics{spnCollector{}, snap}
	want := `
# HELP kerberos_spn_accounts_scanned Number of accounts with SPNs read in the forest-wide duplicate scan.
# TYPE kerberos_spn_accounts_scanned gauge
kerberos_spn_accounts_scanned 14
# HELP kerberos_spn_duplicate_holders Number of accounts holding a duplicated SPN; only the SPNs with the most holders, up to max_duplicate_spns.
# TYPE kerberos_spn_duplicate_holders gauge
kerberos_spn_duplicate_holders{spn="MSSQLSvc/sqldup.corp.test:1433"} 2
# HELP kerberos_spn_duplicates Number of SPNs held by more than one account in the forest-wide duplicate scan.
# TYPE kerberos_spn_duplicates gauge
kerberos_spn_duplicates 1
# HELP kerberos_spn_holder_info An account (DOMAIN\\sam) that holds an expected SPN; always 1.
# TYPE kerberos_spn_holder_info gauge
kerberos_spn_holder_info{account="CORP\\someone",spn="MSSQLSvc/sqlx.corp.test:1433",target="sqlx"} 1
kerberos_spn_holder_info{account="CORP\\sqldup1",spn="MSSQLSvc/sqldup.corp.test:1433",target="sqldup"} 1
kerberos_spn_holder_info{account="CORP\\sqldup2",spn="MSSQLSvc/sqldup.corp.test:1433",target="sqldup"} 1
kerberos_spn_holder_info{account="CORP\\sqlsvc_a",spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 1
kerberos_spn_holder_info{account="CORP\\wrongacct",spn="MSSQLSvc/sqld.corp.test:1433",target="sqld"} 1
# HELP kerberos_spn_holders How many accounts in the forest hold the expected SPN: 0 missing, 1 as it should be, more is a duplicate.
# TYPE kerberos_spn_holders gauge
kerberos_spn_holders{spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 1
kerberos_spn_holders{spn="MSSQLSvc/sqlc.corp.test:1433",target="sqlc"} 0
kerberos_spn_holders{spn="MSSQLSvc/sqld.corp.test:1433",target="sqld"} 1
kerberos_spn_holders{spn="MSSQLSvc/sqldup.corp.test:1433",target="sqldup"} 2
kerberos_spn_holders{spn="MSSQLSvc/sqlx.corp.test:1433",target="sqlx"} 1
# HELP kerberos_spn_on_expected_account Whether the target's service account holds the expected SPN (1) or not (0: present on another account, authentication fails); absent when the account is unknown.
# TYPE kerberos_spn_on_expected_account gauge
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 1
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqlc.corp.test:1433",target="sqlc"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqld.corp.test:1433",target="sqld"} 0
kerberos_spn_on_expected_account{spn="MSSQLSvc/sqldup.corp.test:1433",target="sqldup"} 1
# HELP kerberos_spn_present Whether some account in the forest holds the expected SPN (1) or none does (0: clients fall back to NTLM).
# TYPE kerberos_spn_present gauge
kerberos_spn_present{spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"} 1
kerberos_spn_present{spn="MSSQLSvc/sqlc.corp.test:1433",target="sqlc"} 0
kerberos_spn_present{spn="MSSQLSvc/sqld.corp.test:1433",target="sqld"} 1
kerberos_spn_present{spn="MSSQLSvc/sqldup.corp.test:1433",target="sqldup"} 1
kerberos_spn_present{spn="MSSQLSvc/sqlx.corp.test:1433",target="sqlx"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)

	// An unfinished scan exports no duplicate count: unknown is not zero.
	snap.Duplicates = &facts.DuplicateSPNs{Error: "ldaps://gc: timeout"}
	if n := testutil.CollectAndCount(c, "kerberos_spn_duplicates", "kerberos_spn_accounts_scanned"); n != 0 {
		t.Errorf("%d duplicate-scan samples after a failed scan, want 0", n)
	}
}

func TestSPNScanMetrics(t *testing.T) {
	snap := facts.New(testTime)
	// A failed incremental scan after a good one: the figures of the last
	// good one stand, with their time; the counters go on.
	snap.Duplicates = &facts.DuplicateSPNs{Scanned: true, Error: "ldaps://dc1: connection refused",
		ScanDuration: 1500 * time.Millisecond, LastSuccess: time.Unix(1700000000, 500e6),
		Scans: map[string]int{scanFull: 2, scanIncremental: 7}}
	c := snapshotMetrics{spnCollector{}, snap}
	want := `
# HELP kerberos_spn_scan_duration_seconds How long the last forest-wide duplicate SPN scan took (it runs every spn_scan_interval, apart from the collection cycle).
# TYPE kerberos_spn_scan_duration_seconds gauge
kerberos_spn_scan_duration_seconds 1.5
# HELP kerberos_spn_scan_last_success_timestamp_seconds When the forest-wide duplicate SPN scan last ended without error, in seconds since the Unix epoch.
# TYPE kerberos_spn_scan_last_success_timestamp_seconds gauge
kerberos_spn_scan_last_success_timestamp_seconds 1.7000000005e+09
# HELP kerberos_spn_scans_total Forest-wide duplicate SPN scans of a scope (forest or domain) completed, by mode: full (every account) or incremental (accounts changed since the last scan).
# TYPE kerberos_spn_scans_total counter
kerberos_spn_scans_total{mode="full"} 2
kerberos_spn_scans_total{mode="incremental"} 7
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "kerberos_spn_scan_duration_seconds",
		"kerberos_spn_scan_last_success_timestamp_seconds", "kerberos_spn_scans_total"); err != nil {
		t.Error(err)
	}
	// A probe's snapshot has no scan: none of these.
	snap.Duplicates = &facts.DuplicateSPNs{}
	if n := testutil.CollectAndCount(c, "kerberos_spn_scan_duration_seconds", "kerberos_spn_scans_total"); n != 0 {
		t.Errorf("%d scan metrics without a scan", n)
	}
}
