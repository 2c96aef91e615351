package collector

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

func TestWorldDelegationCollector(t *testing.T) {
	w := world.ForTest(t)
	cfg := worldConfig(t, w, []worldInstance{
		{"sqla", `CORP\sqlsvc_a`}, {"sqlb", `CORP\sqlsvc_b`}, {"sqlc", `CORP\sqlsvc_c`},
		{"sqlu", `CORP\sqlsvc_u`}, {"sqlpt", `CORP\sqlsvc_pt`}, {"sqlr", `CORP\sqlsvc_r`},
		{"sqle", ""}, // its account comes from what the server says: a virtual account, so SQLE$
		{"sqlrc4", `CORP\sqlsvc_rc4`}, {"sqldis", `CORP\sqlsvc_dis`}, {"sqllock", `CORP\sqlsvc_lock`},
		{"sqlgone", `CORP\no_such_account`},
	}, "")
	snap := facts.New(testTime)
	// The SQL side is another collector's: its facts are written here by
	// hand, as the sql and linkedserver collectors would find them.
	snap.SQL["sqle"] = &facts.SQLInstance{Name: "sqle", Up: true, EngineAccount: `NT SERVICE\MSSQLSERVER`, PhysicalNetBIOS: "SQLE"}
	selfMapped := func(instance string, servers ...facts.LinkedServer) {
		snap.LinkedServers[instance] = &facts.LinkedServers{Instance: instance, Readable: true, Servers: servers}
	}
	toB := facts.LinkedServer{Name: "SQLB", Product: "SQL Server", DataSource: "sqlb.corp.test", TargetInstance: "sqlb", SelfMapped: true}
	toE := facts.LinkedServer{Name: "SQLE", Product: "SQL Server", DataSource: "sqle.corp.test", SelfMapped: true}
	selfMapped("sqla", toB, toE, facts.LinkedServer{Name: "SQLB_FIXED", DataSource: "sqlb.corp.test", TargetInstance: "sqlb", FixedLogin: true})
	selfMapped("sqlc", toB)
	selfMapped("sqlu", toB)
	selfMapped("sqlpt", toB)
	selfMapped("sqlr", toE)

	if err := (delegationCollector{}).Update(context.Background(), worldEnv(cfg), snap); err != nil {
		t.Fatalf("Update: %v", err)
	}

	accounts := map[string]facts.Account{}
	for _, a := range snap.Accounts {
		accounts[a.Name] = a
	}
	if len(accounts) != 11 {
		t.Errorf("%d accounts read, want the 11 service accounts: %v", len(accounts), snap.Accounts)
	}
	if e := accounts[`CORP\SQLE$`]; e.Kind != "computer" || !e.RBCDRead || !slices.Equal(e.RBCDAllowed, []string{`CORP\sqlsvc_r`}) {
		t.Errorf("SQLE$: %+v; want a computer whose RBCD allows CORP\\sqlsvc_r", e)
	}
	if a := accounts[`CORP\sqlsvc_a`]; !a.Found || a.Kind != "user" || a.ProtocolTransition ||
		!slices.Equal(a.AllowedToDelegateTo, []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}) {
		t.Errorf("sqlsvc_a: %+v; want Kerberos-only constrained delegation to sqlb's two SPNs", a)
	}

	paths := map[string]facts.DelegationPath{}
	for _, p := range snap.DelegationPaths {
		paths[p.FromInstance+"/"+p.LinkedServer] = p
	}
	if len(paths) != 6 {
		t.Errorf("%d delegation paths, want the 6 self-mapped linked servers: %+v", len(paths), snap.DelegationPaths)
	}
	if p := paths["sqlpt/SQLB"]; !p.ProtocolTransition || !p.ConstrainedListed || p.ToAccount != `CORP\sqlsvc_b` {
		t.Errorf("sqlpt/SQLB: %+v; want constrained with protocol transition to CORP\\sqlsvc_b", p)
	}
	if p := paths["sqlr/SQLE"]; p.ToTarget != "sqle" || p.FromAccount != `CORP\sqlsvc_r` || p.ToAccount != `CORP\SQLE$` {
		t.Errorf("sqlr/SQLE: %+v; want CORP\\sqlsvc_r to CORP\\SQLE$ (data source matched to instance sqle)", p)
	}

	c := snapshotMetrics{delegationCollector{}, snap}
	want := `
# HELP kerberos_account_aes_enabled Whether msDS-SupportedEncryptionTypes allows AES128 or AES256 service tickets.
# TYPE kerberos_account_aes_enabled gauge
kerberos_account_aes_enabled{account="CORP\\SQLE$"} 1
kerberos_account_aes_enabled{account="CORP\\sqlsvc_a"} 1
kerberos_account_aes_enabled{account="CORP\\sqlsvc_b"} 1
kerberos_account_aes_enabled{account="CORP\\sqlsvc_c"} 0
kerberos_account_aes_enabled{account="CORP\\sqlsvc_dis"} 0
kerberos_account_aes_enabled{account="CORP\\sqlsvc_lock"} 0
kerberos_account_aes_enabled{account="CORP\\sqlsvc_pt"} 0
kerberos_account_aes_enabled{account="CORP\\sqlsvc_r"} 0
kerberos_account_aes_enabled{account="CORP\\sqlsvc_rc4"} 0
kerberos_account_aes_enabled{account="CORP\\sqlsvc_u"} 0
# HELP kerberos_account_constrained_delegation_targets Number of SPNs in the account's msDS-AllowedToDelegateTo.
# TYPE kerberos_account_constrained_delegation_targets gauge
kerberos_account_constrained_delegation_targets{account="CORP\\SQLE$"} 0
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_a"} 2
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_b"} 0
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_c"} 0
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_dis"} 0
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_lock"} 0
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_pt"} 1
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_r"} 0
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_rc4"} 0
kerberos_account_constrained_delegation_targets{account="CORP\\sqlsvc_u"} 0
# HELP kerberos_account_disabled Whether the account is disabled (userAccountControl ACCOUNTDISABLE): the KDC issues no tickets for it.
# TYPE kerberos_account_disabled gauge
kerberos_account_disabled{account="CORP\\SQLE$"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_a"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_b"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_c"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_dis"} 1
kerberos_account_disabled{account="CORP\\sqlsvc_lock"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_pt"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_r"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_rc4"} 0
kerberos_account_disabled{account="CORP\\sqlsvc_u"} 0
# HELP kerberos_account_found Whether the service account exists in the directory (1) or not (0); absent when the directory could not be asked.
# TYPE kerberos_account_found gauge
kerberos_account_found{account="CORP\\SQLE$"} 1
kerberos_account_found{account="CORP\\no_such_account"} 0
kerberos_account_found{account="CORP\\sqlsvc_a"} 1
kerberos_account_found{account="CORP\\sqlsvc_b"} 1
kerberos_account_found{account="CORP\\sqlsvc_c"} 1
kerberos_account_found{account="CORP\\sqlsvc_dis"} 1
kerberos_account_found{account="CORP\\sqlsvc_lock"} 1
kerberos_account_found{account="CORP\\sqlsvc_pt"} 1
kerberos_account_found{account="CORP\\sqlsvc_r"} 1
kerberos_account_found{account="CORP\\sqlsvc_rc4"} 1
kerberos_account_found{account="CORP\\sqlsvc_u"} 1
# HELP kerberos_account_locked Whether the account is locked out (msDS-User-Account-Control-Computed UF_LOCKOUT).
# TYPE kerberos_account_locked gauge
kerberos_account_locked{account="CORP\\SQLE$"} 0
kerberos_account_locked{account="CORP\\sqlsvc_a"} 0
kerberos_account_locked{account="CORP\\sqlsvc_b"} 0
kerberos_account_locked{account="CORP\\sqlsvc_c"} 0
kerberos_account_locked{account="CORP\\sqlsvc_dis"} 0
kerberos_account_locked{account="CORP\\sqlsvc_lock"} 1
kerberos_account_locked{account="CORP\\sqlsvc_pt"} 0
kerberos_account_locked{account="CORP\\sqlsvc_r"} 0
kerberos_account_locked{account="CORP\\sqlsvc_rc4"} 0
kerberos_account_locked{account="CORP\\sqlsvc_u"} 0
# HELP kerberos_account_protocol_transition Whether the account is trusted to authenticate for delegation, i.e. constrained delegation with any protocol (userAccountControl 0x1000000).
# TYPE kerberos_account_protocol_transition gauge
kerberos_account_protocol_transition{account="CORP\\SQLE$"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_a"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_b"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_c"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_dis"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_lock"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_pt"} 1
kerberos_account_protocol_transition{account="CORP\\sqlsvc_r"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_rc4"} 0
kerberos_account_protocol_transition{account="CORP\\sqlsvc_u"} 0
# HELP kerberos_account_rbcd_principals Number of principals allowed to delegate to the account (msDS-AllowedToActOnBehalfOfOtherIdentity); absent when it could not be read.
# TYPE kerberos_account_rbcd_principals gauge
kerberos_account_rbcd_principals{account="CORP\\SQLE$"} 1
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_a"} 0
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_b"} 0
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_c"} 0
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_dis"} 0
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_lock"} 0
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_pt"} 0
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_r"} 0
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_rc4"} 0
kerberos_account_rbcd_principals{account="CORP\\sqlsvc_u"} 0
# HELP kerberos_account_supported_encryption_types The account's raw msDS-SupportedEncryptionTypes (0 when unset: the KDC's default applies).
# TYPE kerberos_account_supported_encryption_types gauge
kerberos_account_supported_encryption_types{account="CORP\\SQLE$"} 28
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_a"} 24
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_b"} 24
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_c"} 0
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_dis"} 0
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_lock"} 0
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_pt"} 0
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_r"} 0
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_rc4"} 4
kerberos_account_supported_encryption_types{account="CORP\\sqlsvc_u"} 0
# HELP kerberos_account_unconstrained_delegation Whether the account is trusted for delegation to any service (userAccountControl 0x80000).
# TYPE kerberos_account_unconstrained_delegation gauge
kerberos_account_unconstrained_delegation{account="CORP\\SQLE$"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_a"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_b"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_c"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_dis"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_lock"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_pt"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_r"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_rc4"} 0
kerberos_account_unconstrained_delegation{account="CORP\\sqlsvc_u"} 1
# HELP kerberos_delegation_path Whether the mechanism lets the front end's service account delegate to the linked server's service; mechanism: unconstrained, constrained, rbcd. A mechanism that could not be read is absent unless another proves the path.
# TYPE kerberos_delegation_path gauge
kerberos_delegation_path{linked_server="SQLB",mechanism="constrained",sql_instance="sqla"} 1
kerberos_delegation_path{linked_server="SQLB",mechanism="constrained",sql_instance="sqlc"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="constrained",sql_instance="sqlpt"} 1
kerberos_delegation_path{linked_server="SQLB",mechanism="constrained",sql_instance="sqlu"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="rbcd",sql_instance="sqla"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="rbcd",sql_instance="sqlc"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="rbcd",sql_instance="sqlpt"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="rbcd",sql_instance="sqlu"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="unconstrained",sql_instance="sqla"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="unconstrained",sql_instance="sqlc"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="unconstrained",sql_instance="sqlpt"} 0
kerberos_delegation_path{linked_server="SQLB",mechanism="unconstrained",sql_instance="sqlu"} 1
kerberos_delegation_path{linked_server="SQLE",mechanism="constrained",sql_instance="sqla"} 0
kerberos_delegation_path{linked_server="SQLE",mechanism="constrained",sql_instance="sqlr"} 0
kerberos_delegation_path{linked_server="SQLE",mechanism="rbcd",sql_instance="sqla"} 0
kerberos_delegation_path{linked_server="SQLE",mechanism="rbcd",sql_instance="sqlr"} 1
kerberos_delegation_path{linked_server="SQLE",mechanism="unconstrained",sql_instance="sqla"} 0
kerberos_delegation_path{linked_server="SQLE",mechanism="unconstrained",sql_instance="sqlr"} 0
# HELP kerberos_delegation_path_ok Whether any delegation mechanism lets the front end's service account delegate to the linked server's service; absent when unknown.
# TYPE kerberos_delegation_path_ok gauge
kerberos_delegation_path_ok{linked_server="SQLB",sql_instance="sqla"} 1
kerberos_delegation_path_ok{linked_server="SQLB",sql_instance="sqlc"} 0
kerberos_delegation_path_ok{linked_server="SQLB",sql_instance="sqlpt"} 1
kerberos_delegation_path_ok{linked_server="SQLB",sql_instance="sqlu"} 1
kerberos_delegation_path_ok{linked_server="SQLE",sql_instance="sqla"} 0
kerberos_delegation_path_ok{linked_server="SQLE",sql_instance="sqlr"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}

// A linked server whose host is no configured instance: its account is the
// sole holder of its SPN in the forest; with two holders it stays unknown.
func TestWorldDelegationFindsUnconfiguredBackEnd(t *testing.T) {
	w := world.ForTest(t)
	cfg := worldConfig(t, w, []worldInstance{{"sqla", `CORP\sqlsvc_a`}}, "")
	snap := facts.New(testTime)
	snap.LinkedServers["sqla"] = &facts.LinkedServers{Instance: "sqla", Readable: true, Servers: []facts.LinkedServer{
		{Name: "SQLD", Product: "SQL Server", DataSource: "sqld.corp.test", SelfMapped: true},
		{Name: "SQLDUP", Product: "SQL Server", DataSource: "sqldup.corp.test", SelfMapped: true},
	}}
	if err := (delegationCollector{}).Update(context.Background(), worldEnv(cfg), snap); err != nil {
		t.Fatalf("Update: %v", err)
	}
	paths := map[string]facts.DelegationPath{}
	for _, p := range snap.DelegationPaths {
		paths[p.LinkedServer] = p
	}
	if p := paths["SQLD"]; p.ToTarget != "sqld.corp.test" || p.ToAccount != `CORP\wrongacct` {
		t.Errorf("SQLD: %+v; want sqld.corp.test run by CORP\\wrongacct, the sole holder of its SPN", p)
	}
	if p := paths["SQLDUP"]; p.ToTarget != "sqldup.corp.test" || p.ToAccount != "" {
		t.Errorf("SQLDUP: %+v; want sqldup.corp.test with no account (two accounts hold its SPN)", p)
	}
}
