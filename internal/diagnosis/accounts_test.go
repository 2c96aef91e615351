package diagnosis

import (
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func TestAccountRules(t *testing.T) {
	runRuleCases(t, accountFindings, []ruleCase{
		{name: "healthy"},
		{name: "encryption types unset is the domain default, not RC4-only", mutate: func(_ *config.Config, s *facts.Snapshot) {
			s.Accounts[0].SupportedEncTypes = 0
		}},
		{
			name:     "rc4 only",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { s.Accounts[0].SupportedEncTypes = 0x4 },
			want:     []string{`account_rc4_only warning CORP\sqlsvc_a`},
			contains: map[string][]string{"account_rc4_only": {"0x4", `Set-ADUser 'sqlsvc_a' -KerberosEncryptionType AES128,AES256`}},
		},
		{
			name: "rc4 only and the KDC refuses the encryption type: critical",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Accounts[0].SupportedEncTypes = 0x4
				s.Tickets[0] = facts.TicketProbe{Target: "sqla", SPN: spnA, ErrorCode: 14, ErrorName: "KDC_ERR_ETYPE_NOSUPP"}
			},
			want:     []string{`account_rc4_only critical CORP\sqlsvc_a`},
			contains: map[string][]string{"account_rc4_only": {"KDC_ERR_ETYPE_NOSUPP"}},
		},
		{
			name:   "des only is without AES too",
			mutate: func(_ *config.Config, s *facts.Snapshot) { s.Accounts[0].SupportedEncTypes = 0x3 },
			want:   []string{`account_rc4_only warning CORP\sqlsvc_a`},
		},
		{
			name:     "disabled",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { s.Accounts[1].Disabled = true },
			want:     []string{`account_disabled critical CORP\sqlsvc_b`},
			contains: map[string][]string{"account_disabled": {`Enable-ADAccount -Identity 'sqlsvc_b'`}},
		},
		{
			name:     "locked",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { s.Accounts[1].Locked = true },
			want:     []string{`account_locked critical CORP\sqlsvc_b`},
			contains: map[string][]string{"account_locked": {`Unlock-ADAccount -Identity 'sqlsvc_b'`, "4740"}},
		},
		{
			name: "not found",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Accounts[1] = facts.Account{Name: `CORP\sqlsvc_b`, Kind: "user"}
			},
			want: []string{`account_not_found warning CORP\sqlsvc_b`},
		},
		{
			name: "lookup error gives no verdict",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Accounts[1] = facts.Account{Name: `CORP\sqlsvc_b`, LookupError: "ldap: connection reset"}
			},
		},
		{
			name: "unconstrained is a security warning that keeps the hop working",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Accounts[0].TrustedForDelegation = true
				s.Accounts[0].AllowedToDelegateTo = nil
				s.DelegationPaths[0].ConstrainedListed = false
				s.DelegationPaths[0].Unconstrained = true
			},
			want: []string{`delegation_unconstrained warning CORP\sqlsvc_a`},
			contains: map[string][]string{"delegation_unconstrained": {
				`Set-ADUser 'sqlsvc_a' -Add @{'msDS-AllowedToDelegateTo'='MSSQLSvc/sqlb.corp.test:1433','MSSQLSvc/sqlb.corp.test'}  # keeps linked server sqla/SQLB working`,
				`Set-ADAccountControl -TrustedForDelegation $false -Identity 'sqlsvc_a'`,
			}},
		},
		{
			name: "managed service account uses Set-ADServiceAccount",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Accounts = append(s.Accounts, facts.Account{Name: `CORP\gmsa_sql$`, Kind: "managed", Found: true, SupportedEncTypes: 0x4})
			},
			want:     []string{`account_rc4_only warning CORP\gmsa_sql$`},
			contains: map[string][]string{"account_rc4_only": {`Set-ADServiceAccount 'gmsa_sql$' -KerberosEncryptionType AES128,AES256`}},
		},
	})
}

func TestAccountFindingsAreGroupedByTheirInstance(t *testing.T) {
	cfg, snap := healthyWorld()
	snap.Accounts[1].Disabled = true // sqlb's own account
	snap.Accounts = append(snap.Accounts, facts.Account{Name: `CORP\shared`, Kind: "user", Found: true, Locked: true})
	got := map[string]string{}
	for _, f := range accountFindings(newInput(cfg, snap)) {
		got[f.Target] = f.Instance
	}
	if got[`CORP\sqlsvc_b`] != "sqlb" || got[`CORP\shared`] != "" {
		t.Errorf("groups %v: want sqlsvc_b under sqlb and an account no instance uses fleet-wide", got)
	}

	// An account two instances run as is fleet-wide.
	cfg.SQLInstances[0].ServiceAccount, cfg.SQLInstances[1].ServiceAccount = `CORP\sqlsvc_b`, `CORP\sqlsvc_b`
	for i := range snap.SPNs {
		snap.SPNs[i].ExpectedAccount = `CORP\sqlsvc_b`
	}
	for _, f := range accountFindings(newInput(cfg, snap)) {
		if f.Target == `CORP\sqlsvc_b` && f.Instance != "" {
			t.Errorf("a shared account's finding is fleet-wide, got instance %q", f.Instance)
		}
	}
}

func TestLocalAccountRules(t *testing.T) {
	setAccount := func(account string) func(*config.Config, *facts.Snapshot) {
		return func(c *config.Config, s *facts.Snapshot) {
			c.SQLInstances[0].ServiceAccount = ""
			s.SQL["sqla"].EngineAccount = account
		}
	}
	runRuleCases(t, localAccountFindings, []ruleCase{
		{name: "healthy domain account"},
		{name: "virtual account acts as the computer", mutate: setAccount(`NT SERVICE\MSSQLSERVER`)},
		{name: "network service acts as the computer", mutate: setAccount(`NT AUTHORITY\NETWORK SERVICE`)},
		{name: "local system acts as the computer", mutate: setAccount("LocalSystem")},
		{
			name:     "local service has no network identity",
			mutate:   setAccount(`NT AUTHORITY\LOCAL SERVICE`),
			want:     []string{"service_account_local critical sqla"},
			contains: map[string][]string{"service_account_local": {"no network identity", "NTLM"}},
		},
		{name: "dot-prefixed local account", mutate: setAccount(`.\sqluser`), want: []string{"service_account_local critical sqla"}},
		{name: "machine-prefixed local account", mutate: setAccount(`SQLA\sqluser`), want: []string{"service_account_local critical sqla"}},
		{
			// The cycle's target names the host (here as the server said,
			// unlike the configured host name): the diagnosis reads it.
			name: "host named by the cycle's target",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				setAccount(`SQLHOST01\sqluser`)(c, s)
				s.Targets = []facts.Target{{Name: "sqla", SQL: true, HostNetBIOS: "SQLHOST01"}}
			},
			want: []string{"service_account_local critical sqla"},
		},
		{
			name: "account the directory collector calls local",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Accounts[0].Kind = "local"
			},
			want: []string{"service_account_local critical sqla"},
		},
		{
			name: "not expecting Kerberos is a warning",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				no := false
				c.SQLInstances[0].ExpectKerberos = &no
				setAccount(`NT AUTHORITY\LOCAL SERVICE`)(c, s)
			},
			want: []string{"service_account_local warning sqla"},
		},
	})
}
