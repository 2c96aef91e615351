// Package sqlclient talks to SQL Server through go-mssqldb and turns what the
// server says into facts. It makes no judgement about those facts.
package sqlclient

// The T-SQL the exporter sends, one query per fact. They are constants so that
// docs/permissions.md can list them, and so that the TDS stand-in in testenv/ answers
// exactly what the exporter asks (it dispatches on these strings).
//
// Minimal grants on a real server: VIEW SERVER STATE (dm_exec_connections,
// dm_exec_sessions of other logins, dm_server_services, dm_tcp_listener_states);
// membership in securityadmin, or VIEW SERVER STATE on SQL Server 2019+, for
// sp_readerrorlog; a login mapped on the linked server for the hop queries.
const (
	// QueryOwnConnection: transport and authentication scheme of the
	// exporter's own session. The headline signal: NTLM where Kerberos is expected.
	QueryOwnConnection = `SELECT net_transport, auth_scheme, local_tcp_port FROM sys.dm_exec_connections WHERE session_id = @@SPID`

	// QueryConnectionCounts: every connection by transport and auth scheme.
	QueryConnectionCounts = `SELECT net_transport, auth_scheme, COUNT(*) AS connections FROM sys.dm_exec_connections GROUP BY net_transport, auth_scheme`

	// QueryNTLMClients: who falls back to NTLM over TCP, top N by connection
	// count. @p1 is N.
	QueryNTLMClients = `SELECT TOP (@p1) s.host_name, s.login_name, s.program_name, COUNT(*) AS connections FROM sys.dm_exec_connections AS c JOIN sys.dm_exec_sessions AS s ON s.session_id = c.session_id WHERE c.auth_scheme = 'NTLM' AND c.net_transport = 'TCP' GROUP BY s.host_name, s.login_name, s.program_name ORDER BY COUNT(*) DESC`

	// QueryServerIdentity: names the server knows itself by, and its clock.
	QueryServerIdentity = `SELECT CONVERT(nvarchar(128), SERVERPROPERTY('MachineName')) AS machine_name, CONVERT(nvarchar(128), SERVERPROPERTY('ComputerNamePhysicalNetBIOS')) AS physical_netbios, CONVERT(nvarchar(128), SERVERPROPERTY('InstanceName')) AS instance_name, CONVERT(nvarchar(128), DEFAULT_DOMAIN()) AS domain_name, SYSUTCDATETIME() AS utc_now`

	// QueryListenerPorts: TCP ports the engine listens on (includes a dynamic port).
	QueryListenerPorts = `SELECT port FROM sys.dm_tcp_listener_states WHERE type_desc = 'TSQL' AND state_desc = 'ONLINE' AND ip_address <> '::1' AND ip_address NOT LIKE '127.%'`

	// QueryServiceAccounts: the account each SQL Server service runs as.
	QueryServiceAccounts = `SELECT servicename, service_account FROM sys.dm_server_services`

	// QueryClock: the server's clock in UTC, for skew against the exporter
	// (corrected by half the round trip).
	QueryClock = `SELECT SYSUTCDATETIME() AS utc_now`

	// QueryLinkedServers: linked servers and where they point.
	QueryLinkedServers = `SELECT server_id, name, product, provider, data_source FROM sys.servers WHERE is_linked = 1`

	// QueryLinkedLogins: login mappings; uses_self_credential = 1 forwards the
	// caller's identity (needs Kerberos delegation for Windows logins).
	QueryLinkedLogins = `SELECT server_id, uses_self_credential, local_principal_id, remote_name FROM sys.linked_logins`

	// ProcTestLinkedServer is called as an RPC with @servername, so a hostile
	// linked-server name is a parameter, never SQL text.
	ProcTestLinkedServer = `sys.sp_testlinkedserver`

	// ProcReadErrorLog is called as an RPC: (0 = current log, 1 = SQL error
	// log, search string). Messages 26059 (registered) and 26067 (could not
	// register) both contain SearchSPNRegistration.
	ProcReadErrorLog      = `sys.sp_readerrorlog`
	SearchSPNRegistration = `Service Principal Name`

	// HopInnerQuery runs on the linked server through OPENQUERY: the remote
	// side's view of the hop's session, and its clock.
	HopInnerQuery = `SELECT net_transport, auth_scheme, SYSUTCDATETIME() AS utc_now FROM sys.dm_exec_connections WHERE session_id = @@SPID`
)

// HopQuery returns the OPENQUERY statement that runs HopInnerQuery on the
// linked server. OPENQUERY takes no variables, so the name is bracket-quoted
// (QUOTENAME semantics: ']' doubled) and the inner query is a constant.
func HopQuery(linkedServer string) string {
	return "SELECT net_transport, auth_scheme, utc_now FROM OPENQUERY(" + QuoteName(linkedServer) + ", '" + HopInnerQuery + "')"
}

// QuoteName bracket-quotes an identifier the way T-SQL's QUOTENAME does.
func QuoteName(name string) string {
	out := make([]byte, 0, len(name)+2)
	out = append(out, '[')
	for i := 0; i < len(name); i++ {
		if name[i] == ']' {
			out = append(out, ']')
		}
		out = append(out, name[i])
	}
	return string(append(out, ']'))
}
