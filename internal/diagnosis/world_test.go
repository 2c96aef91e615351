package diagnosis

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// healthyWorld is the correct setup of the seeds: client → SQL A (Kerberos
// over TCP) → linked server SQL B with the caller's credentials, SQL A's
// account trusted for constrained delegation (Kerberos only) to SQL B's SPNs.
// Every rule must stay silent on it; each test case breaks one thing.
func healthyWorld() (*config.Config, *facts.Snapshot) {
	yes := true
	cfg := &config.Config{
		Kerberos: config.Kerberos{Realm: "CORP.TEST", Principal: "krbmon@CORP.TEST"},
		Domains:  []config.Domain{{Name: "corp.test", NetBIOSName: "CORP"}},
		SQLInstances: []config.SQLInstance{
			{Name: "sqla", Host: "sqla.corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: `CORP\sqlsvc_a`, ExpectKerberos: &yes, Auth: config.SQLAuth{Method: "kerberos"}},
			{Name: "sqlb", Host: "sqlb.corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: `CORP\sqlsvc_b`, ExpectKerberos: &yes, Auth: config.SQLAuth{Method: "kerberos"}},
		},
		Services:            []config.Service{{Name: "crm", Account: `CORP\crmweb`, SPNs: []string{"HTTP/crm.corp.test"}, Hosts: []string{"crm.corp.test"}}},
		DelegatedPrincipals: config.DelegatedPrincipals{Users: []string{`CORP\carol`}},
		Thresholds:          config.Thresholds{ClockSkewWarning: config.Duration(time.Minute), ClockSkewCritical: config.Duration(4 * time.Minute)},
	}
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	snap := facts.New(t0)
	snap.Finished = t0.Add(2 * time.Second)
	for _, n := range []string{"a", "b"} {
		name := "sql" + n
		snap.SQL[name] = &facts.SQLInstance{
			Name: name, Up: true, AuthScheme: "KERBEROS", NetTransport: "TCP", LocalTCPPort: 1433,
			MachineName: "SQL" + strings.ToUpper(n), PhysicalNetBIOS: "SQL" + strings.ToUpper(n), DomainName: "CORP",
			ListenerPorts: []int{1433}, EngineAccount: `CORP\sqlsvc_` + n,
			ClockSkew: time.Second, ClockMeasured: true,
		}
		snap.ErrorLogs[name] = &facts.ErrorLog{Instance: name, Readable: true, Registrations: []facts.SPNRegistration{
			{Time: t0.Add(-time.Hour), SPN: "MSSQLSvc/" + name + ".corp.test:1433", Registered: true},
			{Time: t0.Add(-time.Hour), SPN: "MSSQLSvc/" + name + ".corp.test", Registered: true},
		}}
		snap.SPNs = append(snap.SPNs,
			facts.ExpectedSPN{Target: name, SPN: "MSSQLSvc/" + name + ".corp.test:1433", ExpectedAccount: `CORP\sqlsvc_` + n, Holders: []string{`CORP\sqlsvc_` + n}},
			facts.ExpectedSPN{Target: name, SPN: "MSSQLSvc/" + name + ".corp.test", ExpectedAccount: `CORP\sqlsvc_` + n, Holders: []string{`CORP\sqlsvc_` + n}},
		)
		snap.Tickets = append(snap.Tickets, facts.TicketProbe{Target: name, SPN: "MSSQLSvc/" + name + ".corp.test:1433", Realm: "CORP.TEST", OK: true,
			TicketEType: "aes256-cts-hmac-sha1-96", SessionKeyEType: "aes256-cts-hmac-sha1-96"})
		snap.AccountKeys = append(snap.AccountKeys, facts.AccountKeys{Name: `CORP\sqlsvc_` + n, Domain: "corp.test", Found: true,
			PwdLastSet: t0.AddDate(-1, 0, 0), SupportedEncTypes: 0x18, SupportedEncTypesSet: true})
		ip := map[string]string{"a": "127.0.0.11", "b": "127.0.0.12"}[n]
		snap.DNS = append(snap.DNS, facts.HostDNS{
			Host: name + ".corp.test", Addresses: []string{ip},
			PTR: map[string][]string{ip: {name + ".corp.test."}}, ReverseMatches: true,
		})
	}
	snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: "crm", SPN: "HTTP/crm.corp.test", ExpectedAccount: `CORP\crmweb`, Holders: []string{`CORP\crmweb`}})
	// A domain raised to the 2008 level in 2012; krbtgt's password reset since.
	snap.AESDomains = []facts.DomainAES{{Domain: "corp.test", Born: t0.AddDate(-15, 0, 0), AESSince: t0.AddDate(-12, 0, 0),
		Krbtgt: facts.AccountKeys{Name: `CORP\krbtgt`, Domain: "corp.test", Found: true, PwdLastSet: t0.AddDate(-2, 0, 0)}}}
	snap.Duplicates = &facts.DuplicateSPNs{Scanned: true, AccountsScanned: 40}
	snap.LinkedServers["sqla"] = &facts.LinkedServers{Instance: "sqla", Readable: true, Servers: []facts.LinkedServer{{
		Name: "SQLB", Product: "SQL Server", Provider: "SQLNCLI", DataSource: "sqlb.corp.test", TargetInstance: "sqlb",
		SelfMapped: true, Tested: true, TestOK: true,
		HopTested: true, HopOK: true, HopAuthScheme: "KERBEROS", HopTransport: "TCP", HopClockSkew: 2 * time.Second,
	}}}
	snap.LinkedServers["sqlb"] = &facts.LinkedServers{Instance: "sqlb", Readable: true}
	snap.DCs = []facts.DomainController{{Domain: "corp.test", Address: "dc1.corp.test", Up: true, LDAPMeasured: true, NTPSkew: 80 * time.Millisecond, NTPMeasured: true}}
	snap.Users = []facts.DelegatedPrincipal{{Name: `CORP\carol`, Found: true}}
	snap.Accounts = []facts.Account{
		{Name: `CORP\sqlsvc_a`, Kind: "user", Found: true, DN: "CN=sqlsvc_a,CN=Users,DC=corp,DC=test", UserAccountControl: 0x200,
			AllowedToDelegateTo: []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}, RBCDRead: true,
			SPNs: []string{"MSSQLSvc/sqla.corp.test:1433", "MSSQLSvc/sqla.corp.test"}},
		{Name: `CORP\sqlsvc_b`, Kind: "user", Found: true, DN: "CN=sqlsvc_b,CN=Users,DC=corp,DC=test", UserAccountControl: 0x200, RBCDRead: true,
			SPNs: []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}},
		{Name: `CORP\crmweb`, Kind: "user", Found: true, DN: "CN=crmweb,CN=Users,DC=corp,DC=test", UserAccountControl: 0x200, SupportedEncTypes: 0x18, RBCDRead: true,
			SPNs: []string{"HTTP/crm.corp.test"}},
	}
	snap.DelegationPaths = []facts.DelegationPath{{
		FromInstance: "sqla", LinkedServer: "SQLB", ToTarget: "sqlb", FromAccount: `CORP\sqlsvc_a`, ToAccount: `CORP\sqlsvc_b`,
		TargetSPNs: []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}, ConstrainedListed: true, Known: true,
	}}
	return cfg, snap
}

// ruleCase is one fact set for one rule: how it differs from the healthy
// world and the findings ("check severity target") the rule must return.
type ruleCase struct {
	name   string
	mutate func(cfg *config.Config, snap *facts.Snapshot)
	want   []string
	// contains lists substrings the findings' text or script must hold,
	// keyed by check.
	contains map[string][]string
}

func runRuleCases(t *testing.T, rule func(*input) []Finding, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, snap := healthyWorld()
			if tc.mutate != nil {
				tc.mutate(cfg, snap)
			}
			got := normalize(rule(newInput(cfg, snap)))
			if g, w := keys(got), strings.Join(sortedStrings(tc.want), "\n"); strings.Join(sortedStrings(g), "\n") != w {
				t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(g, "\n"), w)
			}
			for _, f := range got {
				checkComplete(t, f)
				text := strings.Join(append([]string{f.Summary, f.Detail, f.Fix}, f.Script...), "\n")
				for _, s := range tc.contains[f.Check] {
					if !strings.Contains(text, s) {
						t.Errorf("%s %s: text does not contain %q:\n%s", f.Check, f.Target, s, text)
					}
				}
			}
		})
	}
}

// checkComplete: every finding explains itself and says how to fix it.
func checkComplete(t *testing.T, f Finding) {
	t.Helper()
	if f.Check == "" || f.Target == "" || f.Summary == "" || f.Detail == "" || f.Fix == "" {
		t.Errorf("incomplete finding %+v", f)
	}
	if c, ok := LookupCheck(f.Check); !ok {
		t.Errorf("%s: not in the registry of checks (checks.go)", f.Check)
	} else if !c.Allows(f.Severity) {
		t.Errorf("%s: severity %q, the registry declares %v", f.Check, f.Severity, c.Severities)
	}
	if strings.Contains(f.Summary, "\n") {
		t.Errorf("%s: summary is not one line: %q", f.Check, f.Summary)
	}
}

func keys(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = fmt.Sprintf("%s %s %s", f.Check, f.Severity, f.Target)
	}
	return out
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestHealthyWorldRaisesNothing(t *testing.T) {
	cfg, snap := healthyWorld()
	if got := Evaluate(cfg, snap); len(got) != 0 {
		t.Fatalf("healthy world raised:\n%s", strings.Join(keys(got), "\n"))
	}
}

// Other healthy setups: each is a correct alternative some tools flag.
func TestHealthyVariantsRaiseNothing(t *testing.T) {
	variants := map[string]func(*config.Config, *facts.Snapshot){
		"rbcd instead of constrained": func(_ *config.Config, s *facts.Snapshot) {
			s.DelegationPaths[0].ConstrainedListed = false
			s.DelegationPaths[0].RBCD = true
			s.Accounts[0].AllowedToDelegateTo = nil
			s.Accounts[1].RBCDAllowed = []string{`CORP\sqlsvc_a`}
		},
		"constrained with protocol transition": func(_ *config.Config, s *facts.Snapshot) {
			s.DelegationPaths[0].ProtocolTransition = true
			s.Accounts[0].ProtocolTransition = true
		},
		"rbcd across domains": func(c *config.Config, s *facts.Snapshot) {
			c.Domains = append(c.Domains, config.Domain{Name: "emea.example.org", NetBIOSName: "EMEA"})
			c.SQLInstances[1].Domain, c.SQLInstances[1].ServiceAccount = "emea.example.org", `EMEA\sqlsvc_b`
			p := &s.DelegationPaths[0]
			p.ToAccount, p.ConstrainedListed, p.RBCD = `EMEA\sqlsvc_b`, false, true
			for i := range s.SPNs {
				if s.SPNs[i].Target == "sqlb" {
					s.SPNs[i].ExpectedAccount, s.SPNs[i].Holders = `EMEA\sqlsvc_b`, []string{`EMEA\sqlsvc_b`}
				}
			}
			s.Accounts[1].Name = `EMEA\sqlsvc_b`
			s.SQL["sqlb"].EngineAccount = `EMEA\sqlsvc_b`
		},
		"fixed remote login, hop with SQL authentication": func(_ *config.Config, s *facts.Snapshot) {
			ls := &s.LinkedServers["sqla"].Servers[0]
			ls.SelfMapped, ls.FixedLogin, ls.HopAuthScheme = false, true, "SQL"
			s.DelegationPaths = nil
		},
		"fixed remote login on a link whose caller uses NTLM": func(_ *config.Config, s *facts.Snapshot) {
			ls := &s.LinkedServers["sqla"].Servers[0]
			ls.SelfMapped, ls.FixedLogin, ls.HopAuthScheme = false, true, "NTLM"
			s.DelegationPaths = nil
		},
		"instance not expecting Kerberos uses NTLM": func(c *config.Config, s *facts.Snapshot) {
			no := false
			c.SQLInstances = append(c.SQLInstances, config.SQLInstance{Name: "sqlx", Host: "sqlx.corp.test", ExpectKerberos: &no, Auth: config.SQLAuth{Method: "sql"}})
			s.SQL["sqlx"] = &facts.SQLInstance{Name: "sqlx", Up: true, AuthScheme: "NTLM", NetTransport: "TCP", NTLMClients: []facts.NTLMClient{{Host: "app1", Login: `CORP\bob`, Connections: 3}}}
		},
		"clock skew below the warning threshold": func(_ *config.Config, s *facts.Snapshot) {
			s.SQL["sqla"].ClockSkew = 59 * time.Second
			s.DCs[0].NTPSkew = -50 * time.Second
		},
		"account with AES and RC4": func(_ *config.Config, s *facts.Snapshot) { s.Accounts[0].SupportedEncTypes = 0x1c },
		"unknown expected account": func(_ *config.Config, s *facts.Snapshot) { s.SPNs[0].ExpectedAccount = "" },
		// Seed 004: clients resolve the alias and ask for HTTP/crm.corp.test,
		// which crmweb holds; nobody needs the alias's own SPN.
		"alias whose canonical host's SPN is on the service's account": func(c *config.Config, s *facts.Snapshot) {
			c.Services = append(c.Services, config.Service{Name: "crm-alias", Account: `CORP\crmweb`, SPNs: []string{"HTTP/crmalias.corp.test"}, Hosts: []string{"crmalias.corp.test"}})
			s.SPNs = append(s.SPNs, facts.ExpectedSPN{Target: "crm-alias", SPN: "HTTP/crmalias.corp.test", ExpectedAccount: `CORP\crmweb`})
			s.DNS = append(s.DNS, facts.HostDNS{Host: "crmalias.corp.test", CanonicalName: "crm.corp.test", Addresses: []string{"127.0.0.20"},
				PTR: map[string][]string{"127.0.0.20": {"crm.corp.test."}}, ReverseMatches: true})
			s.CanonicalSPNs = []facts.CanonicalSPN{{Target: "crm-alias", SPN: "HTTP/crmalias.corp.test", Alias: "crmalias.corp.test", CanonicalHost: "crm.corp.test",
				Requested: "HTTP/crm.corp.test", ExpectedAccount: `CORP\crmweb`, Holders: []string{`CORP\crmweb`}}}
			s.Tickets = append(s.Tickets, facts.TicketProbe{Target: "crm-alias", SPN: "HTTP/crm.corp.test", OK: true, TicketEType: "aes256-cts-hmac-sha1-96", SessionKeyEType: "aes256-cts-hmac-sha1-96"})
		},
		// krbtgt's password was set at promotion, seconds before the RID 521
		// group: a domain created at the 2008 level made AES keys from birth.
		"domain created at the 2008 level": func(_ *config.Config, s *facts.Snapshot) {
			d := &s.AESDomains[0]
			d.Born = d.AESSince.Add(-3 * time.Second)
			d.Krbtgt.PwdLastSet = d.AESSince.Add(-2 * time.Second)
		},
		"when the domain could make AES keys is unknown": func(_ *config.Config, s *facts.Snapshot) {
			s.AESDomains[0].AESSince = time.Time{}
			s.AESDomains[0].Krbtgt.PwdLastSet = time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
			s.AccountKeys[0].PwdLastSet = time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
		},
		"password never set is unknown": func(_ *config.Config, s *facts.Snapshot) { s.AccountKeys[0].PwdLastSet = time.Time{} },
		"account names differ in case and form": func(_ *config.Config, s *facts.Snapshot) {
			s.SPNs[0].Holders = []string{`corp.test\SQLSVC_A`}
			s.DelegationPaths[0].FromAccount = "sqlsvc_a@CORP.TEST"
		},
		"virtual account runs sqlb": func(c *config.Config, s *facts.Snapshot) {
			c.SQLInstances[1].ServiceAccount = `NT SERVICE\MSSQLSERVER`
			s.SQL["sqlb"].EngineAccount = `NT SERVICE\MSSQLSERVER`
		},
	}
	for name, mutate := range variants {
		t.Run(name, func(t *testing.T) {
			cfg, snap := healthyWorld()
			mutate(cfg, snap)
			if got := Evaluate(cfg, snap); len(got) != 0 {
				t.Fatalf("raised:\n%s", strings.Join(keys(got), "\n"))
			}
		})
	}
}
