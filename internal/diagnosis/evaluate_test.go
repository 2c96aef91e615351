package diagnosis

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// brokenWorld adds to the healthy world one instance or account per
// failure mode of the test AD world (testenv/samba/fixtures.sh), with the
// facts the collectors are expected to gather for them.
func brokenWorld() (*config.Config, *facts.Snapshot) {
	cfg, snap := healthyWorld()
	yes := true
	add := func(name, account string, holders ...string) {
		cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: name, Host: name + ".corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: account, ExpectKerberos: &yes})
		snap.SQL[name] = &facts.SQLInstance{Name: name, Up: true, AuthScheme: "KERBEROS", NetTransport: "TCP", EngineAccount: account, MachineName: strings.ToUpper(name)}
		snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: name, SPN: "MSSQLSvc/" + name + ".corp.test:1433", ExpectedAccount: account, Holders: holders})
		snap.Accounts = append(snap.Accounts, facts.Account{Name: account, Kind: "user", Found: true, SPNs: []string{"MSSQLSvc/" + name + ".corp.test:1433"}})
	}
	// SQL C: no SPN, clients fall back to NTLM; SQL Server could not register it.
	add("sqlc", `CORP\sqlsvc_c`)
	snap.SQL["sqlc"].AuthScheme, snap.SQL["sqlc"].UsedNTLMFallback = "NTLM", true
	snap.ErrorLogs["sqlc"] = &facts.ErrorLog{Instance: "sqlc", Readable: true, Registrations: []facts.SPNRegistration{{SPN: "MSSQLSvc/sqlc.corp.test:1433", ReturnCode: "0x2098", State: 15}}}
	snap.Tickets = append(snap.Tickets, facts.TicketProbe{Target: "sqlc", SPN: "MSSQLSvc/sqlc.corp.test:1433", Realm: "CORP.TEST", ErrorCode: 7, ErrorName: "KDC_ERR_S_PRINCIPAL_UNKNOWN"})
	// SQL D: SPN on another account; the exporter's Kerberos logon fails.
	add("sqld", `CORP\sqlsvc_d`, `CORP\wrongacct`)
	snap.SQL["sqld"] = &facts.SQLInstance{Name: "sqld", Cause: "kerberos", ConnectError: "KRB_AP_ERR_MODIFIED"}
	// A duplicate SPN that no configured target needs.
	snap.Duplicates.Total = 1
	snap.Duplicates.Top = []facts.DuplicateSPN{{SPN: "MSSQLSvc/sqldup.corp.test:1433", Accounts: []string{`CORP\sqldup1`, `CORP\sqldup2`}}}
	// Unconstrained delegation; protocol transition (fine); RBCD to SQL E (fine).
	add("sqlu", `CORP\sqlsvc_u`, `CORP\sqlsvc_u`)
	snap.Accounts[len(snap.Accounts)-1].TrustedForDelegation = true
	add("sqlpt", `CORP\sqlsvc_pt`, `CORP\sqlsvc_pt`)
	snap.Accounts[len(snap.Accounts)-1].ProtocolTransition = true
	add("sqlr", `CORP\sqlsvc_r`, `CORP\sqlsvc_r`)
	add("sqle", `CORP\SQLE$`, `CORP\SQLE$`)
	snap.Accounts[len(snap.Accounts)-1].Kind = "computer"
	snap.Accounts[len(snap.Accounts)-1].RBCDAllowed = []string{`CORP\sqlsvc_r`}
	snap.LinkedServers["sqlr"] = &facts.LinkedServers{Instance: "sqlr", Readable: true, Servers: []facts.LinkedServer{{Name: "SQLE", DataSource: "sqle.corp.test", TargetInstance: "sqle", SelfMapped: true, Tested: true, TestOK: true, HopTested: true, HopOK: true, HopAuthScheme: "KERBEROS", HopTransport: "TCP"}}}
	snap.DelegationPaths = append(snap.DelegationPaths, facts.DelegationPath{FromInstance: "sqlr", LinkedServer: "SQLE", ToTarget: "sqle", FromAccount: `CORP\sqlsvc_r`, ToAccount: `CORP\SQLE$`, TargetSPNs: []string{"MSSQLSvc/sqle.corp.test:1433"}, RBCD: true, Known: true})
	// RC4 only, disabled, locked.
	add("sqlrc4", `CORP\sqlsvc_rc4`, `CORP\sqlsvc_rc4`)
	snap.Accounts[len(snap.Accounts)-1].SupportedEncTypes = 4
	add("sqldis", `CORP\sqlsvc_dis`, `CORP\sqlsvc_dis`)
	snap.Accounts[len(snap.Accounts)-1].Disabled = true
	add("sqllock", `CORP\sqlsvc_lock`, `CORP\sqlsvc_lock`)
	snap.Accounts[len(snap.Accounts)-1].Locked = true
	// Delegated users: alice sensitive, bob in Protected Users, carol fine.
	cfg.DelegatedPrincipals.Users = []string{`CORP\alice`, `CORP\bob`, `CORP\carol`}
	snap.Users = []facts.DelegatedPrincipal{
		{Name: `CORP\alice`, Found: true, Sensitive: true},
		{Name: `CORP\bob`, Found: true, ProtectedUsers: true},
		{Name: `CORP\carol`, Found: true},
	}
	// sqlm: forward and reverse disagree.
	snap.DNS = append(snap.DNS, facts.HostDNS{Host: "sqlm.corp.test", Addresses: []string{"127.0.0.19"}, PTR: map[string][]string{"127.0.0.19": {"oldname.corp.test."}}})
	return cfg, snap
}

func TestBrokenWorldYieldsExactlyTheExpectedFindings(t *testing.T) {
	cfg, snap := brokenWorld()
	got := keys(Evaluate(cfg, snap))
	want := []string{
		`account_disabled critical CORP\sqlsvc_dis`,
		`account_locked critical CORP\sqlsvc_lock`,
		"first_hop_ntlm critical sqlc",
		"spn_missing critical MSSQLSvc/sqlc.corp.test:1433",
		"spn_wrong_account critical MSSQLSvc/sqld.corp.test:1433",
		`account_rc4_only warning CORP\sqlsvc_rc4`,
		`delegation_unconstrained warning CORP\sqlsvc_u`,
		"dns_reverse_mismatch warning sqlm.corp.test",
		"spn_duplicate warning MSSQLSvc/sqldup.corp.test:1433",
		"spn_registration_failed warning sqlc",
		"sql_unreachable warning sqld",
		`user_protected_users warning CORP\bob`,
		`user_sensitive warning CORP\alice`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEvaluateIsSortedUniqueAndDeterministic(t *testing.T) {
	cfg, snap := brokenWorld()
	first := Evaluate(cfg, snap)
	for i := 0; i < 20; i++ {
		if again := Evaluate(cfg, snap); !reflect.DeepEqual(first, again) {
			t.Fatal("Evaluate is not deterministic")
		}
	}
	seen := map[string]bool{}
	for i, f := range first {
		checkComplete(t, f)
		k := f.Check + " " + f.Target
		if seen[k] {
			t.Errorf("two findings for %s", k)
		}
		seen[k] = true
		if i > 0 {
			p := first[i-1]
			if p.Severity.Rank() > f.Severity.Rank() || (p.Severity == f.Severity && p.Check > f.Check) {
				t.Errorf("not sorted: %s %s before %s %s", p.Severity, p.Check, f.Severity, f.Check)
			}
		}
	}
}

func TestNormalizeKeepsTheMostSevereOfACollision(t *testing.T) {
	got := normalize([]Finding{
		{Check: "spn_missing", Severity: Warning, Target: "HTTP/app", Instance: "web1"},
		{Check: "spn_missing", Severity: Critical, Target: "http/APP", Instance: "web2"},
		{Check: "dc_unreachable", Severity: Warning, Target: "dc1"},
	})
	want := []Finding{
		{Check: "spn_missing", Severity: Critical, Target: "http/APP"},
		{Check: "dc_unreachable", Severity: Warning, Target: "dc1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestEvaluateToleratesAnEmptySnapshot(t *testing.T) {
	cfg, _ := healthyWorld()
	if got := Evaluate(cfg, facts.New(time.Now())); got != nil {
		t.Fatalf("empty snapshot raised %v", keys(got))
	}
	if got := Evaluate(nil, nil); got != nil {
		t.Fatal("nil input raised findings")
	}
}
