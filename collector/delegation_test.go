package collector

import (
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/adsec"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func delegationConfig() *config.Config {
	return &config.Config{
		Domains: []config.Domain{{Name: "corp.test", NetBIOSName: "CORP", BaseDN: "DC=corp,DC=test"}},
		SQLInstances: []config.SQLInstance{
			{Name: "sqla", Host: "sqla.corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: `CORP\sqlsvc_a`},
			{Name: "sqlb", Host: "sqlb.corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: `CORP\sqlsvc_b`},
			{Name: "sqlr", Host: "sqlr.corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: `CORP\sqlsvc_r`},
			{Name: "sqle", Host: "sqle.corp.test", Port: 1433, Domain: "corp.test"}, // account from the engine's facts
		},
	}
}

func TestPlanPaths(t *testing.T) {
	cfg := delegationConfig()
	snap := facts.New(testTime)
	snap.SQL["sqle"] = &facts.SQLInstance{Name: "sqle", EngineAccount: `NT SERVICE\MSSQLSERVER`, PhysicalNetBIOS: "SQLE"}
	snap.LinkedServers["sqla"] = &facts.LinkedServers{Instance: "sqla", Readable: true, Servers: []facts.LinkedServer{
		{Name: "SQLB", DataSource: "sqlb.corp.test", TargetInstance: "sqlb", SelfMapped: true},
		{Name: "SQLB_FIXED", DataSource: "sqlb.corp.test", TargetInstance: "sqlb", FixedLogin: true}, // no delegation needed
		{Name: "BYHOST", DataSource: "tcp:SQLB,1433", SelfMapped: true},                              // matched by host name
		{Name: "ELSEWHERE", DataSource: "sqlz.corp.test\\INST1", SelfMapped: true},                   // not configured
	}}
	snap.LinkedServers["sqlr"] = &facts.LinkedServers{Instance: "sqlr", Readable: true, Servers: []facts.LinkedServer{
		{Name: "SQLE", DataSource: "sqle.corp.test", SelfMapped: true},
	}}
	snap.LinkedServers["unconfigured"] = &facts.LinkedServers{Servers: []facts.LinkedServer{{Name: "X", SelfMapped: true}}}

	corp := &cfg.Domains[0]
	a := accountRef{domain: corp, sam: "sqlsvc_a", name: `CORP\sqlsvc_a`}
	b := accountRef{domain: corp, sam: "sqlsvc_b", name: `CORP\sqlsvc_b`}
	sqlbSPNs := []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}
	want := []pathPlan{
		{fromInstance: "sqla", linkedServer: "SQLB", toTarget: "sqlb", from: a, to: b, toSPNs: sqlbSPNs},
		{fromInstance: "sqla", linkedServer: "BYHOST", toTarget: "sqlb", from: a, to: b, toSPNs: sqlbSPNs},
		{fromInstance: "sqla", linkedServer: "ELSEWHERE", toTarget: "sqlz.corp.test", from: a,
			toSPNs: []string{"MSSQLSvc/sqlz.corp.test:INST1"}},
		{fromInstance: "sqlr", linkedServer: "SQLE", toTarget: "sqle",
			from:   accountRef{domain: corp, sam: "sqlsvc_r", name: `CORP\sqlsvc_r`},
			to:     accountRef{domain: corp, sam: "SQLE$", name: `CORP\SQLE$`},
			toSPNs: []string{"MSSQLSvc/sqle.corp.test:1433", "MSSQLSvc/sqle.corp.test"}},
	}
	got := planPaths(cfg, snap, Targets(cfg, snap))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("planPaths =\n%+v\nwant\n%+v", got, want)
	}
	if plans := planPaths(cfg, facts.New(testTime), Targets(cfg, nil)); len(plans) != 0 {
		t.Errorf("no linked-server facts gave %d paths, want none invented", len(plans))
	}
}

func TestJudgePath(t *testing.T) {
	sidA, _ := adsec.ParseSIDString("S-1-5-21-1-2-3-1104")
	sidR, _ := adsec.ParseSIDString("S-1-5-21-1-2-3-1113")
	spns := []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}
	plan := pathPlan{fromInstance: "sqla", linkedServer: "SQLB", toTarget: "sqlb",
		from: accountRef{name: `CORP\sqlsvc_a`}, to: accountRef{name: `CORP\sqlsvc_b`}, toSPNs: spns}
	front := func(f facts.Account, sid adsec.SID) *accountRead {
		f.Found, f.Name = true, `CORP\sqlsvc_a`
		return &accountRead{fact: f, sid: sid}
	}
	back := &accountRead{fact: facts.Account{Found: true, Name: `CORP\sqlsvc_b`, RBCDRead: true}}
	for _, tt := range []struct {
		name     string
		from, to *accountRead
		want     facts.DelegationPath
	}{
		{"constrained, case-insensitive", front(facts.Account{AllowedToDelegateTo: []string{"mssqlsvc/SQLB.corp.test:1433"}}, sidA), back,
			facts.DelegationPath{ConstrainedListed: true, Known: true}},
		{"constrained to another service", front(facts.Account{AllowedToDelegateTo: []string{"MSSQLSvc/sqlc.corp.test:1433"}}, sidA), back,
			facts.DelegationPath{Known: true}},
		{"unconstrained", front(facts.Account{TrustedForDelegation: true}, sidA), back,
			facts.DelegationPath{Unconstrained: true, Known: true}},
		{"protocol transition", front(facts.Account{ProtocolTransition: true, AllowedToDelegateTo: spns[:1]}, sidA), back,
			facts.DelegationPath{ConstrainedListed: true, ProtocolTransition: true, Known: true}},
		{"rbcd on the back end", front(facts.Account{}, sidR),
			&accountRead{fact: back.fact, rbcdAllowed: []adsec.SID{sidR}},
			facts.DelegationPath{RBCD: true, Known: true}},
		{"rbcd for someone else", front(facts.Account{}, sidA),
			&accountRead{fact: back.fact, rbcdAllowed: []adsec.SID{sidR}},
			facts.DelegationPath{Known: true}},
		{"back end's RBCD unreadable", front(facts.Account{}, sidA),
			&accountRead{fact: facts.Account{Found: true, Name: `CORP\sqlsvc_b`}},
			facts.DelegationPath{}},
		{"front end unknown", &accountRead{fact: facts.Account{LookupError: "timeout"}}, back, facts.DelegationPath{}},
		{"back end not found", front(facts.Account{TrustedForDelegation: true}, sidA), &accountRead{}, facts.DelegationPath{Unconstrained: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := judgePath(plan, tt.from, tt.to)
			want := tt.want
			want.FromInstance, want.LinkedServer, want.ToTarget = "sqla", "SQLB", "sqlb"
			want.FromAccount, want.ToAccount, want.TargetSPNs = `CORP\sqlsvc_a`, `CORP\sqlsvc_b`, spns
			if !reflect.DeepEqual(got, want) {
				t.Errorf("judgePath =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestDelegationMetrics(t *testing.T) {
	snap := facts.New(testTime)
	snap.Accounts = []facts.Account{
		{Name: `CORP\sqlsvc_a`, Kind: "user", Found: true, AllowedToDelegateTo: []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}, RBCDRead: true},
		{Name: `CORP\SQLE$`, Kind: "computer", Found: true, RBCDRead: true, RBCDAllowed: []string{`CORP\sqlsvc_r`}, SupportedEncTypes: 0x1c},
		{Name: `CORP\sqlsvc_gone`, Kind: "unknown"},
		{Name: `CORP\sqlsvc_rc4`, Kind: "user", Found: true, SupportedEncTypes: 4, Disabled: true, Locked: true, TrustedForDelegation: true, ProtocolTransition: true},
		{Name: `CORP\sqlsvc_x`, Kind: "unknown", LookupError: "ldaps://dc1: timeout"},
	}
	snap.DelegationPaths = []facts.DelegationPath{
		{FromInstance: "sqla", LinkedServer: "SQLB", ConstrainedListed: true, Known: true},
		{FromInstance: "sqlc", LinkedServer: "SQLB", Known: true},
		{FromInstance: "sqlu", LinkedServer: "SQLB", Unconstrained: true},
		{FromInstance: "sqlz", LinkedServer: "SQLB"},
	}
	c := snapshotMetrics{delegationCollector{}, snap}
	want := `
# HELP kerberos_account_aes_enabled Whether msDS-SupportedEncryptionTypes allows AES128 or AES256 service tickets.
# TYPE kerberos_account_aes_enabled gauge
kerberos_account_aes_enabled{account="CORP\\SQLE$"} 1
kerberos_account_aes_enabled{account="CORP\\sqlsvc_a"} 0
kerberos_account_aes_enabled{account="CORP\\sqlsvc_rc4"} 0
# HELP kerberos_account_constrained_delegation_targets Number of SPNs in the account's msDS-AllowedToDelegateTo.
# TYPE kerberos_account_constrained_delegation_targets gauge
kerberos_account_constrained_delegation_targets{account="CORP\\SQLE$"} 0
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_a"} 2
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_rc4"} 0
# HELP kerberos_account_disabled Whether the account is disabled (userAccountControl ACCOUNTDISABLE): the KDC issues no tickets for it.
# TYPE kerberos_account_disabled gauge
kerberos_account_disabled{account="CORP\\SQLE$"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_a"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_rc4"} 1
# HELP kerberos_account_found Whether the service account exists in the directory (1) or not (0); absent when the directory could not be asked.
# TYPE kerberos_account_found gauge
kerberos_account_found{account="CORP\\SQLE$"} 1
kerberos_account_found{account="CORP\\sqlsvc_a"} 1
kerberos_account_found{account="CORP\\sqlsvc_gone"} 0
kerberos_account_found{account="CORP\\sqlsvc_rc4"} 1
# HELP kerberos_account_locked Whether the account is locked out (msDS-User-Account-Control-Computed UF_LOCKOUT).
# TYPE kerberos_account_locked gauge
kerberos_account_locked{account="CORP\\SQLE$"} 0
kerberos_account_locked{account="CORP\\sqlsvc_a"} 0
kerberos_account_locked{account="CORP\\sqlsvc_rc4"} 1
# HELP kerberos_account_protocol_transition Whether the account is trusted to authenticate for delegation, i.e. constrained delegation with any protocol (userAccountControl 0x1000000).
# TYPE kerberos_account_protocol_transition gauge
kerberos_account_protocol_transition{account="CORP\\SQLE$"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_a"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_rc4"} 1
# HELP kerberos_account_rbcd_principals Number of principals allowed to delegate to the account (msDS-AllowedToActOnBehalfOfOtherIdentity); absent when it could not be read.
# TYPE kerberos_account_rbcd_principals gauge
kerberos_account_rbcd_principals{account="CORP\\SQLE$"} 1
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_a"} 0
# HELP kerberos_account_supported_encryption_types The account's raw msDS-SupportedEncryptionTypes (0 when unset: the KDC's default applies).
# TYPE kerberos_account_supported_encryption_types gauge
kerberos_account_supported_encryption_types{account="CORP\\SQLE$"} 28
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_a"} 0
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_rc4"} 4
# HELP kerberos_account_unconstrained_delegation Whether the account is trusted for delegation to any service (userAccountControl 0x80000).
# TYPE kerberos_account_unconstrained_delegation gauge
kerberos_account_unconstrained_delegation{account="CORP\\SQLE$"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_a"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_rc4"} 1
# HELP kerberos_delegation_path Whether the mechanism lets the front end's service account delegate to the linked server's service; mechanism: unconstrained, constrained, rbcd. A mechanism that could not be read is absent unless another proves the path.
# TYPE kerberos_delegation_path gauge
kerberos_delegation_path{linked_server="SQLB",mechanism="constrained",sql_instance="sqla"} 1
kerberos_delegation_path{linked_server="SQLB",mechanism="constrained",sql_instance="sqlc"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="rbcd",sql_instance="sqla"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="rbcd",sql_instance="sqlc"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="unconstrained",sql_instance="sqla"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="unconstrained",sql_instance="sqlc"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="unconstrained",sql_instance="sqlu"} 1
# HELP kerberos_delegation_path_ok Whether any delegation mechanism lets the front end's service account delegate to the linked server's service; absent when unknown.
# TYPE kerberos_delegation_path_ok gauge
kerberos_delegation_path_ok{linked_server="SQLB",sql_instance="sqla"} 1
kerberos_delegation_path_ok{linked_server="SQLB",sql_instance="sqlc"} 0
kerberos_delegation_path_ok{linked_server="SQLB",sql_instance="sqlu"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}
