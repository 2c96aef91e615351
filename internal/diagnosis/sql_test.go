package diagnosis

import (
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func TestSQLRules(t *testing.T) {
	runRuleCases(t, sqlFindings, []ruleCase{
		{name: "healthy"},
		{
			name: "first hop NTLM after a failed ticket request names the missing SPN",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				sa := s.SQL["sqla"]
				sa.AuthScheme, sa.UsedNTLMFallback, sa.KerberosError = "NTLM", true, "KDC_ERR_S_PRINCIPAL_UNKNOWN"
				expectedSPN(s, spnA).Holders = nil
			},
			want: []string{"first_hop_ntlm critical sqla"},
			contains: map[string][]string{"first_hop_ntlm": {
				"fell back to NTLM", "KDC_ERR_S_PRINCIPAL_UNKNOWN", "SPN MSSQLSvc/sqla.corp.test:1433 is missing", "ANONYMOUS LOGON",
			}},
		},
		{
			name: "first hop NTLM names a wrong-account SPN, an RC4-only account and the reverse lookup",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqla"].AuthScheme = "NTLM"
				expectedSPN(s, spnA).Holders = []string{`CORP\wrongacct`}
				expectedSPN(s, spnAHost).Holders = nil // a port-less form is no cause for TCP clients
				s.Accounts[0].SupportedEncTypes = 4
				s.DNS[0].ReverseMatches = false
				s.DNS[0].PTR = map[string][]string{"127.0.0.11": {"oldname.corp.test."}}
			},
			want: []string{"first_hop_ntlm critical sqla"},
			contains: map[string][]string{"first_hop_ntlm": {
				"SPN MSSQLSvc/sqla.corp.test:1433 is on the wrong account", "allows no AES", "reverse lookup of sqla.corp.test names another host",
			}},
		},
		{
			name: "first hop NTLM while no DC answers",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqla"].AuthScheme, s.SQL["sqla"].UsedNTLMFallback = "NTLM", true
				s.DCs[0].Up, s.DCs[0].Error = false, "connection refused"
			},
			want:     []string{"first_hop_ntlm critical sqla"},
			contains: map[string][]string{"first_hop_ntlm": {"no domain controller of corp.test answered"}},
		},
		{
			name:     "first hop NTLM without a visible cause says where to look",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { s.SQL["sqla"].AuthScheme = "NTLM" },
			want:     []string{"first_hop_ntlm critical sqla"},
			contains: map[string][]string{"first_hop_ntlm": {"no cause in the directory", "klist purge"}},
		},
		{
			name: "NTLM where Kerberos is not expected is fine",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				no := false
				c.SQLInstances[0].ExpectKerberos = &no
				s.SQL["sqla"].AuthScheme = "NTLM"
			},
		},
		{
			name: "measuring locally voids the measurement",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				sa := s.SQL["sqla"]
				sa.Local, sa.AuthScheme, sa.NetTransport = true, "NTLM", "Shared memory"
			},
			want: []string{"exporter_local info sqla"},
		},
		{
			name:     "named pipes",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { s.SQL["sqla"].NetTransport = "Named pipe" },
			want:     []string{"transport_not_tcp warning sqla"},
			contains: map[string][]string{"transport_not_tcp": {"Named pipe"}},
		},
		{
			name: "NTLM clients are named",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqla"].NTLMClients = []facts.NTLMClient{{Host: "APP1", Login: `CORP\bob`, Program: "Report Builder", Connections: 4}, {Host: "10.1.2.3", Login: `CORP\carol`, Program: "sqlcmd", Connections: 1}}
			},
			want:     []string{"ntlm_clients warning sqla"},
			contains: map[string][]string{"ntlm_clients": {`APP1 (login CORP\bob, program "Report Builder"): 4 connections`, "10.1.2.3", "sqla.corp.test"}},
		},
		{
			name: "the exporter's own NTLM sessions are first_hop_ntlm's, not ntlm_clients'",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqla"].NTLMClients = []facts.NTLMClient{{Host: "mon1", Login: `CORP\krbmon`, Program: "kerberos_exporter", Connections: 3}}
			},
		},
		{
			name: "refused Kerberos logon with an unknown service account hints at the SPN holder",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				c.SQLInstances[1].ServiceAccount = ""
				s.SQL["sqlb"] = &facts.SQLInstance{Name: "sqlb", Cause: "login_failed", ErrorNumber: 18456, ConnectError: "mssql: Login failed for user ''."}
				for i := range s.SPNs {
					if s.SPNs[i].Target == "sqlb" {
						s.SPNs[i].ExpectedAccount, s.SPNs[i].Holders = "", []string{`CORP\wrongacct`}
					}
				}
			},
			want: []string{"sql_unreachable warning sqlb"},
			contains: map[string][]string{"sql_unreachable": {
				"KRB_AP_ERR_MODIFIED", `MSSQLSvc/sqlb.corp.test:1433 is held by CORP\wrongacct`, "set service_account",
				"Clients using Kerberos meet the same failure", "Fix the SPN, account or clock findings",
			}},
		},
		{
			name: "unreachable with its cause",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqlb"] = &facts.SQLInstance{Name: "sqlb", Cause: "network", ConnectError: "dial tcp 127.0.0.12:1433: connection refused"}
			},
			want:     []string{"sql_unreachable warning sqlb"},
			contains: map[string][]string{"sql_unreachable": {"connection refused", "not a Kerberos finding"}},
		},
		{
			name: "Kerberos failure without a KDC error points at the exporter's own setup",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqlb"] = &facts.SQLInstance{Name: "sqlb", Cause: "kerberos", ConnectError: "Unable to load krb5 config: no such file or directory"}
			},
			want:     []string{"sql_unreachable warning sqlb"},
			contains: map[string][]string{"sql_unreachable": {"exporter's own Kerberos setup", "not a Kerberos finding by itself"}},
		},
		{
			name: "unreachable for a Kerberos reason names the causes",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqlb"] = &facts.SQLInstance{Name: "sqlb", Cause: "kerberos", ConnectError: "KRB_AP_ERR_MODIFIED"}
				expectedSPN(s, spnB).Holders = []string{`CORP\wrongacct`}
			},
			want:     []string{"sql_unreachable warning sqlb"},
			contains: map[string][]string{"sql_unreachable": {"wrong account"}},
		},
		{
			name: "permission errors",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqla"].PermissionErrors = []string{"dm_server_services"}
			},
			want: []string{"exporter_permission_denied info sqla"},
		},
		{
			name: "linked-server catalog denied joins the permission finding",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.LinkedServers["sqla"] = &facts.LinkedServers{Instance: "sqla", PermissionDenied: true, Error: "permission denied"}
			},
			want:     []string{"exporter_permission_denied info sqla"},
			contains: map[string][]string{"exporter_permission_denied": {"linked servers"}},
		},
		{
			name: "first hop NTLM for clock skew, told by the KDC error of the fallback",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				sa := s.SQL["sqla"]
				sa.AuthScheme, sa.UsedNTLMFallback, sa.KerberosError, sa.KerberosErrorCode = "NTLM", true, "KRB_AP_ERR_SKEW", 37
			},
			want:     []string{"first_hop_ntlm critical sqla"},
			contains: map[string][]string{"first_hop_ntlm": {"clock skew (error 37)"}},
		},
		{
			name: "not collected: no verdict",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				delete(s.SQL, "sqla")
			},
		},
	})
}

func TestLinkedServerRules(t *testing.T) {
	hop := func(s *facts.Snapshot) *facts.LinkedServer { return &s.LinkedServers["sqla"].Servers[0] }
	anonymous := func(s *facts.Snapshot) {
		h := hop(s)
		h.TestOK, h.HopOK, h.HopAuthScheme = false, false, ""
		h.ErrNumber, h.Cause = 18456, "delegation"
		h.ErrMsg = "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'."
	}
	runRuleCases(t, linkedServerFindings, []ruleCase{
		{name: "healthy"},
		{
			name: "anonymous logon names a delegation path that is not ok",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				anonymous(s)
				s.DelegationPaths[0].ConstrainedListed = false
			},
			want: []string{"linked_server_hop_anonymous critical sqla/SQLB"},
			contains: map[string][]string{"linked_server_hop_anonymous": {
				"ANONYMOUS LOGON", `CORP\sqlsvc_a may not delegate to sqlb (delegation_missing)`,
			}},
		},
		{
			name: "anonymous logon names hop-1 NTLM, B's missing SPN, a sensitive exporter identity and skew",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				anonymous(s)
				s.SQL["sqla"].AuthScheme = "NTLM"
				expectedSPN(s, spnB).Holders = nil
				s.Users = append(s.Users, facts.DelegatedPrincipal{Name: `CORP\krbmon`, Found: true, Sensitive: true})
				s.SQL["sqlb"].ClockSkew = 6 * time.Minute
			},
			want: []string{"linked_server_hop_anonymous critical sqla/SQLB"},
			contains: map[string][]string{"linked_server_hop_anonymous": {
				"the first hop (the exporter's own session to sqla) is NTLM",
				"on the back end, SPN MSSQLSvc/sqlb.corp.test:1433 is missing",
				`the exporter's identity CORP\krbmon is marked sensitive`,
				"the back end's clock is 5m59s ahead of sqla's",
			}},
		},
		{
			name: "anonymous logon recognised from the message alone",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				anonymous(s)
				hop(s).Cause = "login_failed"
			},
			want:     []string{"linked_server_hop_anonymous critical sqla/SQLB"},
			contains: map[string][]string{"linked_server_hop_anonymous": {"no cause in the directory"}},
		},
		{
			name: "data source given as an IP address",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				anonymous(s)
				hop(s).DataSource = "tcp:127.0.0.12,1433"
			},
			want:     []string{"linked_server_hop_anonymous critical sqla/SQLB"},
			contains: map[string][]string{"linked_server_hop_anonymous": {"the data source is an IP address (127.0.0.12)"}},
		},
		{
			name: "hop succeeds with NTLM",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				hop(s).HopAuthScheme = "NTLM"
				expectedSPN(s, spnB).Holders = []string{`CORP\sqldup1`, `CORP\sqlsvc_b`}
			},
			want:     []string{"linked_server_hop_ntlm critical sqla/SQLB"},
			contains: map[string][]string{"linked_server_hop_ntlm": {"single hop", "SPN MSSQLSvc/sqlb.corp.test:1433 is duplicated"}},
		},
		{
			name: "failure for another cause is a warning",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				h := hop(s)
				h.TestOK, h.HopTested, h.ErrNumber, h.Cause, h.ErrMsg = false, false, 53, "network", "Named Pipes Provider: Could not open a connection"
			},
			want:     []string{"linked_server_test_failed warning sqla/SQLB"},
			contains: map[string][]string{"linked_server_test_failed": {"network", "reachable"}},
		},
		{
			name: "test passes but the query through the hop fails",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				h := hop(s)
				h.HopOK, h.HopAuthScheme, h.HopError = false, "", "mssql: Invalid object name 'sys.dm_exec_connections'."
			},
			want:     []string{"linked_server_test_failed warning sqla/SQLB"},
			contains: map[string][]string{"linked_server_test_failed": {"the query through it", "Invalid object name"}},
		},
		{
			name: "hop query failing with ANONYMOUS LOGON",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				h := hop(s)
				h.HopOK, h.HopAuthScheme, h.HopError = false, "", "mssql: Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'."
			},
			want:     []string{"linked_server_hop_anonymous critical sqla/SQLB"},
			contains: map[string][]string{"linked_server_hop_anonymous": {"refused the hop: mssql: Login failed"}},
		},
		{
			name: "a fixed remote login failing to log in is not a delegation problem",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				h := hop(s)
				h.SelfMapped, h.FixedLogin = false, true
				h.TestOK, h.HopTested, h.ErrNumber, h.Cause, h.ErrMsg = false, false, 18456, "login_failed", "Login failed for user 'report'."
			},
			want: []string{"linked_server_test_failed warning sqla/SQLB"},
		},
		{
			name: "unreadable linked servers give no verdict",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				anonymous(s)
				s.LinkedServers["sqla"].Readable = false
			},
		},
	})
}
