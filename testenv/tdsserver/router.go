package tdsserver

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
)

// outcome is what a request produced: result sets and/or an error, and for
// procedures a return status.
type outcome struct {
	sets   []*ResultSet
	err    *SQLError
	status int32
}

func fail(number int32, class uint8, format string, args ...any) outcome {
	return outcome{err: &SQLError{Number: number, State: 1, Class: class, Message: fmt.Sprintf(format, args...)}, status: 1}
}

func rows(rs *ResultSet) outcome { return outcome{sets: []*ResultSet{rs}} }

// queryHandler answers one contract query for a session.
type queryHandler func(ss *session, ctx context.Context, params []param) outcome

// queries maps each exact query text the exporter sends to its answer.
var queries = map[string]queryHandler{
	sqlclient.QueryOwnConnection:    (*session).ownConnection,
	sqlclient.QueryConnectionCounts: (*session).connectionCounts,
	sqlclient.QueryNTLMClients:      (*session).ntlmClients,
	sqlclient.QueryServerIdentity:   (*session).serverIdentity,
	sqlclient.QueryListenerPorts:    (*session).listenerPorts,
	sqlclient.QueryServiceAccounts:  (*session).serviceAccounts,
	sqlclient.QueryClock:            (*session).clock,
	sqlclient.QueryLinkedServers:    (*session).linkedServers,
	sqlclient.QueryLinkedLogins:     (*session).linkedLogins,
	sqlclient.HopInnerQuery:         (*session).hopInner,
}

// isPing recognises go-mssqldb's Conn.Ping statement ("select 1;"), which
// database/sql's PingContext sends; it is the driver's, not the exporter's.
func isPing(text string) bool {
	return strings.EqualFold(text, "select 1;") || strings.EqualFold(text, "select 1")
}

// execute parses and answers one SQL batch or RPC. Whatever the client
// sends, the reply is a well-formed token stream: unknown or malformed
// requests get an ERROR token.
func (ss *session) execute(ctx context.Context, m message) *tokenWriter {
	var req *request
	var err error
	if m.typ == pktRPC {
		req, err = parseRPC(m.data)
	} else {
		req, err = parseSQLBatch(m.data)
	}
	var out outcome
	switch {
	case err != nil:
		ss.srv.logf("session %d: malformed request: %v", ss.spid, err)
		out = fail(8009, 16, "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. %v", err)
	case req.rpc && normalizeProc(req.proc) != "sys.sp_executesql":
		out = ss.procedure(ctx, req)
	default:
		out = ss.statement(ctx, req.text, req.params)
	}
	return ss.encode(req != nil && req.rpc, out)
}

func (ss *session) statement(ctx context.Context, text string, params []param) outcome {
	text = strings.TrimSpace(text)
	if h, ok := queries[text]; ok {
		return h(ss, ctx, params)
	}
	if isPing(text) {
		return rows(&ResultSet{Columns: []Column{{Type: Int}}, Rows: [][]any{{1}}})
	}
	if name, inner, ok, perr := parseOpenQuery(text); ok {
		if perr != nil {
			return *perr
		}
		return ss.openQuery(ctx, name, inner)
	}
	ss.srv.logf("session %d: statement not in the contract: %.200q", ss.spid, text)
	return fail(208, 16, "Invalid object name '%s'.", objectName(text))
}

var fromClause = regexp.MustCompile(`(?i)\bFROM\s+([^\s,;()]+)`)

// objectName picks the object an unknown statement reads from, for a
// real-looking "Invalid object name" error.
func objectName(text string) string {
	if m := fromClause.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	if len(text) > 64 {
		return text[:64]
	}
	return text
}

func (ss *session) procedure(ctx context.Context, req *request) outcome {
	switch normalizeProc(req.proc) {
	case normalizeProc(sqlclient.ProcTestLinkedServer):
		return ss.testLinkedServer(ctx, req.params)
	case normalizeProc(sqlclient.ProcReadErrorLog):
		return ss.readErrorLog(req.params)
	}
	ss.srv.logf("session %d: procedure not in the contract: %q", ss.spid, req.proc)
	return fail(2812, 16, "Could not find stored procedure '%s'.", req.proc)
}

// encode turns an outcome into tokens the way SQL Server frames them: a
// batch ends each result set with DONE (DONE_MORE unless it is the last
// token); an RPC uses DONEINPROC per result set, then RETURNSTATUS and
// DONEPROC.
func (ss *session) encode(rpc bool, out outcome) *tokenWriter {
	var t tokenWriter
	for i, rs := range out.sets {
		if err := t.resultSet(rs); err != nil {
			// A bug in the stand-in or its scenario; tell the client plainly.
			ss.srv.logf("session %d: cannot encode result: %v", ss.spid, err)
			return ss.encode(rpc, fail(50000, 16, "SQL Server stand-in cannot encode its result: %v", err))
		}
		last := i == len(out.sets)-1 && out.err == nil
		switch {
		case rpc:
			t.done(tokDoneInProc, doneMore|doneCount, curCmdSel, uint64(len(rs.Rows)))
		case last:
			t.done(tokDone, doneCount, curCmdSel, uint64(len(rs.Rows)))
			return &t
		default:
			t.done(tokDone, doneMore|doneCount, curCmdSel, uint64(len(rs.Rows)))
		}
	}
	status := uint16(doneFinal)
	if out.err != nil {
		if out.err.Server == "" {
			out.err.Server = ss.srv.sc.MachineName
		}
		if out.err.Line == 0 {
			out.err.Line = 1
		}
		t.errorToken(out.err)
		status = doneError
	}
	if rpc {
		t.returnStatus(out.status)
		t.done(tokDoneProc, status, curCmdNone, 0)
	} else {
		t.done(tokDone, status, curCmdNone, 0)
	}
	return &t
}

// ---- contract queries ----

var (
	colNetTransport = Column{Name: "net_transport", Type: NVarChar, Size: 40}
	colAuthScheme   = Column{Name: "auth_scheme", Type: NVarChar, Size: 40}
	colUTCNow       = Column{Name: "utc_now", Type: DateTime2}
	colConnections  = Column{Name: "connections", Type: Int}
)

func (ss *session) ownConnection(context.Context, []param) outcome {
	return rows(&ResultSet{
		Columns: []Column{colNetTransport, colAuthScheme, {Name: "local_tcp_port", Type: Int}},
		Rows:    [][]any{{"TCP", ss.scheme, ss.localPort}},
	})
}

func (ss *session) hopInner(context.Context, []param) outcome {
	return rows(&ResultSet{
		Columns: []Column{colNetTransport, colAuthScheme, colUTCNow},
		Rows:    [][]any{{"TCP", ss.scheme, ss.srv.now()}},
	})
}

func (ss *session) connectionCounts(context.Context, []param) outcome {
	type key struct{ net, scheme string }
	counts := map[key]int{}
	for _, s := range ss.srv.allSessions() {
		counts[key{s.transport, s.scheme}]++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].net != keys[j].net {
			return keys[i].net < keys[j].net
		}
		return keys[i].scheme < keys[j].scheme
	})
	rs := &ResultSet{Columns: []Column{colNetTransport, colAuthScheme, colConnections}}
	for _, k := range keys {
		rs.Rows = append(rs.Rows, []any{k.net, k.scheme, counts[k]})
	}
	return rows(rs)
}

func (ss *session) ntlmClients(_ context.Context, params []param) outcome {
	p, ok := findParam(params, "@p1", 0)
	if !ok {
		return fail(137, 15, "Must declare the scalar variable \"@p1\".")
	}
	top, err := topValue(p.Value)
	if err != nil {
		return *err
	}
	type key struct{ host, login, program string }
	counts := map[key]int{}
	for _, s := range ss.srv.allSessions() {
		if s.scheme == schemeNTLM && s.transport == "TCP" {
			counts[key{s.host, s.login, s.program}]++
		}
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	// ORDER BY COUNT(*) DESC; ties in a fixed order so results are stable.
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if counts[a] != counts[b] {
			return counts[a] > counts[b]
		}
		return a.host+"\x00"+a.login+"\x00"+a.program < b.host+"\x00"+b.login+"\x00"+b.program
	})
	if int64(len(keys)) > top {
		keys = keys[:top]
	}
	rs := &ResultSet{Columns: []Column{
		{Name: "host_name", Type: NVarChar}, {Name: "login_name", Type: NVarChar},
		{Name: "program_name", Type: NVarChar}, colConnections,
	}}
	for _, k := range keys {
		rs.Rows = append(rs.Rows, []any{k.host, k.login, k.program, counts[k]})
	}
	return rows(rs)
}

// topValue checks TOP (@p1) the way SQL Server does.
func topValue(v any) (int64, *outcome) {
	invalid := fail(1014, 15, "A TOP or FETCH clause contains an invalid value.")
	switch n := v.(type) {
	case int64:
		if n < 0 {
			return 0, &invalid
		}
		return n, nil
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil {
			o := fail(8114, 16, "Error converting data type nvarchar to bigint.")
			return 0, &o
		}
		return topValue(i)
	}
	return 0, &invalid
}

func (ss *session) serverIdentity(context.Context, []param) outcome {
	sc := ss.srv.sc
	var instance any
	if sc.InstanceName != "" {
		instance = sc.InstanceName
	}
	return rows(&ResultSet{
		Columns: []Column{
			{Name: "machine_name", Type: NVarChar}, {Name: "physical_netbios", Type: NVarChar},
			{Name: "instance_name", Type: NVarChar}, {Name: "domain_name", Type: NVarChar}, colUTCNow,
		},
		Rows: [][]any{{sc.MachineName, sc.PhysicalNetBIOS, instance, sc.Domain, ss.srv.now()}},
	})
}

func (ss *session) listenerPorts(context.Context, []param) outcome {
	rs := &ResultSet{Columns: []Column{{Name: "port", Type: Int}}}
	for _, p := range ss.srv.sc.ListenerPorts {
		rs.Rows = append(rs.Rows, []any{p})
	}
	return rows(rs)
}

func (ss *session) serviceAccounts(context.Context, []param) outcome {
	rs := &ResultSet{Columns: []Column{{Name: "servicename", Type: NVarChar, Size: 256}, {Name: "service_account", Type: NVarChar, Size: 256}}}
	for _, s := range ss.srv.sc.Services {
		rs.Rows = append(rs.Rows, []any{s.ServiceName, s.ServiceAccount})
	}
	return rows(rs)
}

func (ss *session) clock(context.Context, []param) outcome {
	return rows(&ResultSet{Columns: []Column{colUTCNow}, Rows: [][]any{{ss.srv.now()}}})
}

func (ss *session) linkedServers(context.Context, []param) outcome {
	rs := &ResultSet{Columns: []Column{
		{Name: "server_id", Type: Int}, {Name: "name", Type: NVarChar}, {Name: "product", Type: NVarChar},
		{Name: "provider", Type: NVarChar}, {Name: "data_source", Type: NVarChar, Size: 4000},
	}}
	for _, ls := range ss.srv.sc.LinkedServers {
		rs.Rows = append(rs.Rows, []any{ls.ServerID, ls.Name, ls.Product, ls.Provider, ls.DataSource})
	}
	return rows(rs)
}

func (ss *session) linkedLogins(context.Context, []param) outcome {
	rs := &ResultSet{Columns: []Column{
		{Name: "server_id", Type: Int}, {Name: "uses_self_credential", Type: Bit},
		{Name: "local_principal_id", Type: Int}, {Name: "remote_name", Type: NVarChar},
	}}
	for _, ls := range ss.srv.sc.LinkedServers {
		for _, m := range ls.Logins {
			var remote any
			if m.RemoteName != "" {
				remote = m.RemoteName
			}
			rs.Rows = append(rs.Rows, []any{ls.ServerID, m.UsesSelfCredential, m.LocalPrincipalID, remote})
		}
	}
	return rows(rs)
}

// ---- procedures ----

func (ss *session) testLinkedServer(ctx context.Context, params []param) outcome {
	p, ok := findParam(params, "@servername", 0)
	if !ok {
		return fail(201, 16, "Procedure or function 'sp_testlinkedserver' expects parameter '@servername', which was not supplied.")
	}
	name, ok := p.Value.(string)
	if !ok {
		return fail(15600, 15, "An invalid parameter or option was specified for procedure 'sys.sp_testlinkedserver'.")
	}
	ls := ss.srv.linkedServer(name)
	if ls == nil {
		return notLinked(name)
	}
	out := ss.hop(ctx, ls, sqlclient.HopInnerQuery)
	out.sets = nil // sp_testlinkedserver returns no rows, only success or the error
	return out
}

func (ss *session) readErrorLog(params []param) outcome {
	if !ss.srv.sc.ErrorLogReadable() {
		return fail(15003, 16, "Only members of the securityadmin role can execute this stored procedure.")
	}
	// (@p1 log number, @p2 log type, @p3 search 1, @p4 search 2), by
	// position or by name.
	logNo, logType, search1, search2 := int64(0), int64(1), "", ""
	for i, name := range []string{"@p1", "@p2", "@p3", "@p4"} {
		p, ok := findParam(params, name, i)
		if !ok || p.Value == nil {
			continue
		}
		switch i {
		case 0, 1:
			n, isInt := p.Value.(int64)
			if !isInt {
				return fail(8114, 16, "Error converting data type %T to int.", p.Value)
			}
			if i == 0 {
				logNo = n
			} else {
				logType = n
			}
		case 2, 3:
			s, isStr := p.Value.(string)
			if !isStr {
				return fail(8114, 16, "Error converting data type %T to nvarchar.", p.Value)
			}
			if i == 2 {
				search1 = s
			} else {
				search2 = s
			}
		}
	}
	if logNo != 0 {
		// The scenario has only the current log.
		return fail(22004, 16, "xp_readerrorlog() returned error 2, 'The system cannot find the file specified.'")
	}
	if logType == 2 {
		// SQL Server Agent log: present but empty here.
		return rows(&ResultSet{Columns: []Column{{Name: "LogDate", Type: DateTime}, {Name: "ErrorLevel", Type: Int}, {Name: "Text", Type: NVarChar, Size: 4000}}})
	}
	rs := &ResultSet{Columns: []Column{{Name: "LogDate", Type: DateTime}, {Name: "ProcessInfo", Type: NVarChar, Size: 100}, {Name: "Text", Type: NVarChar, Size: 4000}}}
	for i, l := range ss.srv.sc.ErrorLog.Lines {
		if containsFold(l.Text, search1) && containsFold(l.Text, search2) {
			rs.Rows = append(rs.Rows, []any{ss.srv.sc.errorLogDates[i], l.ProcessInfo, l.Text})
		}
	}
	return rows(rs)
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// findParam finds a parameter by name (case-insensitive, as SQL Server
// does) or, if it has no name, by position.
func findParam(params []param, name string, pos int) (param, bool) {
	for _, p := range params {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	if pos < len(params) && params[pos].Name == "" {
		return params[pos], true
	}
	return param{}, false
}

func (s *Server) linkedServer(name string) *LinkedServer {
	for i := range s.sc.LinkedServers {
		if strings.EqualFold(s.sc.LinkedServers[i].Name, name) {
			return &s.sc.LinkedServers[i]
		}
	}
	return nil
}

func notLinked(name string) outcome {
	return fail(7202, 11, "Could not find server '%s' in sys.servers. Verify that the correct server name was specified. If necessary, execute the stored procedure sp_addlinkedserver to add the server to sys.servers.", name)
}

// ---- OPENQUERY ----

// The one OPENQUERY shape the contract uses (sqlclient.HopQuery); the
// linked-server name and the pass-through query are parsed, not matched,
// so any name round-trips.
var openQueryPrefix = strings.TrimSuffix(sqlclient.HopQuery(""), "[], '"+sqlclient.HopInnerQuery+"')")

// parseOpenQuery recognises "<prefix>[name], 'query')". ok is false when
// text is not an OPENQUERY of that shape; perr is set when it is, but is
// malformed (as SQL Server would report a syntax error).
func parseOpenQuery(text string) (name, inner string, ok bool, perr *outcome) {
	rest, found := strings.CutPrefix(text, openQueryPrefix)
	if !found {
		return "", "", false, nil
	}
	syntax := func(near string) (string, string, bool, *outcome) {
		o := fail(102, 15, "Incorrect syntax near '%s'.", near)
		return "", "", true, &o
	}
	name, rest, ok = cutDelimited(rest, '[', ']')
	if !ok {
		return syntax(firstWord(rest))
	}
	if ucs2Len(name) > 128 {
		o := fail(103, 15, "The identifier that starts with '%s' is too long. Maximum length is 128.", truncateUCS2(name, 128))
		return "", "", true, &o
	}
	rest = strings.TrimLeft(rest, " ")
	if !strings.HasPrefix(rest, ",") {
		return syntax(firstWord(rest))
	}
	rest = strings.TrimLeft(rest[1:], " ")
	inner, rest, ok = cutDelimited(rest, '\'', '\'')
	if !ok {
		return syntax(firstWord(rest))
	}
	if strings.TrimSpace(rest) != ")" {
		return syntax(firstWord(rest))
	}
	return name, inner, true, nil
}

// cutDelimited reads an identifier or literal that opens with open and
// closes with close, where a doubled close stands for itself (QUOTENAME and
// string-literal rules). It returns the unescaped content and the rest.
func cutDelimited(s string, open, close byte) (content, rest string, ok bool) {
	if len(s) == 0 || s[0] != open {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != close {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == close {
			b.WriteByte(close)
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", s, false
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

func truncateUCS2(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

func (ss *session) openQuery(ctx context.Context, name, inner string) outcome {
	ls := ss.srv.linkedServer(name)
	if ls == nil {
		return notLinked(name)
	}
	return ss.hop(ctx, ls, inner)
}
