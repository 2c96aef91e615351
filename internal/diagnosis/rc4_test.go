package diagnosis

import (
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

var year2005 = time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)

func TestRC4Findings(t *testing.T) {
	runRuleCases(t, rc4Findings, []ruleCase{
		{name: "AES tickets and AES keys raise nothing"},
		{
			name: "an RC4 ticket on an account with AES keys and no encryption types: no reset needed, 0x18",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Tickets[0].TicketEType = "rc4-hmac"
				s.AccountKeys[0].SupportedEncTypes, s.AccountKeys[0].SupportedEncTypesSet = 0, false
			},
			want: []string{"spn_rc4_ticket warning MSSQLSvc/sqla.corp.test:1433"},
			contains: map[string][]string{"spn_rc4_ticket": {
				"Kerberoasting", "held by CORP\\sqlsvc_a", "# Set-ADAccountPassword -Identity 'sqlsvc_a' -Reset", "no reset is needed",
				"Set-ADUser 'sqlsvc_a' -Replace @{'msDS-SupportedEncryptionTypes'=24}",
			}},
		},
		{
			name: "an RC4 ticket although the account allows AES: its AES keys are missing, reset it",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Tickets[0].TicketEType = "rc4-hmac"
			},
			want: []string{"spn_rc4_ticket warning MSSQLSvc/sqla.corp.test:1433"},
			contains: map[string][]string{"spn_rc4_ticket": {
				"already allows AES and the KDC still issued RC4", "\nSet-ADAccountPassword -Identity 'sqlsvc_a' -Reset",
				"Set-ADUser 'sqlsvc_a' -Replace @{'msDS-SupportedEncryptionTypes'=24}",
			}},
		},
		{
			name: "an account whose password predates AES: warning before enforcement, reset first",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Tickets[1].TicketEType = "rc4-hmac"
				s.AccountKeys[1].PwdLastSet = year2005
			},
			want: []string{"spn_rc4_ticket warning MSSQLSvc/sqlb.corp.test:1433", "account_no_aes_keys warning CORP\\sqlsvc_b"},
			contains: map[string][]string{
				"spn_rc4_ticket":      {"before the domain could make AES keys", "\nSet-ADAccountPassword -Identity 'sqlsvc_b' -Reset"},
				"account_no_aes_keys": {"2005-01-01", "KDC_ERR_ETYPE_NOSUPP", "Set-ADAccountPassword -Identity 'sqlsvc_b' -Reset", "'msDS-SupportedEncryptionTypes'=24"},
			},
		},
		{
			name: "enforcing (configured): an account without AES keys is critical",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				c.Kerberos.RC4Enforced = true
				s.AccountKeys[1].PwdLastSet = year2005
			},
			want: []string{"account_no_aes_keys critical CORP\\sqlsvc_b"},
		},
		{
			name: "enforcing (configured), encryption types unset: critical",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				c.Kerberos.RC4Enforced = true
				s.AccountKeys[1].PwdLastSet = year2005
				s.AccountKeys[1].SupportedEncTypes, s.AccountKeys[1].SupportedEncTypesSet = 0, false
			},
			want: []string{"account_no_aes_keys critical CORP\\sqlsvc_b"},
		},
		{
			name: "enforcing (configured), but the account allows RC4 explicitly: still a warning",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				c.Kerberos.RC4Enforced = true
				s.AccountKeys[1].PwdLastSet = year2005
				s.AccountKeys[1].SupportedEncTypes = 0x1C
			},
			want:     []string{"account_no_aes_keys warning CORP\\sqlsvc_b"},
			contains: map[string][]string{"account_no_aes_keys": {"allows RC4 explicitly"}},
		},
		{
			name: "enforcing (seen): the KDC refused a ticket for its SPN with error 14",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.AccountKeys[1].PwdLastSet = year2005
				s.Tickets[1] = facts.TicketProbe{Target: "sqlb", SPN: "MSSQLSvc/sqlb.corp.test:1433", ErrorCode: 14, ErrorName: "KDC_ERR_ETYPE_NOSUPP"}
			},
			want:     []string{"account_no_aes_keys critical CORP\\sqlsvc_b"},
			contains: map[string][]string{"account_no_aes_keys": {"refused a ticket for one of its SPNs with error 14"}},
		},
		{
			name: "krbtgt without AES keys",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.AESDomains[0].Krbtgt.PwdLastSet = year2005
			},
			want:     []string{"krbtgt_no_aes_keys warning corp.test"},
			contains: map[string][]string{"krbtgt_no_aes_keys": {"CORP\\krbtgt", "twice", "-Server 'corp.test'"}},
		},
		{
			name: "a domain below the 2008 functional level: no account has AES keys, whatever the dates",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.AESDomains[0].FunctionalLevel, s.AESDomains[0].FunctionalLevelKnown = 2, true
			},
			want: []string{"account_no_aes_keys warning CORP\\sqlsvc_a", "account_no_aes_keys warning CORP\\sqlsvc_b", "krbtgt_no_aes_keys warning corp.test"},
			contains: map[string][]string{
				"account_no_aes_keys": {"functional level 2", "below Windows Server 2008", "Set-ADDomainMode -Identity 'corp.test' -DomainMode Windows2008Domain", "Set-ADAccountPassword -Identity 'sqlsvc_"},
				"krbtgt_no_aes_keys":  {"functional level 2", "Set-ADDomainMode -Identity 'corp.test'"},
			},
		},
		{
			name: "a domain at the 2008 level without a RID 521 group: unknown, nothing raised",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.AESDomains[0].FunctionalLevel, s.AESDomains[0].FunctionalLevelKnown = 3, true
				s.AESDomains[0].AESSince = time.Time{}
				s.AccountKeys[1].PwdLastSet = year2005
			},
		},
		{
			name: "an account not found, or never read, raises nothing",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.AccountKeys[1] = facts.AccountKeys{Name: `CORP\sqlsvc_b`, Domain: "corp.test", Error: "timeout"}
			},
		},
	})
}

func TestCNAMEFindings(t *testing.T) {
	alias := func(holders []string) func(*config.Config, *facts.Snapshot) {
		return func(c *config.Config, s *facts.Snapshot) {
			c.Services = append(c.Services, config.Service{Name: "reports", Account: `CORP\rptweb`, SPNs: []string{"HTTP/reports.corp.test"}, Hosts: []string{"reports.corp.test"}})
			s.SPNs = append(s.SPNs, facts.ExpectedSPN{Target: "reports", SPN: "HTTP/reports.corp.test", ExpectedAccount: `CORP\rptweb`, Holders: []string{`CORP\rptweb`}})
			s.CanonicalSPNs = []facts.CanonicalSPN{{Target: "reports", SPN: "HTTP/reports.corp.test", Alias: "reports.corp.test", CanonicalHost: "rptnode1.corp.test",
				Requested: "HTTP/rptnode1.corp.test", ExpectedAccount: `CORP\rptweb`, Holders: holders}}
		}
	}
	runRuleCases(t, cnameFindings, []ruleCase{
		{
			name:   "the SPN exists only for the alias",
			mutate: alias(nil),
			want:   []string{"spn_cname_mismatch critical HTTP/reports.corp.test"},
			contains: map[string][]string{"spn_cname_mismatch": {
				"HTTP/rptnode1.corp.test", "no account holds", "NTLM",
				"Remove-DnsServerResourceRecord -ZoneName 'corp.test' -RRType CName -Name 'reports' -Force",
				"Add-DnsServerResourceRecordA -ZoneName 'corp.test' -Name 'reports'",
				"# or, only if rptnode1.corp.test serves this service alone: setspn -S HTTP/rptnode1.corp.test CORP\\rptweb",
			}},
		},
		{
			name:     "the canonical host's SPN is on another account",
			mutate:   alias([]string{`CORP\RPTNODE1$`}),
			want:     []string{"spn_cname_mismatch critical HTTP/reports.corp.test"},
			contains: map[string][]string{"spn_cname_mismatch": {"KRB_AP_ERR_MODIFIED", "held by CORP\\RPTNODE1$"}},
		},
		{name: "the canonical host's SPN is on the service's account", mutate: alias([]string{`CORP\rptweb`})},
		{
			// setspn would read a canonical host that starts with - as a switch
			name: "a switch-like canonical SPN gets a comment, not a setspn line",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				alias(nil)(c, s)
				s.CanonicalSPNs[0].Requested = "-D"
			},
			want: []string{"spn_cname_mismatch critical HTTP/reports.corp.test"},
			contains: map[string][]string{"spn_cname_mismatch": {
				"serves this service alone: # not written: a value that starts like a switch; setspn -S",
			}},
		},
		{
			name: "unknown holders raise nothing",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				alias(nil)(c, s)
				s.CanonicalSPNs[0].LookupError = "timeout"
			},
		},
	})
}

// With the alias judged, the alias's own missing SPN is not reported twice,
// nor the KDC's error 7 for the canonical SPN.
func TestCNAMEReplacesAliasSPNFindings(t *testing.T) {
	cfg, snap := healthyWorld()
	cfg.Services = append(cfg.Services, config.Service{Name: "reports", Account: `CORP\rptweb`, SPNs: []string{"HTTP/reports.corp.test"}})
	snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: "reports", SPN: "HTTP/reports.corp.test", ExpectedAccount: `CORP\rptweb`})
	snap.CanonicalSPNs = []facts.CanonicalSPN{{Target: "reports", SPN: "HTTP/reports.corp.test", Alias: "reports.corp.test", CanonicalHost: "rptnode1.corp.test",
		Requested: "HTTP/rptnode1.corp.test", ExpectedAccount: `CORP\rptweb`}}
	snap.Tickets = append(snap.Tickets, facts.TicketProbe{Target: "reports", SPN: "HTTP/rptnode1.corp.test", ErrorCode: 7, ErrorName: "KDC_ERR_S_PRINCIPAL_UNKNOWN"})
	got := keys(Evaluate(cfg, snap))
	if len(got) != 1 || got[0] != "spn_cname_mismatch critical HTTP/reports.corp.test" {
		t.Fatalf("findings %q; want only spn_cname_mismatch", got)
	}
}

// A computer account's password is reset on its host, and a gMSA changes
// its own: no finding scripts a directory reset for either.
func TestRC4NoDirectoryResetForComputersAndGMSAs(t *testing.T) {
	for kind, want := range map[string]string{"computer": "Test-ComputerSecureChannel -Repair", "managed": "gMSA and changes its own password"} {
		for name, mutate := range map[string]func(*facts.Snapshot){
			"rc4 ticket": func(s *facts.Snapshot) { s.Tickets[1].TicketEType = "rc4-hmac" },
			"error 14": func(s *facts.Snapshot) {
				s.Tickets[1] = facts.TicketProbe{Target: "sqlb", SPN: "MSSQLSvc/sqlb.corp.test:1433", ErrorCode: 14, ErrorName: "KDC_ERR_ETYPE_NOSUPP"}
			},
		} {
			cfg, snap := healthyWorld()
			snap.Accounts[1].Kind = kind
			snap.AccountKeys[1].PwdLastSet = year2005
			mutate(snap)
			in := newInput(cfg, snap)
			fs := append(rc4Findings(in), kdcFindings(in)...)
			seen := 0
			for _, f := range fs {
				for _, line := range f.Script {
					if strings.Contains(line, "Set-ADAccountPassword") && !strings.HasPrefix(line, "#") {
						t.Errorf("%s, %s: %s scripts a directory reset: %s", kind, name, f.Check, line)
					}
					if strings.HasPrefix(line, "# ") && strings.Contains(line, want) {
						seen++
					}
				}
			}
			if seen < 2 {
				t.Errorf("%s, %s: want the %q comment in two findings, got %d:\n%v", kind, name, want, seen, fs)
			}
		}
	}
}
