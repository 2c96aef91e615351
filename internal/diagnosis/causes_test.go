package diagnosis

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// causeKey is how the tests name a cause: "kind severity subject affected".
func causeKey(c Cause) string {
	return fmt.Sprintf("%s %s %s %d", c.Cause, c.Severity, c.Subject, len(c.Affected))
}

func causeKeys(cs []Cause) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = causeKey(c)
	}
	return out
}

// checkPartition: every finding is in exactly one cause, and each cause is
// well formed (registered kind that lists its own findings' checks, the
// worst severity, each script line once).
func checkPartition(t *testing.T, findings []Finding, causes []Cause) {
	t.Helper()
	count := map[string]int{}
	for _, c := range causes {
		k, ok := LookupCauseKind(c.Cause)
		if !ok {
			t.Errorf("cause %q is not registered in CauseKinds", c.Cause)
		}
		worst := Info
		lines := map[string]bool{}
		for _, l := range c.Script {
			if lines[l] {
				t.Errorf("%s: script line %q twice", causeKey(c), l)
			}
			lines[l] = true
		}
		for _, f := range c.Findings {
			count[refKey(f.Check, f.Target)]++
			if f.Severity.Rank() < worst.Rank() {
				worst = f.Severity
			}
			if kindOf(f) == c.Cause && !k.Lists(f.Check) {
				t.Errorf("%s: kind %s does not list check %s", causeKey(c), c.Cause, f.Check)
			}
			for _, l := range f.Script {
				if !lines[l] {
					t.Errorf("%s: script lacks its finding's line %q", causeKey(c), l)
				}
			}
		}
		if c.Severity != worst {
			t.Errorf("%s: severity %s, worst of its findings %s", causeKey(c), c.Severity, worst)
		}
		if c.Summary == "" || c.Fix == "" || len(c.Affected) == 0 {
			t.Errorf("%s: incomplete %+v", causeKey(c), c)
		}
	}
	for _, f := range findings {
		if n := count[refKey(f.Check, f.Target)]; n != 1 {
			t.Errorf("finding %s %s is in %d causes", f.Check, f.Target, n)
		}
	}
	if len(count) != len(findings) {
		t.Errorf("causes hold %d findings, there are %d", len(count), len(findings))
	}
}

func TestCauseKindsRegistry(t *testing.T) {
	if !sort.SliceIsSorted(CauseKinds, func(i, j int) bool { return CauseKinds[i].Name < CauseKinds[j].Name }) {
		t.Error("CauseKinds is not sorted by name")
	}
	listed := map[string]bool{}
	for i, k := range CauseKinds {
		if i > 0 && CauseKinds[i-1].Name == k.Name {
			t.Errorf("%s: registered twice", k.Name)
		}
		if k.Subject == "" || k.Meaning == "" || k.Summary == "" || k.Fix == "" || k.Why == "" || len(k.Checks) == 0 {
			t.Errorf("%s: incomplete", k.Name)
		}
		for _, c := range k.Checks {
			if _, ok := LookupCheck(c); !ok {
				t.Errorf("%s lists %s, which is no check", k.Name, c)
			}
			listed[c] = true
		}
	}
	for _, c := range Checks {
		if !listed[c.Name] {
			t.Errorf("check %s belongs to no kind of cause", c.Name)
		}
	}
}

func TestBrokenWorldCollapsesToCauses(t *testing.T) {
	cfg, snap := brokenWorld()
	findings := Evaluate(cfg, snap)
	causes := Causes(findings)
	checkPartition(t, findings, causes)
	want := []string{
		`service_account_spns critical CORP\sqlsvc_c 2`, // its SPN; sqlc: the failed registration and the NTLM first hop it explains
		`service_account_spns critical CORP\sqlsvc_d 2`, // the wrong-account SPN and the failed Kerberos logon
		`service_account_unusable critical CORP\sqlsvc_dis 1`,
		`service_account_unusable critical CORP\sqlsvc_lock 1`,
		`delegated_user warning CORP\alice 1`,
		`delegated_user warning CORP\bob 1`,
		`host_dns warning sqlm.corp.test 1`,
		`service_account_rc4 warning CORP\sqlsvc_rc4 1`,
		`service_account_spns warning CORP\sqldup1, CORP\sqldup2 1`,
		`service_account_unconstrained warning CORP\sqlsvc_u 1`,
	}
	if got := causeKeys(causes); !reflect.DeepEqual(got, want) {
		t.Errorf("causes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// causeCase breaks the healthy world and names the one cause expected to
// gather the findings of the given checks.
type causeCase struct {
	name   string
	mutate func(cfg *config.Config, snap *facts.Snapshot)
	want   string   // causeKey of the cause
	checks []string // the checks of its findings, sorted, with repeats
	script []string // lines its script must hold, each exactly once
}

// addFrontEnds adds n instances running as one account, each with a
// self-mapped linked server to sqlb that the account may not delegate to.
func addFrontEnds(cfg *config.Config, snap *facts.Snapshot, n int, account string) {
	yes := true
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("fe%02d", i)
		cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: name, Host: name + ".corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: account, ExpectKerberos: &yes})
		snap.SQL[name] = &facts.SQLInstance{Name: name, Up: true, AuthScheme: "KERBEROS", NetTransport: "TCP", EngineAccount: account}
		snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: name, SPN: "MSSQLSvc/" + name + ".corp.test:1433", ExpectedAccount: account, Holders: []string{account}})
		snap.LinkedServers[name] = &facts.LinkedServers{Instance: name, Readable: true, Servers: []facts.LinkedServer{{
			Name: "SQLB", DataSource: "sqlb.corp.test", TargetInstance: "sqlb", SelfMapped: true, Tested: true, TestOK: false,
			ErrNumber: 18456, ErrMsg: "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'.",
		}}}
		snap.DelegationPaths = append(snap.DelegationPaths, facts.DelegationPath{
			FromInstance: name, LinkedServer: "SQLB", ToTarget: "sqlb", FromAccount: account, ToAccount: `CORP\sqlsvc_b`,
			TargetSPNs: []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}, Known: true,
		})
	}
	snap.Accounts = append(snap.Accounts, facts.Account{Name: account, Kind: "user", Found: true, SupportedEncTypes: 0x18, RBCDRead: true})
}

func repeat(check string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = check
	}
	return out
}

func TestCauseGrouping(t *testing.T) {
	delegationLine := `Set-ADUser 'sqlsvc_fe' -Add @{'msDS-AllowedToDelegateTo'='MSSQLSvc/sqlb.corp.test:1433','MSSQLSvc/sqlb.corp.test'}`
	cases := []causeCase{
		{
			name: "one account lacks delegation for 40 front ends: one cause, 40 affected, the line once",
			mutate: func(cfg *config.Config, snap *facts.Snapshot) {
				addFrontEnds(cfg, snap, 40, `CORP\sqlsvc_fe`)
			},
			want:   `service_account_cannot_delegate critical CORP\sqlsvc_fe 40`,
			checks: append(repeat("delegation_missing", 40), repeat("linked_server_hop_anonymous", 40)...),
			script: []string{delegationLine},
		},
		{
			name: "every missing SPN of one account, on three instances, is one cause on the account",
			mutate: func(cfg *config.Config, snap *facts.Snapshot) {
				yes := true
				for _, name := range []string{"sqlx", "sqly", "sqlz"} {
					cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: name, Host: name + ".corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: `CORP\sqlsvc_shared`, ExpectKerberos: &yes})
					snap.SQL[name] = &facts.SQLInstance{Name: name, Up: true, AuthScheme: "NTLM", NetTransport: "TCP", EngineAccount: `CORP\sqlsvc_shared`}
					snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: name, SPN: "MSSQLSvc/" + name + ".corp.test:1433", ExpectedAccount: `CORP\sqlsvc_shared`})
				}
			},
			// the three SPNs and the three NTLM first hops they explain
			want:   `service_account_spns critical CORP\sqlsvc_shared 6`,
			checks: append(repeat("first_hop_ntlm", 3), repeat("spn_missing", 3)...),
			script: []string{`setspn -S MSSQLSvc/sqlx.corp.test:1433 CORP\sqlsvc_shared`, `setspn -S MSSQLSvc/sqlz.corp.test:1433 CORP\sqlsvc_shared`},
		},
		{
			name: "port-less and short-name forms of several accounts are one policy cause of the domain",
			mutate: func(cfg *config.Config, snap *facts.Snapshot) {
				snap.SPNs = append(snap.SPNs,
					facts.ExpectedSPN{Target: "sqla", SPN: "MSSQLSvc/SQLA", ExpectedAccount: `CORP\sqlsvc_a`},
					facts.ExpectedSPN{Target: "sqla", SPN: "MSSQLSvc/SQLA:1433", ExpectedAccount: `CORP\sqlsvc_a`},
					facts.ExpectedSPN{Target: "sqlb", SPN: "MSSQLSvc/SQLB", ExpectedAccount: `CORP\sqlsvc_b`},
				)
			},
			want:   "spn_form_policy warning corp.test 3",
			checks: repeat("spn_missing", 3),
			script: []string{`setspn -S MSSQLSvc/SQLA CORP\sqlsvc_a`, `setspn -S MSSQLSvc/SQLB CORP\sqlsvc_b`},
		},
		{
			name: "RC4 tickets and no AES allowed on one account are one enc-type cause",
			mutate: func(cfg *config.Config, snap *facts.Snapshot) {
				snap.Accounts[2].SupportedEncTypes = 0x4
				snap.Tickets = append(snap.Tickets, facts.TicketProbe{Target: "crm", SPN: "HTTP/crm.corp.test", Realm: "CORP.TEST", OK: true, TicketEType: "rc4-hmac"})
			},
			want:   `service_account_rc4 warning CORP\crmweb 2`,
			checks: []string{"account_rc4_only", "spn_rc4_ticket"},
		},
		{
			name: "the clocks of two instances on one host are one cause on the host",
			mutate: func(cfg *config.Config, snap *facts.Snapshot) {
				cfg.SQLInstances[1].Host = "sqla.corp.test"
				snap.SQL["sqla"].ClockSkew, snap.SQL["sqlb"].ClockSkew = 5*60e9, 5*60e9
			},
			want:   "clock_skew critical sqla.corp.test 2",
			checks: []string{"clock_skew_sql", "clock_skew_sql"},
			script: []string{"w32tm /resync /rediscover  # on sqla.corp.test"},
		},
		{
			name: "a second hop that fails for a missing delegation joins the delegation's cause",
			mutate: func(cfg *config.Config, snap *facts.Snapshot) {
				snap.DelegationPaths[0].ConstrainedListed = false
				sv := &snap.LinkedServers["sqla"].Servers[0]
				sv.HopOK, sv.HopError = false, "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'."
			},
			want:   `service_account_cannot_delegate critical CORP\sqlsvc_a 1`,
			checks: []string{"delegation_missing", "linked_server_hop_anonymous"},
		},
		{
			name: "a KDC refusal for a disabled account's SPN joins the account's cause",
			mutate: func(cfg *config.Config, snap *facts.Snapshot) {
				snap.Accounts[2].Disabled = true
				snap.Tickets = append(snap.Tickets, facts.TicketProbe{Target: "crm", SPN: "HTTP/crm.corp.test", Realm: "CORP.TEST", ErrorCode: 18, ErrorName: "KDC_ERR_CLIENT_REVOKED"})
			},
			want:   `service_account_unusable critical CORP\crmweb 2`,
			checks: []string{"account_disabled", "kdc_ticket_failed"},
		},
		{
			name: "NTLM on the first hop with no cause in the directory stands alone",
			mutate: func(cfg *config.Config, snap *facts.Snapshot) {
				snap.SQL["sqla"].AuthScheme = "NTLM"
			},
			want:   "kerberos_not_used critical sqla 1",
			checks: []string{"first_hop_ntlm"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, snap := healthyWorld()
			tc.mutate(cfg, snap)
			findings := Evaluate(cfg, snap)
			causes := Causes(findings)
			checkPartition(t, findings, causes)
			var found *Cause
			for i := range causes {
				if causeKey(causes[i]) == tc.want {
					found = &causes[i]
				}
			}
			if found == nil {
				t.Fatalf("no cause %q among:\n%s", tc.want, strings.Join(causeKeys(causes), "\n"))
			}
			var checks []string
			for _, f := range found.Findings {
				checks = append(checks, f.Check)
			}
			sort.Strings(checks)
			if !reflect.DeepEqual(checks, tc.checks) {
				t.Errorf("findings %v, want %v", checks, tc.checks)
			}
			for _, l := range tc.script {
				n := 0
				for _, have := range found.Script {
					if have == l {
						n++
					}
				}
				if n != 1 {
					t.Errorf("script has %q %d times:\n%s", l, n, strings.Join(found.Script, "\n"))
				}
			}
		})
	}
}

// TestCausesOrder: severity first, then blast radius, then kind and
// subject, whatever order the findings come in.
func TestCausesOrder(t *testing.T) {
	fs := []Finding{
		{Check: "user_sensitive", Severity: Warning, Target: "CORP\\z", Summary: "s", Fix: "f"},
		{Check: "spn_missing", Severity: Warning, Target: "MSSQLSvc/a:1", Subject: "CORP\\svc", Summary: "s", Fix: "f"},
		{Check: "spn_missing", Severity: Warning, Target: "MSSQLSvc/b:1", Subject: "CORP\\svc", Summary: "s", Fix: "f"},
		{Check: "account_disabled", Severity: Critical, Target: "CORP\\d", Subject: "CORP\\d", Summary: "s", Fix: "f"},
		{Check: "user_sensitive", Severity: Warning, Target: "CORP\\a", Summary: "s", Fix: "f"},
	}
	want := []string{
		`service_account_unusable critical CORP\d 1`,
		`service_account_spns warning CORP\svc 2`,
		`delegated_user warning CORP\a 1`,
		`delegated_user warning CORP\z 1`,
	}
	for i := 0; i < 2; i++ {
		got := Causes(fs)
		checkPartition(t, fs, got)
		if !reflect.DeepEqual(causeKeys(got), want) {
			t.Errorf("order %v, want %v", causeKeys(got), want)
		}
		fs[0], fs[4] = fs[4], fs[0]
	}
}

// TestCausedByFollowsChainsAndSurvivesCycles: a symptom of a symptom
// joins the root's cause; findings naming each other in a circle stay
// each in a cause of its own kind, and a missing reference is skipped.
func TestCausedByFollowsChainsAndSurvivesCycles(t *testing.T) {
	fs := []Finding{
		{Check: "spn_missing", Severity: Warning, Target: "MSSQLSvc/a:1", Subject: "CORP\\svc", Summary: "s", Fix: "f"},
		{Check: "first_hop_ntlm", Severity: Critical, Target: "a", Summary: "s", Fix: "f", CausedBy: []FindingRef{{"dns_reverse_mismatch", "gone"}, {"spn_missing", "mssqlsvc/A:1"}}},
		{Check: "linked_server_hop_anonymous", Severity: Critical, Target: "a/B", Summary: "s", Fix: "f", CausedBy: []FindingRef{{"first_hop_ntlm", "a"}}},
		{Check: "linked_server_hop_ntlm", Severity: Critical, Target: "x/Y", Summary: "s", Fix: "f", CausedBy: []FindingRef{{"ntlm_clients", "x"}}},
		{Check: "ntlm_clients", Severity: Warning, Target: "x", Summary: "s", Fix: "f", CausedBy: []FindingRef{{"linked_server_hop_ntlm", "x/Y"}}},
	}
	got := Causes(fs)
	checkPartition(t, fs, got)
	if len(got) != 2 || causeKey(got[0]) != `service_account_spns critical CORP\svc 3` || len(got[1].Findings) != 2 {
		t.Errorf("causes %v", causeKeys(got))
	}
}
