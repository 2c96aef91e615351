package diagnosis

import (
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

const (
	spnA     = "MSSQLSvc/sqla.corp.test:1433"
	spnAHost = "MSSQLSvc/sqla.corp.test"
	spnB     = "MSSQLSvc/sqlb.corp.test:1433"
)

// expectedSPN returns the expected-SPN fact for spn.
func expectedSPN(s *facts.Snapshot, spn string) *facts.ExpectedSPN {
	for i := range s.SPNs {
		if s.SPNs[i].SPN == spn {
			return &s.SPNs[i]
		}
	}
	panic("no expected SPN " + spn)
}

func TestSPNRules(t *testing.T) {
	runRuleCases(t, spnFindings, []ruleCase{
		{name: "healthy"},
		{
			name:   "missing on an instance expecting Kerberos",
			mutate: func(_ *config.Config, s *facts.Snapshot) { expectedSPN(s, spnA).Holders = nil },
			want:   []string{"spn_missing critical " + spnA},
			contains: map[string][]string{"spn_missing": {
				"falls back to NTLM", "ANONYMOUS LOGON", `setspn -S MSSQLSvc/sqla.corp.test:1433 CORP\sqlsvc_a`,
			}},
		},
		{
			name: "missing, confirmed by the KDC and explained by the error log",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				expectedSPN(s, spnA).Holders = nil
				s.Tickets[0] = facts.TicketProbe{Target: "sqla", SPN: spnA, ErrorCode: 7, ErrorName: "KDC_ERR_S_PRINCIPAL_UNKNOWN"}
				s.ErrorLogs["sqla"].Registrations[0] = facts.SPNRegistration{SPN: spnA, ReturnCode: "0x2098", State: 15}
			},
			want:     []string{"spn_missing critical " + spnA},
			contains: map[string][]string{"spn_missing": {"failed with error 7", "0x2098", "spn_registration_failed"}},
		},
		{
			name:     "missing port-less form while the TCP form exists is a warning",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { expectedSPN(s, spnAHost).Holders = nil },
			want:     []string{"spn_missing warning " + spnAHost},
			contains: map[string][]string{"spn_missing": {"named pipes"}},
		},
		{
			name: "missing short-name form is a warning",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SPNs = append(s.SPNs, facts.ExpectedSPN{Target: "sqla", SPN: "MSSQLSvc/sqla:1433", ExpectedAccount: `CORP\sqlsvc_a`})
			},
			want: []string{"spn_missing warning MSSQLSvc/sqla:1433"},
		},
		{
			name: "missing where Kerberos is not expected is a warning",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				no := false
				c.SQLInstances[0].ExpectKerberos = &no
				expectedSPN(s, spnA).Holders = nil
			},
			want: []string{"spn_missing warning " + spnA},
		},
		{
			name: "missing on a back end is critical even without expect_kerberos",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				no := false
				c.SQLInstances[1].ExpectKerberos = &no
				expectedSPN(s, spnB).Holders = nil
			},
			want: []string{"spn_missing critical " + spnB},
		},
		{
			name: "missing with unknown account gives a placeholder, not a command",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				e := expectedSPN(s, spnA)
				e.Holders, e.ExpectedAccount = nil, ""
			},
			want:     []string{"spn_missing critical " + spnA},
			contains: map[string][]string{"spn_missing": {`# setspn -S MSSQLSvc/sqla.corp.test:1433 DOMAIN\<service account>`}},
		},
		{
			name:   "on the wrong account",
			mutate: func(_ *config.Config, s *facts.Snapshot) { expectedSPN(s, spnA).Holders = []string{`CORP\wrongacct`} },
			want:   []string{"spn_wrong_account critical " + spnA},
			contains: map[string][]string{"spn_wrong_account": {
				"KRB_AP_ERR_MODIFIED", `setspn -D MSSQLSvc/sqla.corp.test:1433 CORP\wrongacct`, `setspn -S MSSQLSvc/sqla.corp.test:1433 CORP\sqlsvc_a`,
			}},
		},
		{
			name: "on another account while the expected one is unknown: no verdict",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				e := expectedSPN(s, spnA)
				e.Holders, e.ExpectedAccount = []string{`CORP\wrongacct`}, ""
			},
		},
		{
			name: "duplicate: the stray holder is removed",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				expectedSPN(s, spnA).Holders = []string{`CORP\sqlsvc_a`, `CORP\sqldup2`}
			},
			want: []string{"spn_duplicate critical " + spnA},
			contains: map[string][]string{"spn_duplicate": {
				"neither works properly", `setspn -D MSSQLSvc/sqla.corp.test:1433 CORP\sqldup2`,
			}},
		},
		{
			name: "duplicate seen only by the forest-wide scan merges into the expected SPN",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Duplicates.Total = 1
				s.Duplicates.Top = []facts.DuplicateSPN{{SPN: spnA, Accounts: []string{`CORP\sqlsvc_a`, `CORP\sqldup2`}}}
			},
			want: []string{"spn_duplicate critical " + spnA},
		},
		{
			name: "duplicate on two accounts neither of which runs the service",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				e := expectedSPN(s, spnA)
				e.Holders = []string{`CORP\sqldup1`, `CORP\sqldup2`}
			},
			want: []string{"spn_duplicate critical " + spnA},
			contains: map[string][]string{"spn_duplicate": {
				`setspn -D MSSQLSvc/sqla.corp.test:1433 CORP\sqldup1`, `setspn -D MSSQLSvc/sqla.corp.test:1433 CORP\sqldup2`, `setspn -S MSSQLSvc/sqla.corp.test:1433 CORP\sqlsvc_a`,
			}},
		},
		{
			name: "forest-wide duplicate of nobody's SPN is a warning with commented choices",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Duplicates.Total = 1
				s.Duplicates.Top = []facts.DuplicateSPN{{SPN: "MSSQLSvc/sqldup.corp.test:1433", Accounts: []string{`CORP\sqldup1`, `CORP\sqldup2`}}}
			},
			want: []string{"spn_duplicate warning MSSQLSvc/sqldup.corp.test:1433"},
			contains: map[string][]string{"spn_duplicate": {
				`# setspn -D MSSQLSvc/sqldup.corp.test:1433 CORP\sqldup1`, `# setspn -D MSSQLSvc/sqldup.corp.test:1433 CORP\sqldup2`,
			}},
		},
		{
			name: "forest-wide duplicate with one configured service account keeps that one",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.Duplicates.Top = []facts.DuplicateSPN{{SPN: "HTTP/crm", Accounts: []string{`CORP\crmweb`, `CORP\oldweb`}}}
			},
			want:     []string{"spn_duplicate warning HTTP/crm"},
			contains: map[string][]string{"spn_duplicate": {`setspn -D HTTP/crm CORP\oldweb`}},
		},
		{
			name: "computer account holder is quoted for PowerShell",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				e := expectedSPN(s, spnA)
				e.Holders, e.ExpectedAccount = nil, `CORP\SQLE$`
			},
			want:     []string{"spn_missing critical " + spnA},
			contains: map[string][]string{"spn_missing": {`setspn -S MSSQLSvc/sqla.corp.test:1433 'CORP\SQLE$'`}},
		},
		{
			name: "lookup error gives no verdict",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				e := expectedSPN(s, spnA)
				e.Holders, e.LookupError = nil, "ldap: timeout"
			},
		},
		{
			name: "service SPN missing is critical and grouped under the service",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				expectedSPN(s, "HTTP/crm.corp.test").Holders = nil
			},
			want:     []string{"spn_missing critical HTTP/crm.corp.test"},
			contains: map[string][]string{"spn_missing": {`setspn -S HTTP/crm.corp.test CORP\crmweb`}},
		},
	})
}

func TestRegistrationRules(t *testing.T) {
	failA := func(s *facts.Snapshot) {
		s.ErrorLogs["sqla"].Registrations = append(s.ErrorLogs["sqla"].Registrations,
			facts.SPNRegistration{Time: s.Started.Add(-time.Minute), SPN: spnA, ReturnCode: "0x2098", State: 15})
	}
	runRuleCases(t, registrationFindings, []ruleCase{
		{name: "healthy"},
		{
			name: "failed and missing",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				failA(s)
				expectedSPN(s, spnA).Holders = nil
			},
			want: []string{"spn_registration_failed warning sqla"},
			contains: map[string][]string{"spn_registration_failed": {
				"26067", "0x2098", "Validated write to service principal name",
				"dsacls 'CN=sqlsvc_a,CN=Users,DC=corp,DC=test' /G 'SELF:WS;Validated write to service principal name'",
				"dsacls 'CN=sqlsvc_a,CN=Users,DC=corp,DC=test' /G 'SELF:RPWP;servicePrincipalName'",
			}},
		},
		{
			name:     "failed but registered by hand is info",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { failA(s) },
			want:     []string{"spn_registration_failed info sqla"},
			contains: map[string][]string{"spn_registration_failed": {"registered by hand"}},
		},
		{
			name: "a later successful registration wins",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				failA(s)
				s.ErrorLogs["sqla"].Registrations[0].Time = s.Started
				expectedSPN(s, spnA).Holders = nil
			},
		},
		{
			name: "unreadable log is unknown, never failed",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.ErrorLogs["sqla"] = &facts.ErrorLog{Instance: "sqla", PermissionDenied: true, Error: "error 15003: only members of securityadmin"}
				expectedSPN(s, spnA).Holders = nil
			},
			want:     []string{"spn_registration_unknown info sqla"},
			contains: map[string][]string{"spn_registration_unknown": {"15003", "VIEW ANY ERROR LOG"}},
		},
		{
			name: "log unreadable for another reason is unknown too",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.ErrorLogs["sqla"] = &facts.ErrorLog{Instance: "sqla", Error: "sp_readerrorlog: timeout"}
				failAIn := facts.SPNRegistration{SPN: spnA, ReturnCode: "0x2098"}
				s.ErrorLogs["sqla"].Registrations = []facts.SPNRegistration{failAIn}
			},
			want:     []string{"spn_registration_unknown info sqla"},
			contains: map[string][]string{"spn_registration_unknown": {"could not read", "timeout"}},
		},
		{
			name: "unknown service account gives a commented script",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				failA(s)
				expectedSPN(s, spnA).Holders = nil
				c.SQLInstances[0].ServiceAccount = ""
				s.SQL["sqla"].EngineAccount = ""
				expectedSPN(s, spnA).ExpectedAccount = ""
				expectedSPN(s, spnAHost).ExpectedAccount = ""
			},
			want:     []string{"spn_registration_failed warning sqla"},
			contains: map[string][]string{"spn_registration_failed": {"# dsacls '<DN>'"}},
		},
		{
			name: "a virtual account registers on the computer account",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				failA(s)
				c.SQLInstances[0].ServiceAccount = ""
				s.SQL["sqla"].EngineAccount = `NT SERVICE\MSSQLSERVER`
				expectedSPN(s, spnA).Holders, expectedSPN(s, spnA).ExpectedAccount = nil, `CORP\SQLA$`
				expectedSPN(s, spnAHost).ExpectedAccount = `CORP\SQLA$`
			},
			want: []string{"spn_registration_failed warning sqla"},
			contains: map[string][]string{"spn_registration_failed": {
				`CORP\SQLA$ lacks`, `dsacls (Get-ADComputer 'SQLA$').DistinguishedName /G 'SELF:RPWP;servicePrincipalName'`,
			}},
		},
	})
}

// setspn is a native program: quoting cannot stop it from reading a value
// that starts with - or / as a switch, or Windows PowerShell 5.1 from
// splitting a value at a double quote. Such a value gets a comment, never a
// command.
func TestSetspnRefusesSwitchLikeValues(t *testing.T) {
	for _, tc := range []struct {
		spn, account string
		want         string // "" when the command is written
	}{
		{"MSSQLSvc/sqla.corp.test:1433", `CORP\sqlsvc_a`, ""},
		{"MSSQLSvc/sqla.corp.test:1433", `CORP\SQLE$`, ""},
		{"-D", `CORP\sqlsvc_a`, "starts like a switch"},
		{"/D", `CORP\sqlsvc_a`, "starts like a switch"},
		{"\u2013Force", `CORP\sqlsvc_a`, "starts like a switch"},
		{"MSSQLSvc/sqla.corp.test:1433", "-Q", "starts like a switch"},
		{`MSSQLSvc/a" -D "b`, `CORP\sqlsvc_a`, "double quote"},
		{"MSSQLSvc/a\u201c -D \u201db", `CORP\sqlsvc_a`, "double quote"},
		{"MSSQLSvc/sqla.corp.test", "", "empty value"},
		{`HTTP/a b\`, `CORP\x -D y`, "space or a trailing backslash"},
		{"MSSQLSvc/sqla.corp.test:1433", `CORP\svc `, "space or a trailing backslash"},
		{"MSSQLSvc/sqla.corp.test:1433", `CORP\svc\`, "space or a trailing backslash"},
	} {
		line := setspn("-S", tc.spn, tc.account)
		if tc.want == "" {
			if !strings.HasPrefix(line, "setspn -S ") {
				t.Errorf("setspn(%q, %q) = %q, want a command", tc.spn, tc.account, line)
			}
			continue
		}
		if !strings.HasPrefix(line, "# not written: ") || !strings.Contains(line, tc.want) {
			t.Errorf("setspn(%q, %q) = %q, want a comment saying %q", tc.spn, tc.account, line, tc.want)
		}
	}
	// Through the rules: a forest-wide duplicate comes straight from the
	// directory, SPN and holders alike.
	cfg, snap := healthyWorld()
	snap.Duplicates = &facts.DuplicateSPNs{Scanned: true, Total: 1, Top: []facts.DuplicateSPN{
		{SPN: "-R", Accounts: []string{`CORP\sqlsvc_a`, `CORP\wrongacct`}},
	}}
	found := false
	for _, f := range Evaluate(cfg, snap) {
		if f.Check != "spn_duplicate" || f.Target != "-R" {
			continue
		}
		found = true
		for _, l := range f.Script {
			if !strings.HasPrefix(l, "#") {
				t.Errorf("spn_duplicate for SPN -R wrote a command: %q", l)
			}
		}
	}
	if !found {
		t.Fatal("no spn_duplicate finding for the planted forest duplicate -R")
	}
}
