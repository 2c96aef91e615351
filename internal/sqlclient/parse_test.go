package sqlclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/integratedauth"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krb5auth"
)

func TestParseSPNRegistration(t *testing.T) {
	at := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		text string
		want facts.SPNRegistration
		ok   bool
	}{
		{
			text: "The SQL Server Network Interface library successfully registered the Service Principal Name (SPN) [ MSSQLSvc/sqla.corp.test:1433 ] for the SQL Server service.",
			want: facts.SPNRegistration{Time: at, SPN: "MSSQLSvc/sqla.corp.test:1433", Registered: true},
			ok:   true,
		},
		{
			text: "The SQL Server Network Interface library could not register the Service Principal Name (SPN) [ MSSQLSvc/sqlc.corp.test:1433 ] for the SQL Server service. Windows return code: 0x2098, state: 15. Failure to register a SPN might cause integrated authentication to use NTLM instead of Kerberos. This is an informational message.",
			want: facts.SPNRegistration{Time: at, SPN: "MSSQLSvc/sqlc.corp.test:1433", ReturnCode: "0x2098", State: 15},
			ok:   true,
		},
		{
			text: "The SQL Server Network Interface library could not register the Service Principal Name (SPN) [MSSQLSvc/sqlc.corp.test:INST] for the SQL Server service. Windows return code: 0x20ab, state: 4.",
			want: facts.SPNRegistration{Time: at, SPN: "MSSQLSvc/sqlc.corp.test:INST", ReturnCode: "0x20AB", State: 4},
			ok:   true,
		},
		{
			// Without a return code (seen on some builds): still a failure.
			text: "The SQL Server Network Interface library could not register the Service Principal Name (SPN) [ MSSQLSvc/x.corp.test ] for the SQL Server service.",
			want: facts.SPNRegistration{Time: at, SPN: "MSSQLSvc/x.corp.test"},
			ok:   true,
		},
		{text: "The SQL Server Network Interface library successfully deregistered the Service Principal Name (SPN) [ MSSQLSvc/sqla.corp.test:1433 ] for the SQL Server service."},
		{text: "Server is listening on [ 'any' <ipv4> 1433]."},
		{text: "successfully registered the Service Principal Name (SPN) [ ] for the SQL Server service."},
	}
	for _, tt := range tests {
		got, ok := ParseSPNRegistration(ErrorLogLine{Time: at, Text: tt.text})
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseSPNRegistration(%.60q) = %+v, %v; want %+v, %v", tt.text, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseSPNRegistrationsKeepsLatestPerSPN(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	line := func(min int, text string) ErrorLogLine {
		return ErrorLogLine{Time: t0.Add(time.Duration(min) * time.Minute), Text: text}
	}
	failed := "could not register the Service Principal Name (SPN) [ MSSQLSvc/B.corp.test:1433 ] for the SQL Server service. Windows return code: 0x2098, state: 15."
	lines := []ErrorLogLine{
		line(0, failed),
		line(1, "successfully registered the Service Principal Name (SPN) [ MSSQLSvc/a.corp.test:1433 ] for the SQL Server service."),
		line(2, "successfully registered the Service Principal Name (SPN) [ MSSQLSvc/b.corp.test:1433 ] for the SQL Server service."),
		line(3, "unrelated line mentioning Service Principal Name"),
		line(1, failed), // older than the success for the same SPN
	}
	got := ParseSPNRegistrations(lines)
	if len(got) != 2 {
		t.Fatalf("got %d registrations, want 2: %+v", len(got), got)
	}
	if got[0].SPN != "MSSQLSvc/a.corp.test:1433" || !got[0].Registered {
		t.Errorf("first = %+v, want a registered", got[0])
	}
	if got[1].SPN != "MSSQLSvc/b.corp.test:1433" || !got[1].Registered {
		t.Errorf("second = %+v, want b registered (the later message wins, SPNs compared case-insensitively)", got[1])
	}
}

func sqlErr(number int32, msg string) mssql.Error {
	return mssql.Error{Number: number, Message: msg, State: 1, Class: 14}
}

// loginErr is an error as go-mssqldb returns a refused login.
func loginErr(number int32, msg string) error {
	orig := sqlErr(number, msg)
	e := orig
	e.Message = "login error: " + msg
	e.All = []mssql.Error{orig}
	return e
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	kdc7 := krberror.Errorf(messages.KRBError{ErrorCode: 7}, krberror.KDCError, "TGS Exchange Error: kerberos error response from KDC when requesting for %s", "MSSQLSvc/sqlc.corp.test:1433")
	// What the Kerberos authenticator says when its keytab is missing.
	krb5conf := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(krb5conf, []byte("[libdefaults]\n default_realm = CORP.TEST\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, noKeytab := integratedauth.GetIntegratedAuthenticator(msdsn.Config{
		User: "krbmon", ServerSPN: "MSSQLSvc/sqla.corp.test:1433",
		Parameters: map[string]string{
			"authenticator": krb5auth.Name, krb5auth.ParamRealm: "CORP.TEST",
			krb5auth.ParamConfigFile: krb5conf,
			krb5auth.ParamKeytabFile: filepath.Join(t.TempDir(), "missing.keytab"),
		},
	})
	if noKeytab == nil {
		t.Fatal("a missing keytab is not an error")
	}
	tests := []struct {
		name   string
		err    error
		cause  string
		number int32
	}{
		{"login failed", loginErr(18456, "Login failed for user 'CORP\\krbmon'."), CauseLoginFailed, 18456},
		{"untrusted domain", loginErr(18452, "Login failed. The login is from an untrusted domain."), CauseLoginFailed, 18452},
		{"other server error", loginErr(4060, "Cannot open database"), CauseOther, 4060},
		{"refused", fmt.Errorf("unable to open tcp connection with host '127.0.0.1:1': %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}), CauseNetwork, 0},
		{"dns", &net.DNSError{Err: "no such host", Name: "nowhere.corp.test", IsNotFound: true}, CauseNetwork, 0},
		{"eof", fmt.Errorf("reading prelogin: %w", io.EOF), CauseNetwork, 0},
		{"deadline", fmt.Errorf("login: %w", context.DeadlineExceeded), CauseTimeout, 0},
		{"read timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, CauseTimeout, 0},
		{"kdc error 7", kdc7, CauseKerberos, 0},
		{"kdc unreachable", krberror.NewErrorf(krberror.NetworkingError, "communication error with KDC via TCP"), CauseKerberos, 0},
		{"no keytab", noKeytab, CauseKerberos, 0},
		{"tls", errors.New("TLS Handshake failed: x509: certificate signed by unknown authority"), CauseTLS, 0},
		{"something else", errors.New("ntlm : invalid username"), CauseOther, 0},
	}
	for _, tt := range tests {
		cause, number := Classify(tt.err)
		if cause != tt.cause || number != tt.number {
			t.Errorf("%s: Classify = %s, %d; want %s, %d", tt.name, cause, number, tt.cause, tt.number)
		}
	}
	if !IsTicketError(kdc7) || IsTicketError(loginErr(18456, "x")) || IsTicketError(context.DeadlineExceeded) {
		t.Error("IsTicketError must be true for a KDC error only")
	}
}

func TestIsPermissionDenied(t *testing.T) {
	for _, n := range []int32{229, 297, 300, 15003, 15247} {
		if !IsPermissionDenied(fmt.Errorf("query: %w", sqlErr(n, "denied"))) {
			t.Errorf("error %d is a permission error", n)
		}
	}
	multi := sqlErr(297, "last")
	multi.All = []mssql.Error{sqlErr(300, "VIEW SERVER STATE permission was denied"), sqlErr(297, "last")}
	if !IsPermissionDenied(multi) {
		t.Error("a permission error among several counts")
	}
	for _, err := range []error{sqlErr(208, "Invalid object name"), context.DeadlineExceeded, errors.New("x")} {
		if IsPermissionDenied(err) {
			t.Errorf("%v is not a permission error", err)
		}
	}
}

func TestLinkedServerCause(t *testing.T) {
	withAll := func(errs ...mssql.Error) error {
		e := errs[len(errs)-1]
		e.All = errs
		return fmt.Errorf("testing linked server: %w", e)
	}
	tests := []struct {
		name   string
		err    error
		cause  string
		number int32
	}{
		{"anonymous", withAll(sqlErr(18456, "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'.")), CauseDelegation, 18456},
		{"null user", withAll(sqlErr(18456, "Login failed for user '(null)'.")), CauseDelegation, 18456},
		{"anonymous then provider error", withAll(sqlErr(18456, "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'."), sqlErr(7303, "Cannot initialize the data source object of OLE DB provider \"MSOLEDBSQL\" for linked server \"SQLB\".")), CauseDelegation, 18456},
		{"wrong password", withAll(sqlErr(18456, "Login failed for user 'remote_sql'.")), CauseLoginFailed, 18456},
		{"no mapping", withAll(sqlErr(7416, "Access to the remote server is denied because no login-mapping exists.")), CauseNoMapping, 7416},
		{"impersonation", withAll(sqlErr(7437, "Linked servers cannot be used under impersonation without a mapping for the impersonated login.")), CauseNoMapping, 7437},
		{"network 53", withAll(sqlErr(53, "Named Pipes Provider: Could not open a connection to SQL Server [53].")), CauseNetwork, 53},
		{"no such host", withAll(sqlErr(11001, "TCP Provider: No such host is known.")), CauseNetwork, 11001},
		{"7303 network", withAll(sqlErr(7303, "Cannot initialize the data source object of OLE DB provider \"MSOLEDBSQL\" for linked server \"X\". A network-related or instance-specific error has occurred.")), CauseNetwork, 7303},
		{"7303 other", withAll(sqlErr(7303, "Cannot initialize the data source object of OLE DB provider \"MSOLEDBSQL\" for linked server \"X\".")), CauseOther, 7303},
		{"remote timeout", withAll(sqlErr(258, "TCP Provider: Timeout error [258].")), CauseTimeout, 258},
		{"ctx timeout", fmt.Errorf("testing linked server: %w", context.DeadlineExceeded), CauseTimeout, 0},
		{"not linked", withAll(sqlErr(7202, "Could not find server 'X' in sys.servers.")), CauseOther, 7202},
	}
	for _, tt := range tests {
		cause, number, _, msg := LinkedServerCause(tt.err)
		if cause != tt.cause || number != tt.number {
			t.Errorf("%s: LinkedServerCause = %s, %d (%s); want %s, %d", tt.name, cause, number, msg, tt.cause, tt.number)
		}
	}
}

func TestParseDataSource(t *testing.T) {
	tests := []struct {
		in   string
		want DataSource
	}{
		{"sqlb.corp.test", DataSource{Host: "sqlb.corp.test"}},
		{"SQLB", DataSource{Host: "SQLB"}},
		{"sqlb.corp.test,1433", DataSource{Host: "sqlb.corp.test", Port: 1433}},
		{`SQLB\INST1`, DataSource{Host: "SQLB", Instance: "INST1"}},
		{`tcp:sqlb.corp.test\INST1,50123`, DataSource{Host: "sqlb.corp.test", Instance: "INST1", Port: 50123}},
		{" 127.0.0.12 , 1433 ", DataSource{Host: "127.0.0.12", Port: 1433}},
		{" sqlb\\INST1 , 50123 ", DataSource{Host: "sqlb", Instance: "INST1", Port: 50123}},
		{"", DataSource{}},
	}
	for _, tt := range tests {
		if got := ParseDataSource(tt.in); got != tt.want {
			t.Errorf("ParseDataSource(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestQuoteNameAndHopQuery(t *testing.T) {
	tests := map[string]string{
		"SQLB":             "[SQLB]",
		"we]ird'name; --":  "[we]]ird'name; --]",
		"]]":               "[]]]]]",
		"":                 "[]",
		"ünïcode]":         "[ünïcode]]]",
		"a[b":              "[a[b]",
		"x]; DROP TABLE t": "[x]]; DROP TABLE t]",
	}
	for in, want := range tests {
		if got := QuoteName(in); got != want {
			t.Errorf("QuoteName(%q) = %q, want %q", in, got, want)
		}
	}
	q := HopQuery("we]ird'name; --")
	want := "SELECT net_transport, auth_scheme, utc_now FROM OPENQUERY([we]]ird'name; --], '" + HopInnerQuery + "')"
	if q != want {
		t.Errorf("HopQuery = %q, want %q", q, want)
	}
	if strings.Contains(HopInnerQuery, "'") {
		t.Error("HopInnerQuery is embedded in a string literal and must hold no quote")
	}
}

func TestParseBrowserReply(t *testing.T) {
	reply := func(s string) []byte {
		b := []byte{0x05, 0, 0}
		binary.LittleEndian.PutUint16(b[1:], uint16(len(s)))
		return append(b, s...)
	}
	data := "ServerName;SQLC;InstanceName;MSSQLSERVER;IsClustered;No;Version;16.0.1000.6;tcp;1433;;" +
		"ServerName;SQLC;InstanceName;INST1;IsClustered;No;Version;16.0.1000.6;tcp;50123;np;\\\\SQLC\\pipe\\MSSQL$INST1\\sql\\query;;"
	if port, err := parseBrowserReply(reply(data), "inst1"); err != nil || port != 50123 {
		t.Errorf("port = %d, %v; want 50123", port, err)
	}
	if _, err := parseBrowserReply(reply(data), "OTHER"); err == nil {
		t.Error("an unknown instance must be an error")
	}
	if _, err := parseBrowserReply(reply("ServerName;SQLC;InstanceName;NP;np;\\\\SQLC\\pipe\\x;;"), "NP"); err == nil {
		t.Error("an instance without tcp must be an error")
	}
	if _, err := parseBrowserReply([]byte{0x04}, "X"); err == nil {
		t.Error("a malformed reply must be an error")
	}
}

func TestBrowserPortAsksOverUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		n, from, err := pc.ReadFrom(buf)
		if err != nil || n < 2 || buf[0] != 0x04 || string(buf[1:n-1]) != "INST1" {
			return
		}
		s := "ServerName;SQLC;InstanceName;INST1;IsClustered;No;tcp;50123;;"
		b := binary.LittleEndian.AppendUint16([]byte{0x05}, uint16(len(s)))
		pc.WriteTo(append(b, s...), from)
	}()
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got, err := browserPortAt(ctx, "127.0.0.1", port, "INST1")
	if err != nil || got != 50123 {
		t.Fatalf("browserPortAt = %d, %v; want 50123", got, err)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[[2]string]string{
		{`CORP\krbmon`, "CORP.TEST"}:     `CORP\krbmon`,
		{"krbmon@CORP.TEST", ""}:         `CORP.TEST\krbmon`,
		{"krbmon", "CORP.TEST"}:          `CORP.TEST\krbmon`,
		{`CORP\krbmon@corp.test`, "REA"}: `CORP\krbmon@corp.test`,
	} {
		if got := ntlmUser(in[0], in[1]); got != want {
			t.Errorf("ntlmUser(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
	for in, want := range map[string][2]string{
		"krbmon@CORP.TEST": {"krbmon", "CORP.TEST"},
		`CORP\krbmon`:      {"krbmon", ""},
		"krbmon":           {"krbmon", ""},
	} {
		if u, r := splitPrincipal(in); u != want[0] || r != want[1] {
			t.Errorf("splitPrincipal(%q) = %q, %q; want %q", in, u, r, want)
		}
	}
}

func TestConfigTargetsTheRegisteredSPNAndHoldsNoSecret(t *testing.T) {
	inst := &config.SQLInstance{
		Name: "sqla", Host: "SQLA.corp.test", Address: "127.0.0.11", Port: 1433,
		Encrypt: "true", Timeout: config.Duration(7 * time.Second),
		Auth: config.SQLAuth{Method: "kerberos", Username: "krbmon@CORP.TEST", Password: config.NewSecret("s3cret!pw")},
	}
	tg, err := resolveTarget(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if tg.addr() != "127.0.0.11:1433" || tg.spn != "MSSQLSvc/sqla.corp.test:1433" {
		t.Errorf("target = %s %s; want 127.0.0.11:1433 and MSSQLSvc/sqla.corp.test:1433", tg.addr(), tg.spn)
	}
	cfg, err := baseConfig(inst, tg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "" || cfg.Password != "" {
		t.Error("the connection string must hold no credentials")
	}
	if err := setKerberos(&cfg, &inst.Auth, &config.Kerberos{}); err != nil {
		t.Fatal(err)
	}
	if cfg.ServerSPN != tg.spn || cfg.DialTimeout != 7*time.Second || len(cfg.Protocols) != 1 || cfg.Protocols[0] != "tcp" {
		t.Errorf("config: spn %q, dial timeout %s, protocols %v", cfg.ServerSPN, cfg.DialTimeout, cfg.Protocols)
	}
	if cfg.TLSConfig == nil || cfg.TLSConfig.ServerName != "SQLA.corp.test" {
		t.Errorf("TLS must verify the host name, not the address: %+v", cfg.TLSConfig)
	}
	if cfg.User != "krbmon" || cfg.Parameters["krb5-realm"] != "CORP.TEST" || cfg.Parameters["authenticator"] != krb5auth.Name {
		t.Errorf("kerberos settings: user %q, params %v", cfg.User, cfg.Parameters)
	}
	if strings.Contains(fmt.Sprint(cfg.Parameters), "s3cret") {
		t.Error("the password must not be in the parameters")
	}

	inst.Auth.ServerSPN = "MSSQLSvc/alias.corp.test:1433"
	if tg, _ := resolveTarget(context.Background(), inst); tg.spn != "MSSQLSvc/alias.corp.test:1433" {
		t.Errorf("auth.server_spn must win, got %s", tg.spn)
	}
}

func TestConnectRefusedIsNetworkAndNamesNoSecret(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	inst := &config.SQLInstance{
		Name: "gone", Host: "gone.corp.test", Address: "127.0.0.1", Port: addr.Port, Encrypt: "disable",
		Timeout: config.Duration(3 * time.Second),
		Auth:    config.SQLAuth{Method: "sql", Username: "krbmon_sql", Password: config.NewSecret("s3cret!pw")},
	}
	_, err = Connect(context.Background(), inst, &config.Kerberos{})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Cause != CauseNetwork {
		t.Fatalf("Connect = %v; want a ConnectError with cause network", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestConnectToSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c) // accept, then never answer
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	inst := &config.SQLInstance{
		Name: "silent", Host: "silent.corp.test", Address: "127.0.0.1", Port: port, Encrypt: "disable",
		Timeout: config.Duration(time.Second),
		Auth:    config.SQLAuth{Method: "sql", Username: "krbmon_sql", Password: config.NewSecret("pw")},
	}
	start := time.Now()
	_, err = Connect(context.Background(), inst, &config.Kerberos{})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Cause != CauseTimeout {
		t.Fatalf("Connect = %v; want cause timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect took %s with a 1s instance timeout", d)
	}
}

func TestWindowsMethodNeedsWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("windows builds support SSPI")
	}
	inst := &config.SQLInstance{Name: "w", Host: "w.corp.test", Address: "127.0.0.1", Port: 1, Encrypt: "disable", Auth: config.SQLAuth{Method: "windows"}}
	_, err := Connect(context.Background(), inst, &config.Kerberos{})
	if err == nil || !strings.Contains(err.Error(), "Windows") {
		t.Errorf("Connect = %v; want an error saying windows needs a Windows build", err)
	}
}
