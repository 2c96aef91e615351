package diagnosis

import (
	"slices"
	"strings"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// moveSQLBTo puts SQL B and its account in another domain.
func moveSQLBTo(c *config.Config, s *facts.Snapshot, dns, netbios string) {
	c.Domains = append(c.Domains, config.Domain{Name: dns, NetBIOSName: netbios})
	c.SQLInstances[1].Domain = dns
	c.SQLInstances[1].ServiceAccount = netbios + `\sqlsvc_b`
	s.DelegationPaths[0].ToAccount = netbios + `\sqlsvc_b`
	s.Accounts[1].Name = netbios + `\sqlsvc_b`
}

func TestDelegationRules(t *testing.T) {
	noDelegation := func(s *facts.Snapshot) {
		s.DelegationPaths[0].ConstrainedListed = false
		s.Accounts[0].AllowedToDelegateTo = nil
	}
	runRuleCases(t, delegationFindings, []ruleCase{
		{name: "healthy constrained"},
		{name: "rbcd alone is enough", mutate: func(_ *config.Config, s *facts.Snapshot) {
			noDelegation(s)
			s.DelegationPaths[0].RBCD = true
		}},
		{name: "unconstrained alone is enough (its security warning is an account finding)", mutate: func(_ *config.Config, s *facts.Snapshot) {
			noDelegation(s)
			s.DelegationPaths[0].Unconstrained = true
		}},
		{name: "protocol transition with constrained is fine", mutate: func(_ *config.Config, s *facts.Snapshot) {
			s.DelegationPaths[0].ProtocolTransition = true
		}},
		{name: "unknown accounts give no verdict", mutate: func(_ *config.Config, s *facts.Snapshot) {
			noDelegation(s)
			s.DelegationPaths[0].Known = false
		}},
		{
			name:   "no mechanism",
			mutate: func(_ *config.Config, s *facts.Snapshot) { noDelegation(s) },
			want:   []string{"delegation_missing critical sqla/SQLB"},
			contains: map[string][]string{"delegation_missing": {
				"ANONYMOUS LOGON",
				`Set-ADUser 'sqlsvc_a' -Add @{'msDS-AllowedToDelegateTo'='MSSQLSvc/sqlb.corp.test:1433','MSSQLSvc/sqlb.corp.test'}`,
				`# or, instead, resource-based constrained delegation on the back end: Set-ADUser 'sqlsvc_b' -PrincipalsAllowedToDelegateToAccount (Get-ADUser 'sqlsvc_a')`,
			}},
		},
		{
			name: "rbcd script keeps principals already allowed",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				noDelegation(s)
				s.Accounts[1].RBCDAllowed = []string{`CORP\webfront`}
			},
			want: []string{"delegation_missing critical sqla/SQLB"},
			contains: map[string][]string{"delegation_missing": {
				`-PrincipalsAllowedToDelegateToAccount 'webfront',(Get-ADUser 'sqlsvc_a')`,
				`# -PrincipalsAllowedToDelegateToAccount replaces the whole list of CORP\sqlsvc_b: the line keeps the 1 it allows today (CORP\webfront) and adds CORP\sqlsvc_a`,
			}},
		},
		{
			name: "computer account front end uses Set-ADComputer",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				noDelegation(s)
				s.DelegationPaths[0].FromAccount = `CORP\SQLA$`
				s.Accounts = append(s.Accounts, facts.Account{Name: `CORP\SQLA$`, Kind: "computer", Found: true})
			},
			want:     []string{"delegation_missing critical sqla/SQLB"},
			contains: map[string][]string{"delegation_missing": {`Set-ADComputer 'SQLA$' -Add @{'msDS-AllowedToDelegateTo'=`}},
		},
		{
			name: "constrained across domains does not work",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				moveSQLBTo(c, s, "emea.corp.test", "EMEA")
			},
			want: []string{"delegation_cross_domain critical sqla/SQLB"},
			contains: map[string][]string{"delegation_cross_domain": {
				"does not cross domains",
				`Set-ADUser 'sqlsvc_b' -Server 'emea.corp.test' -PrincipalsAllowedToDelegateToAccount (Get-ADUser 'sqlsvc_a')`,
			}},
		},
		{
			name: "nothing across domains recommends rbcd only",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				moveSQLBTo(c, s, "emea.corp.test", "EMEA")
				noDelegation(s)
			},
			want:     []string{"delegation_missing critical sqla/SQLB"},
			contains: map[string][]string{"delegation_missing": {"different domains", "-PrincipalsAllowedToDelegateToAccount"}},
		},
		{
			name: "domain taken from the instance when the account has no prefix",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				moveSQLBTo(c, s, "emea.corp.test", "EMEA")
				s.DelegationPaths[0].ToAccount = "sqlsvc_b"
			},
			want: []string{"delegation_cross_domain critical sqla/SQLB"},
		},
		{
			name: "unconstrained within one domain tree works",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				moveSQLBTo(c, s, "emea.corp.test", "EMEA")
				s.DelegationPaths[0].ConstrainedListed = false
				s.DelegationPaths[0].Unconstrained = true
			},
		},
		{
			name: "unconstrained to an unrelated domain may be a blocked forest trust",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				moveSQLBTo(c, s, "partner.example", "PARTNER")
				s.DelegationPaths[0].ConstrainedListed = false
				s.DelegationPaths[0].Unconstrained = true
			},
			want:     []string{"delegation_cross_domain warning sqla/SQLB"},
			contains: map[string][]string{"delegation_cross_domain": {"2019", "EnableTGTDelegation"}},
		},
		{
			name: "rbcd across forests is fine",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				moveSQLBTo(c, s, "partner.example", "PARTNER")
				s.DelegationPaths[0].ConstrainedListed = false
				s.DelegationPaths[0].RBCD = true
			},
		},
	})
}

func TestUserRules(t *testing.T) {
	runRuleCases(t, userFindings, []ruleCase{
		{name: "healthy"},
		{
			name: "sensitive user",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Users = append(s.Users, facts.DelegatedPrincipal{Name: `CORP\alice`, Found: true, Sensitive: true})
			},
			want: []string{`user_sensitive warning CORP\alice`},
			contains: map[string][]string{"user_sensitive": {
				"sensitive and cannot be delegated", "ANONYMOUS LOGON", `Set-ADAccountControl -AccountNotDelegated $false -Identity 'alice'`,
			}},
		},
		{
			name: "protected users member",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Users = append(s.Users, facts.DelegatedPrincipal{Name: `CORP\bob`, Found: true, ProtectedUsers: true})
			},
			want:     []string{`user_protected_users warning CORP\bob`},
			contains: map[string][]string{"user_protected_users": {`Remove-ADGroupMember -Identity 'Protected Users' -Members 'bob' -Confirm:$false`}},
		},
		{
			name: "both at once are two findings",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Users = []facts.DelegatedPrincipal{{Name: `CORP\dave`, Found: true, Sensitive: true, ProtectedUsers: true}}
			},
			want: []string{`user_sensitive warning CORP\dave`, `user_protected_users warning CORP\dave`},
		},
		{
			name: "group in Protected Users",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Users = []facts.DelegatedPrincipal{{Name: `CORP\Finance`, Group: true, Found: true, ProtectedUsers: true}}
			},
			want:     []string{`user_protected_users warning CORP\Finance`},
			contains: map[string][]string{"user_protected_users": {"members of group"}},
		},
		{
			name: "not found",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Users = []facts.DelegatedPrincipal{{Name: `CORP\nobody`}}
			},
			want: []string{`delegated_user_not_found info CORP\nobody`},
		},
		{
			name: "lookup error gives no verdict",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Users = []facts.DelegatedPrincipal{{Name: `CORP\alice`, LookupError: "ldap down"}}
			},
		},
	})
}

// addBackEndPath adds an instance running as account with a self-mapped
// linked server to sqlb, whose account does not let it delegate.
func addBackEndPath(cfg *config.Config, s *facts.Snapshot, instance, account, kind, sid string) {
	cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: instance, Host: instance + ".corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: account})
	s.Accounts = append(s.Accounts, facts.Account{Name: account, Kind: kind, Found: true, RBCDRead: true, SID: sid})
	s.DelegationPaths = append(s.DelegationPaths, facts.DelegationPath{
		FromInstance: instance, LinkedServer: "SQLB", ToTarget: "sqlb", FromAccount: account, ToAccount: `CORP\sqlsvc_b`,
		TargetSPNs: []string{"MSSQLSvc/sqlb.corp.test:1433"}, Known: true,
	})
}

// TestRBCDOneLinePerBackEnd: -PrincipalsAllowedToDelegateToAccount
// replaces the back end's whole list, so every finding that proposes RBCD on
// one back end carries the same single line, naming the principals allowed
// today and every front end that needs it, each once.
func TestRBCDOneLinePerBackEnd(t *testing.T) {
	rbcdLines := func(fs []Finding) map[string]bool {
		lines := map[string]bool{}
		for _, f := range fs {
			for _, l := range f.Script {
				if strings.Contains(l, "-PrincipalsAllowedToDelegateToAccount ") && !strings.HasPrefix(l, "# -Principals") {
					lines[l] = true
				}
			}
		}
		return lines
	}
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config, *facts.Snapshot)
		line   string   // the one RBCD line every finding carries
		notes  []string // notes the findings carry with it
		checks int      // findings that carry it
	}{
		{
			name: "two front ends: one line with both",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				s.DelegationPaths[0].ConstrainedListed = false
				addBackEndPath(c, s, "sqlc", `CORP\sqlsvc_c`, "user", "")
			},
			line:   `# or, instead, resource-based constrained delegation on the back end: Set-ADUser 'sqlsvc_b' -PrincipalsAllowedToDelegateToAccount (Get-ADUser 'sqlsvc_a'),(Get-ADUser 'sqlsvc_c')`,
			notes:  []string{`# -PrincipalsAllowedToDelegateToAccount replaces the whole list of CORP\sqlsvc_b: the line allows at once every front end that needs it (CORP\sqlsvc_a, CORP\sqlsvc_c)`},
			checks: 2,
		},
		{
			name: "two front ends and one allowed today, across domains: one command keeping it",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				moveSQLBTo(c, s, "emea.corp.test", "EMEA")
				s.Accounts[1].RBCDAllowed = []string{`EMEA\websvc`}
				addBackEndPath(c, s, "sqlc", `CORP\SQLC$`, "computer", "")
				s.DelegationPaths[1].ToAccount = `EMEA\sqlsvc_b`
			},
			line:   `Set-ADUser 'sqlsvc_b' -Server 'emea.corp.test' -PrincipalsAllowedToDelegateToAccount 'websvc',(Get-ADComputer 'SQLC$'),(Get-ADUser 'sqlsvc_a')`,
			notes:  []string{`# -PrincipalsAllowedToDelegateToAccount replaces the whole list of EMEA\sqlsvc_b: the line keeps the 1 it allows today (EMEA\websvc) and adds CORP\SQLC$, CORP\sqlsvc_a`},
			checks: 2,
		},
		{
			name: "a front end allowed today is kept by name, not added twice",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				moveSQLBTo(c, s, "emea.corp.test", "EMEA")
				// sqlc's account, of another domain than the back end's, is
				// allowed: the directory gave its SID, the exporter read it.
				addBackEndPath(c, s, "sqlc", `CORP\sqlsvc_c`, "user", "S-1-5-21-1-2-3-1107")
				s.DelegationPaths[1].ToAccount, s.DelegationPaths[1].RBCD = `EMEA\sqlsvc_b`, true
				s.Accounts[1].RBCDAllowed = []string{"S-1-5-21-1-2-3-1107"}
			},
			line:   `Set-ADUser 'sqlsvc_b' -Server 'emea.corp.test' -PrincipalsAllowedToDelegateToAccount (Get-ADUser 'sqlsvc_c'),(Get-ADUser 'sqlsvc_a')`,
			notes:  []string{`the line keeps the 1 it allows today (CORP\sqlsvc_c) and adds CORP\sqlsvc_a`},
			checks: 1,
		},
		{
			name: "a principal the directory could not name is kept by SID, and said so",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				s.DelegationPaths[0].ConstrainedListed = false
				s.Accounts[1].RBCDAllowed = []string{"S-1-5-21-9-9-9-1105", `CORP\APP01$`}
			},
			line: `# or, instead, resource-based constrained delegation on the back end: Set-ADUser 'sqlsvc_b' -PrincipalsAllowedToDelegateToAccount 'S-1-5-21-9-9-9-1105','APP01$',(Get-ADUser 'sqlsvc_a')`,
			notes: []string{
				`the line keeps the 2 it allows today (S-1-5-21-9-9-9-1105, CORP\APP01$) and adds CORP\sqlsvc_a`,
				`# the directory could not name S-1-5-21-9-9-9-1105 (an account of another domain or forest, or a deleted one): the line keeps each by SID`,
			},
			checks: 1,
		},
		{
			name: "a back end whose list could not be read says so",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				s.DelegationPaths[0].ConstrainedListed = false
				s.Accounts[1].RBCDRead = false
			},
			line:   `# or, instead, resource-based constrained delegation on the back end: Set-ADUser 'sqlsvc_b' -PrincipalsAllowedToDelegateToAccount (Get-ADUser 'sqlsvc_a')`,
			notes:  []string{`and the exporter could not read it: add whoever it allows today to this line (Get-ADUser 'sqlsvc_b' -Properties PrincipalsAllowedToDelegateToAccount)`},
			checks: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, snap := healthyWorld()
			tc.mutate(cfg, snap)
			fs := delegationFindings(newInput(cfg, snap))
			if len(fs) != tc.checks {
				t.Fatalf("%d findings, want %d: %+v", len(fs), tc.checks, fs)
			}
			if got := rbcdLines(fs); len(got) != 1 || !got[tc.line] {
				t.Errorf("RBCD lines %q, want only %q", sortedKeys(got), tc.line)
			}
			for _, f := range fs {
				script := strings.Join(f.Script, "\n")
				if strings.Count(script, tc.line) != 1 {
					t.Errorf("%s: the line is not in its script once:\n%s", f.Target, script)
				}
				for _, n := range tc.notes {
					if !strings.Contains(script, n) {
						t.Errorf("%s: script lacks the note %q:\n%s", f.Target, n, script)
					}
				}
			}
		})
	}
}

// TestRBCDOneLineInCauses: two front-end accounts are two causes; each
// cause carries the back end's one line (the fix script then writes it once:
// see internal/report).
func TestRBCDOneLineInCauses(t *testing.T) {
	cfg, snap := healthyWorld()
	snap.DelegationPaths[0].ConstrainedListed = false
	addBackEndPath(cfg, snap, "sqlc", `CORP\sqlsvc_c`, "user", "")
	snap.Accounts[1].RBCDAllowed = []string{`CORP\websvc`}
	line := `# or, instead, resource-based constrained delegation on the back end: Set-ADUser 'sqlsvc_b' -PrincipalsAllowedToDelegateToAccount 'websvc',(Get-ADUser 'sqlsvc_a'),(Get-ADUser 'sqlsvc_c')`
	n := 0
	for _, c := range Causes(Evaluate(cfg, snap)) {
		if c.Cause != "service_account_cannot_delegate" {
			continue
		}
		n++
		if k := slices.Index(c.Script, line); k < 0 || slices.Index(c.Script[k+1:], line) >= 0 {
			t.Errorf("cause %s does not carry the line once:\n%s", c.Subject, strings.Join(c.Script, "\n"))
		}
	}
	if n != 2 {
		t.Errorf("%d delegation causes, want one per front-end account", n)
	}
}
