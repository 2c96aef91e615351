package tdsserver_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
)

const (
	sqlUser     = "krbmon_sql"
	sqlPassword = "Passw0rd!Sql1"
	hostileName = "we]ird'name; --"
)

// startScenarios starts the named scenarios of testenv/scenarios (plus any
// extra ones) on free ports of their own IPs, closed when the test ends.
func startScenarios(t *testing.T, names []string, extra ...*tdsserver.Scenario) *tdsserver.Group {
	t.Helper()
	return startScenariosHop(t, 5*time.Second, names, extra...)
}

func startScenariosHop(t *testing.T, hopTimeout time.Duration, names []string, extra ...*tdsserver.Scenario) *tdsserver.Group {
	t.Helper()
	var scs []*tdsserver.Scenario
	for _, n := range names {
		sc, err := tdsserver.LoadScenario(filepath.Join("..", "scenarios", n+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	scs = append(scs, extra...)
	g, err := tdsserver.StartGroup(scs, tdsserver.GroupOptions{
		EphemeralPorts: true,
		Logf:           t.Logf,
		HopTimeout:     hopTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// dsn builds a go-mssqldb URL DSN for addr; extra holds query parameters.
func dsn(addr string, user *url.Userinfo, extra ...string) string {
	q := url.Values{"encrypt": {"disable"}, "dial timeout": {"3"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return (&url.URL{Scheme: "sqlserver", User: user, Host: addr, RawQuery: q.Encode()}).String()
}

func openSQL(t *testing.T, srv *tdsserver.Server, extra ...string) *sql.DB {
	t.Helper()
	return openDSN(t, dsn(srv.Addr(), url.UserPassword(sqlUser, sqlPassword), extra...))
}

func openDSN(t *testing.T, d string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlserver", d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// queryAll runs a query and returns its rows as strings-or-values.
func queryAll(t *testing.T, db *sql.DB, q string, args ...any) [][]any {
	t.Helper()
	out, err := tryQueryAll(ctxT(t), db, q, args...)
	if err != nil {
		t.Fatalf("%.60s...: %v", q, err)
	}
	return out
}

func tryQueryAll(ctx context.Context, db *sql.DB, q string, args ...any) ([][]any, error) {
	r, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out [][]any
	for r.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, r.Err()
}

func sqlError(t *testing.T, err error) mssql.Error {
	t.Helper()
	var me mssql.Error
	if !errors.As(err, &me) {
		t.Fatalf("want mssql.Error, got %T: %v", err, err)
	}
	return me
}

func portOf(t *testing.T, addr string) int64 {
	_, p, _ := net.SplitHostPort(addr)
	n, err := net.LookupPort("tcp", p)
	if err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

func near(t *testing.T, what string, got, want time.Time, tol time.Duration) {
	t.Helper()
	if d := got.Sub(want); d < -tol || d > tol {
		t.Errorf("%s = %v, want %v ± %v (off by %v)", what, got, want, tol, d)
	}
}

func TestSQLLoginOwnConnection(t *testing.T) {
	g := startScenarios(t, []string{"sqla"})
	a := g.Server("sqla")
	got := queryAll(t, openSQL(t, a), sqlclient.QueryOwnConnection)
	want := [][]any{{"TCP", "SQL", portOf(t, a.Addr())}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("own connection = %v, want %v", got, want)
	}
}

func TestWrongPasswordIs18456(t *testing.T) {
	g := startScenarios(t, []string{"sqla"})
	db := openDSN(t, dsn(g.Server("sqla").Addr(), url.UserPassword(sqlUser, "wrong")))
	err := db.PingContext(ctxT(t))
	me := sqlError(t, err)
	if me.Number != 18456 || me.Class != 14 || !strings.Contains(me.Message, "Login failed for user 'krbmon_sql'.") {
		t.Fatalf("got %d/%d %q", me.Number, me.Class, me.Message)
	}
}

func TestPingAndDatabase(t *testing.T) {
	g := startScenarios(t, []string{"sqla"})
	a := g.Server("sqla")
	if err := openSQL(t, a, "database", "master").PingContext(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	err := openSQL(t, a, "database", "nosuchdb").PingContext(ctxT(t))
	if me := sqlError(t, err); me.Number != 4060 {
		t.Fatalf("unknown database: got %d %q", me.Number, me.Message)
	}
}

func TestEncryptionRequiredIsRefusedCleanly(t *testing.T) {
	g := startScenarios(t, []string{"sqla"})
	db := openDSN(t, strings.Replace(dsn(g.Server("sqla").Addr(), url.UserPassword(sqlUser, sqlPassword)), "encrypt=disable", "encrypt=true", 1))
	err := db.PingContext(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "server does not support encryption") {
		t.Fatalf("encrypt=true: got %v", err)
	}
	// encrypt=strict (TDS 8) starts with TLS, which the stand-in refuses at once.
	db = openDSN(t, strings.Replace(dsn(g.Server("sqla").Addr(), url.UserPassword(sqlUser, sqlPassword)), "encrypt=disable", "encrypt=strict", 1))
	start := time.Now()
	if err := db.PingContext(ctxT(t)); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("encrypt=strict: got %v after %v, want a quick failure", err, time.Since(start))
	}
	// encrypt=false (the driver's default) negotiates no TLS at all and works.
	db = openDSN(t, strings.Replace(dsn(g.Server("sqla").Addr(), url.UserPassword(sqlUser, sqlPassword)), "encrypt=disable", "encrypt=false", 1))
	if err := db.PingContext(ctxT(t)); err != nil {
		t.Fatalf("encrypt=false: %v", err)
	}
}

func TestServerIdentityAndClock(t *testing.T) {
	g := startScenarios(t, []string{"sqla", "sqlb"})
	a, b := openSQL(t, g.Server("sqla")), openSQL(t, g.Server("sqlb"))

	got := queryAll(t, a, sqlclient.QueryServerIdentity)
	if len(got) != 1 || got[0][0] != "SQLA" || got[0][1] != "SQLA" || got[0][2] != nil || got[0][3] != "CORP" {
		t.Fatalf("identity = %v", got)
	}
	near(t, "A utc_now", got[0][4].(time.Time), time.Now(), 5*time.Second)

	clockB := queryAll(t, b, sqlclient.QueryClock)[0][0].(time.Time)
	near(t, "B utc_now (offset +90s)", clockB, time.Now().Add(90*time.Second), 5*time.Second)
}

func TestListenerPortsAndServiceAccounts(t *testing.T) {
	g := startScenarios(t, []string{"sqla", "sqlc"})
	a, c := openSQL(t, g.Server("sqla")), openSQL(t, g.Server("sqlc"))
	if got := queryAll(t, c, sqlclient.QueryListenerPorts); len(got) != 2 || got[0][0] != int64(1433) || got[1][0] != int64(51433) {
		t.Errorf("C ports = %v", got)
	}
	got := queryAll(t, a, sqlclient.QueryServiceAccounts)
	want := [][]any{{"SQL Server (MSSQLSERVER)", `CORP\sqlsvc_a`}, {"SQL Server Agent (MSSQLSERVER)", `CORP\sqlsvc_a`}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("services = %v, want %v", got, want)
	}
}

func TestConnectionCountsIncludeLiveSessions(t *testing.T) {
	g := startScenarios(t, []string{"sqla"})
	db := openSQL(t, g.Server("sqla"))
	got := queryAll(t, db, sqlclient.QueryConnectionCounts)
	// Scenario: 2 KERBEROS + 1 SQL; plus this test's own SQL session.
	want := [][]any{{"TCP", "KERBEROS", int64(2)}, {"TCP", "SQL", int64(2)}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
}

func TestNTLMClientsTopN(t *testing.T) {
	g := startScenarios(t, []string{"sqlc"})
	db := openSQL(t, g.Server("sqlc"))
	got := queryAll(t, db, sqlclient.QueryNTLMClients, 2)
	want := [][]any{
		{"APP07", `CORP\svc_report`, "Report Server", int64(3)},
		{"WKS-0142", `CORP\alice`, "Microsoft SQL Server Management Studio", int64(2)},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("top 2 = %v, want %v", got, want)
	}
	if got := queryAll(t, db, sqlclient.QueryNTLMClients, 0); len(got) != 0 {
		t.Errorf("top 0 = %v", got)
	}
	if got := queryAll(t, db, sqlclient.QueryNTLMClients, sql.Named("p1", 100)); len(got) != 3 {
		t.Errorf("top 100 (named @p1) = %v", got)
	}
	_, err := tryQueryAll(ctxT(t), db, sqlclient.QueryNTLMClients)
	if me := sqlError(t, err); me.Number != 137 {
		t.Errorf("without @p1: %d %q", me.Number, me.Message)
	}
	_, err = tryQueryAll(ctxT(t), db, sqlclient.QueryNTLMClients, -1)
	if me := sqlError(t, err); me.Number != 1014 {
		t.Errorf("TOP (-1): %d %q", me.Number, me.Message)
	}
}

func TestLinkedServersAndLogins(t *testing.T) {
	g := startScenarios(t, []string{"sqla"})
	db := openSQL(t, g.Server("sqla"))
	got := queryAll(t, db, sqlclient.QueryLinkedServers)
	want := [][]any{
		{int64(1), "SQLB", "SQL Server", "SQLNCLI", "sqlb.corp.test"},
		{int64(2), "SQLB_FIXED", "", "MSOLEDBSQL", "sqlb.corp.test,1433"},
		{int64(3), hostileName, "", "MSOLEDBSQL", "sqlb.corp.test"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("servers = %v, want %v", got, want)
	}
	got = queryAll(t, db, sqlclient.QueryLinkedLogins)
	want = [][]any{
		{int64(1), true, int64(0), nil},
		{int64(2), false, int64(0), "hop_sql"},
		{int64(3), false, int64(0), "hop_sql"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("logins = %v, want %v", got, want)
	}
}

func readErrorLog(ctx context.Context, db *sql.DB) ([][]any, error) {
	return tryQueryAll(ctx, db, sqlclient.ProcReadErrorLog, 0, 1, sqlclient.SearchSPNRegistration)
}

func TestReadErrorLog(t *testing.T) {
	g := startScenarios(t, []string{"sqla", "sqlc", "sqld"})
	ctx := ctxT(t)

	got, err := readErrorLog(ctx, openSQL(t, g.Server("sqla")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("sqla: %d SPN lines, want 2: %v", len(got), got)
	}
	wantDate := time.Date(2025, 1, 6, 8, 0, 1, 120000000, time.UTC)
	if d := got[1][0].(time.Time); !d.Equal(wantDate) || got[1][1] != "spid21s" ||
		got[1][2] != "The SQL Server Network Interface library successfully registered the Service Principal Name (SPN) [ MSSQLSvc/sqla.corp.test:1433 ] for the SQL Server service." {
		t.Errorf("sqla line = %v", got[1])
	}

	got, err = readErrorLog(ctx, openSQL(t, g.Server("sqlc")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.HasPrefix(got[0][2].(string), "The SQL Server Network Interface library could not register the Service Principal Name (SPN) [ MSSQLSvc/sqlc.corp.test:1433 ]") {
		t.Errorf("sqlc = %v", got)
	}

	// No search string: every line.
	all, err := tryQueryAll(ctx, openSQL(t, g.Server("sqla")), sqlclient.ProcReadErrorLog, 0, 1)
	if err != nil || len(all) != 4 {
		t.Errorf("unfiltered: %d lines, %v", len(all), err)
	}

	_, err = readErrorLog(ctx, openSQL(t, g.Server("sqld")))
	if me := sqlError(t, err); me.Number != 15003 || !strings.Contains(me.Message, "securityadmin") {
		t.Errorf("sqld: %d %q", me.Number, me.Message)
	}
}

func TestUnknownStatementsGetErrors(t *testing.T) {
	g := startScenarios(t, []string{"sqla"})
	db := openSQL(t, g.Server("sqla"))
	ctx := ctxT(t)
	_, err := tryQueryAll(ctx, db, "SELECT name FROM sys.databases")
	if me := sqlError(t, err); me.Number != 208 || me.Message != "Invalid object name 'sys.databases'." {
		t.Errorf("unknown query: %d %q", me.Number, me.Message)
	}
	_, err = db.ExecContext(ctx, "sys.sp_who")
	if me := sqlError(t, err); me.Number != 2812 {
		t.Errorf("unknown proc: %d %q", me.Number, me.Message)
	}
	// The connection is still good afterwards.
	if got := queryAll(t, db, sqlclient.QueryOwnConnection); len(got) != 1 {
		t.Errorf("after errors: %v", got)
	}
}

// hop runs HopQuery(name) and returns (net_transport, auth_scheme, utc_now).
func hop(ctx context.Context, db *sql.DB, name string) (string, string, time.Time, error) {
	var transport, scheme string
	var now time.Time
	err := db.QueryRowContext(ctx, sqlclient.HopQuery(name)).Scan(&transport, &scheme, &now)
	return transport, scheme, now, err
}

func testLinked(ctx context.Context, db *sql.DB, name string) error {
	_, err := db.ExecContext(ctx, sqlclient.ProcTestLinkedServer, sql.Named("servername", name))
	return err
}

func TestHopFixedMappingCrossesToB(t *testing.T) {
	g := startScenarios(t, []string{"sqla", "sqlb"})
	db := openSQL(t, g.Server("sqla"))
	ctx := ctxT(t)
	for _, name := range []string{"SQLB_FIXED", hostileName, "sqlb_fixed"} {
		transport, scheme, now, err := hop(ctx, db, name)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if transport != "TCP" || scheme != "SQL" {
			t.Errorf("%q: B saw %s/%s, want TCP/SQL", name, transport, scheme)
		}
		near(t, "B's utc_now through the hop", now, time.Now().Add(90*time.Second), 5*time.Second)
		if err := testLinked(ctx, db, name); err != nil {
			t.Errorf("sp_testlinkedserver %q: %v", name, err)
		}
	}
}

func TestHopSelfMappedSQLLogin(t *testing.T) {
	g := startScenarios(t, []string{"sqla", "sqlb"})
	_, scheme, _, err := hop(ctxT(t), openSQL(t, g.Server("sqla")), "SQLB")
	if err != nil || scheme != "SQL" {
		t.Fatalf("self-mapped SQL caller: scheme %q, err %v", scheme, err)
	}
}

func TestHostileNamesNeverInject(t *testing.T) {
	g := startScenarios(t, []string{"sqla", "sqlb"})
	db := openSQL(t, g.Server("sqla"))
	ctx := ctxT(t)
	for _, name := range []string{"nope", "SQLB]", "SQLB]] , 'x')", "a'b", "x', 'SELECT 1') --", strings.Repeat("n", 128)} {
		_, _, _, err := hop(ctx, db, name)
		me := sqlError(t, err)
		if me.Number != 7202 || !strings.Contains(me.Message, "Could not find server '"+name+"' in sys.servers.") {
			t.Errorf("hop %q: %d %q", name, me.Number, me.Message)
		}
		me = sqlError(t, testLinked(ctx, db, name))
		if me.Number != 7202 || !strings.Contains(me.Message, "'"+name+"'") {
			t.Errorf("sp_testlinkedserver %q: %d %q", name, me.Number, me.Message)
		}
	}
	_, _, _, err := hop(ctx, db, strings.Repeat("n", 129))
	if me := sqlError(t, err); me.Number != 103 {
		t.Errorf("129-character name: %d %q", me.Number, me.Message)
	}
	// Broken quoting (a raw statement, not from QuoteName) is a syntax error.
	_, err = tryQueryAll(ctx, db, strings.Replace(sqlclient.HopQuery("SQLB"), "[SQLB]", "[SQ]LB]", 1))
	if me := sqlError(t, err); me.Number != 102 {
		t.Errorf("broken quoting: %d %q", me.Number, me.Message)
	}
}

// inline parses a scenario written in the test.
func inline(t *testing.T, name, text string) *tdsserver.Scenario {
	t.Helper()
	sc, err := tdsserver.ParseScenario(name+".yml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestHopFailures(t *testing.T) {
	// E: linked servers to B without a mapping, to a port nobody listens
	// on, and to the stalling server.
	e := inline(t, "sqle", `
listen: 127.0.0.15:1433
machine_name: SQLE
domain: CORP
sql_logins: [{name: krbmon_sql, password: Passw0rd!Sql1}]
linked_servers:
  - {name: NOMAP, server_id: 1, connect: "127.0.0.12:1433"}
  - name: ONLY_BOB
    server_id: 2
    connect: "127.0.0.12:1433"
    logins: [{local_login: 'CORP\bob', local_principal_id: 267, uses_self_credential: true}]
  - name: DOWN
    server_id: 3
    connect: "127.0.0.19:1"
    logins: [{uses_self_credential: false, local_principal_id: 0, remote_name: hop_sql, remote_password: x}]
  - name: STALLED
    server_id: 4
    connect: "127.0.0.17:1433"
    logins: [{uses_self_credential: false, local_principal_id: 0, remote_name: krbmon_sql, remote_password: Passw0rd!Sql1}]
  - name: BADPASS
    server_id: 5
    connect: "127.0.0.12:1433"
    logins: [{uses_self_credential: false, local_principal_id: 0, remote_name: hop_sql, remote_password: wrong}]
`)
	g := startScenariosHop(t, time.Second, []string{"sqlb", "stall"}, e)
	db := openSQL(t, g.Server("sqle"))
	ctx := ctxT(t)
	for _, c := range []struct {
		name   string
		number int32
		msg    string
	}{
		{"NOMAP", 7416, "Access to the remote server is denied because no login-mapping exists."},
		{"ONLY_BOB", 7416, "Access to the remote server is denied because no login-mapping exists."},
		{"DOWN", 53, "Could not open a connection to SQL Server [53]"},
		{"STALLED", 258, "Timeout error [258]"},
		{"BADPASS", 18456, "Login failed for user 'hop_sql'."},
	} {
		_, _, _, err := hop(ctx, db, c.name)
		if me := sqlError(t, err); me.Number != c.number || !strings.Contains(me.Message, c.msg) {
			t.Errorf("hop %s: %d %q, want %d %q", c.name, me.Number, me.Message, c.number, c.msg)
		}
		if me := sqlError(t, testLinked(ctx, db, c.name)); me.Number != c.number {
			t.Errorf("sp_testlinkedserver %s: %d %q, want %d", c.name, me.Number, me.Message, c.number)
		}
	}
}

func TestNTLMLoginAndAnonymousHop(t *testing.T) {
	g := startScenarios(t, []string{"sqlc", "sqlb"})
	c := g.Server("sqlc")
	// go-mssqldb picks its NTLM authenticator for a DOMAIN\user user id.
	db := openDSN(t, dsn(c.Addr(), url.UserPassword(`CORP\alice`, "any password: NTLM is not verified"), "workstation id", "WKS-TEST"))
	got := queryAll(t, db, sqlclient.QueryOwnConnection)
	if got[0][1] != "NTLM" {
		t.Fatalf("own connection = %v, want NTLM", got)
	}
	got = queryAll(t, db, sqlclient.QueryNTLMClients, 10)
	if !slices.ContainsFunc(got, func(r []any) bool { return r[0] == "WKS-TEST" && r[1] == `CORP\alice` }) {
		t.Errorf("own NTLM session missing from NTLM clients: %v", got)
	}
	// Self-mapped hop of an NTLM caller: B sees the anonymous logon and refuses.
	_, _, _, err := hop(ctxT(t), db, "SQLB")
	me := sqlError(t, err)
	if me.Number != 18456 || me.Message != `Login failed for user 'NT AUTHORITY\ANONYMOUS LOGON'.` {
		t.Fatalf("hop: %d state %d %q", me.Number, me.State, me.Message)
	}
	if me := sqlError(t, testLinked(ctxT(t), db, "SQLB")); me.Number != 18456 {
		t.Errorf("sp_testlinkedserver: %d %q", me.Number, me.Message)
	}
}

// go-mssqldb v1.11.2 does not watch the context while it waits for the
// server's PRELOGIN answer, so a server that accepts and stays silent holds
// PingContext past its deadline. A client bounds it twice: the caller's
// deadline (the call runs aside) and the driver's "connection timeout" (a
// per-read deadline, so the abandoned call ends too).
func TestStallTimesOutWhileOthersAnswer(t *testing.T) {
	g := startScenarios(t, []string{"stall", "sqla"})
	stalled := openSQL(t, g.Server("stall"), "connection timeout", "2")
	a := openSQL(t, g.Server("sqla"))

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- stalled.PingContext(ctx) }()
	// Meanwhile A answers.
	for i := 0; i < 5; i++ {
		if got := queryAll(t, a, sqlclient.QueryClock); len(got) != 1 {
			t.Fatalf("A: %v", got)
		}
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled server: got %v, want context deadline exceeded", err)
	}
	select {
	case err = <-errc:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("abandoned ping ended with %T %v, want a network timeout", err, err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("abandoned ping took %v with connection timeout 2s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("abandoned ping still running 10s later despite connection timeout")
	}
}

func TestAttentionCancelsSlowHop(t *testing.T) {
	e := inline(t, "sqle", `
listen: 127.0.0.15:1433
machine_name: SQLE
domain: CORP
sql_logins: [{name: krbmon_sql, password: Passw0rd!Sql1}]
linked_servers:
  - name: STALLED
    server_id: 1
    connect: "127.0.0.17:1433"
    logins: [{uses_self_credential: false, local_principal_id: 0, remote_name: krbmon_sql, remote_password: Passw0rd!Sql1}]
`)
	g := startScenarios(t, []string{"stall"}, e)
	// One pinned connection: after the attention is acknowledged it must
	// serve the next query. (A cancel, not a deadline: go-mssqldb treats
	// context.DeadlineExceeded as a network error and drops the connection.)
	conn, err := openSQL(t, g.Server("sqle")).Conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	var transport, scheme string
	var now time.Time
	err = conn.QueryRowContext(ctx, sqlclient.HopQuery("STALLED")).Scan(&transport, &scheme, &now)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %v", d)
	}
	var port int
	if err := conn.QueryRowContext(ctxT(t), sqlclient.QueryOwnConnection).Scan(&transport, &scheme, &port); err != nil || scheme != "SQL" {
		t.Fatalf("same connection after attention: %q, %v", scheme, err)
	}
}

func TestMultiPacketMessages(t *testing.T) {
	g := startScenarios(t, []string{"sqla"})
	// The smallest packet size makes the LOGIN7 reply, the error log and a
	// long RPC parameter span several packets each way.
	db := openSQL(t, g.Server("sqla"), "packet size", "512")
	ctx := ctxT(t)
	got, err := tryQueryAll(ctx, db, sqlclient.ProcReadErrorLog, 0, 1, strings.Repeat("x", 3000))
	if err != nil || len(got) != 0 {
		t.Fatalf("long search string: %v %v", got, err)
	}
	got, err = readErrorLog(ctx, db)
	if err != nil || len(got) != 2 {
		t.Fatalf("error log over 512-byte packets: %d rows, %v", len(got), err)
	}
}
