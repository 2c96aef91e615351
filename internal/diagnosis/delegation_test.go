package diagnosis

import (
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
				`-PrincipalsAllowedToDelegateToAccount (Get-ADUser 'sqlsvc_a'),(Get-ADUser 'webfront')`,
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
