package sqlclient

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krb5auth"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krberr"
)

// Login methods (config auth.method).
const (
	MethodSQL      = "sql"
	MethodNTLM     = "ntlm"
	MethodKerberos = "kerberos"
	MethodWindows  = "windows"
)

// maxOpenConns bounds the logins one session makes in a cycle: the SQL
// collectors share the session concurrently.
const maxOpenConns = 4

// Session is one cycle's connection pool to one instance. It is opened
// fresh every cycle: auth_scheme is decided at login, so a long-lived pool
// would keep reporting Kerberos after an SPN is removed.
type Session struct {
	DB       *sql.DB
	Instance *config.SQLInstance
	// ServerSPN is the SPN a Kerberos login asked a ticket for.
	ServerSPN string
	// UsedNTLMFallback is set when no Kerberos ticket could be had and the
	// login used NTLM, as a Windows client's Negotiate would.
	UsedNTLMFallback bool
	// KerberosError is why no ticket could be had, and KerberosErrorCode the
	// KDC's KRB-ERROR code in it (0 when there is none, e.g. KDC unreachable).
	KerberosError     string
	KerberosErrorCode int32
	// Own is the login's own connection as the server saw it; Connect reads
	// it to verify the session.
	Own OwnConnection
}

// OwnConnection is the exporter's own connection in sys.dm_exec_connections.
type OwnConnection struct {
	NetTransport string
	AuthScheme   string
	LocalTCPPort int
}

// Connect opens a session to inst and verifies it with QueryOwnConnection.
// Dial and login are bounded by ctx and the instance timeout; the returned
// error is a *ConnectError that classifies the failure.
func Connect(ctx context.Context, inst *config.SQLInstance, krb *config.Kerberos) (*Session, error) {
	if t := inst.Timeout.Duration(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	type result struct {
		s   *Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := connect(ctx, inst, krb)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
		// gokrb5 talks to the KDC without a context; don't wait for it.
		go func() {
			if r := <-done; r.s != nil {
				r.s.Close()
			}
		}()
		return nil, &ConnectError{Instance: inst.Name, Method: inst.Auth.Method, Cause: CauseTimeout, Err: ctx.Err()}
	}
}

// Close releases the session's connections.
func (s *Session) Close() error {
	if s == nil || s.DB == nil {
		return nil
	}
	return s.DB.Close()
}

func connect(ctx context.Context, inst *config.SQLInstance, krb *config.Kerberos) (*Session, error) {
	method := inst.Auth.Method
	fail := func(addr string, err error) *ConnectError {
		cause, number := Classify(err)
		return &ConnectError{Instance: inst.Name, Addr: addr, Method: method, Cause: cause, Number: number, Err: err}
	}
	t, err := resolveTarget(ctx, inst)
	if err != nil {
		return nil, fail("", err)
	}
	cfg, err := baseConfig(inst, t)
	if err != nil {
		return nil, fail(t.addr(), err)
	}
	s := &Session{Instance: inst, ServerSPN: t.spn}
	switch method {
	case MethodSQL:
		cfg.User, cfg.Password = inst.Auth.Username, inst.Auth.Password.Value()
	case MethodNTLM:
		setNTLM(&cfg, ntlmUser(inst.Auth.Username, ""), inst.Auth.Password.Value())
	case MethodKerberos:
		err = setKerberos(&cfg, &inst.Auth, krb)
	case MethodWindows:
		err = setWindows(&cfg, &inst.Auth)
	default:
		err = fmt.Errorf("unknown auth method %q", method)
	}
	if err != nil {
		return nil, fail(t.addr(), err)
	}
	if err := s.open(ctx, cfg); err != nil {
		if method != MethodKerberos || !inst.Auth.NTLMFallback || !IsTicketError(err) {
			return nil, fail(t.addr(), err)
		}
		// Windows' Negotiate would now use NTLM: do the same, so that the
		// measurement shows what a Windows client gets.
		s.UsedNTLMFallback = true
		s.KerberosError = err.Error()
		s.KerberosErrorCode, _ = krberr.Code(err)
		cfg, _ = baseConfig(inst, t) // succeeded above with the same input
		user := ntlmUser(kerberosUser(&inst.Auth, krb), firstNonEmpty(inst.Auth.Realm, krb.Realm))
		setNTLM(&cfg, user, inst.Auth.Password.Value())
		if err := s.open(ctx, cfg); err != nil {
			ce := fail(t.addr(), err)
			ce.Method = MethodNTLM + " (fallback from kerberos)"
			ce.KerberosError, ce.KerberosErrorCode = s.KerberosError, s.KerberosErrorCode
			return nil, ce
		}
	}
	return s, nil
}

// open makes the pool and verifies one login with QueryOwnConnection.
func (s *Session) open(ctx context.Context, cfg msdsn.Config) error {
	connector := mssql.NewConnectorConfig(cfg)
	connector.Dialer = loginDialer{keepAlive: cfg.KeepAlive}
	db := sql.OpenDB(loginConnector{connector})
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	var transport, scheme sql.NullString
	var port sql.NullInt64
	if err := db.QueryRowContext(ctx, QueryOwnConnection).Scan(&transport, &scheme, &port); err != nil {
		db.Close()
		return err
	}
	s.DB = db
	s.Own = OwnConnection{NetTransport: transport.String, AuthScheme: scheme.String, LocalTCPPort: int(port.Int64)}
	return nil
}

// target is where to dial and which SPN the server really registers.
type target struct {
	host string
	port int
	spn  string
}

func (t target) addr() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

// resolveTarget always yields a TCP port: given "host\INSTANCE" without one,
// go-mssqldb would ask the SQL Browser itself but then ask for a ticket for
// MSSQLSvc/host:INSTANCE, which a TCP listener does not register.
func resolveTarget(ctx context.Context, inst *config.SQLInstance) (target, error) {
	t := target{host: firstNonEmpty(inst.Address, inst.Host), port: inst.Port}
	if t.port == 0 {
		if inst.InstanceName == "" {
			t.port = 1433
		} else {
			port, err := BrowserPort(ctx, t.host, inst.InstanceName)
			if err != nil {
				return t, err
			}
			t.port = port
		}
	}
	t.spn = inst.Auth.ServerSPN
	if t.spn == "" {
		t.spn = fmt.Sprintf("MSSQLSvc/%s:%d", strings.ToLower(inst.Host), t.port)
	}
	return t, nil
}

// baseConfig is everything but the credentials. The connection string holds
// no secret: user names and passwords are set on the parsed config.
func baseConfig(inst *config.SQLInstance, t target) (msdsn.Config, error) {
	q := url.Values{}
	q.Set(msdsn.Protocol, "tcp") // named pipes and shared memory never show Kerberos
	q.Set(msdsn.Encrypt, inst.Encrypt)
	q.Set(msdsn.TrustServerCertificate, strconv.FormatBool(inst.TrustServerCertificate))
	if inst.Encrypt != "disable" && inst.Host != "" {
		// The certificate names the server, not the address dialled.
		q.Set(msdsn.HostNameInCertificate, inst.Host)
	}
	q.Set(msdsn.ServerSpn, t.spn)
	q.Set(msdsn.AppName, facts.ExporterProgram)
	u := url.URL{Scheme: "sqlserver", Host: t.addr(), RawQuery: q.Encode()}
	cfg, err := msdsn.Parse(u.String())
	if err != nil {
		return cfg, fmt.Errorf("building the connection settings: %w", err)
	}
	if d := inst.Timeout.Duration(); d > 0 {
		// Also bounds the login: loginDialer sets the dial deadline on the connection.
		cfg.DialTimeout = d
	}
	return cfg, nil
}

func setNTLM(cfg *msdsn.Config, user, password string) {
	cfg.Parameters["authenticator"] = "ntlm"
	cfg.User, cfg.Password = user, password
}

// ntlmUser gives go-mssqldb's NTLM authenticator the DOMAIN\user it needs;
// user@domain becomes domain\user, and a bare user gets defaultDomain.
func ntlmUser(user, defaultDomain string) string {
	if strings.Contains(user, `\`) {
		return user
	}
	if name, domain, ok := strings.Cut(user, "@"); ok {
		return domain + `\` + name
	}
	return defaultDomain + `\` + user
}

// setKerberos configures the Kerberos login (krb5auth: a ticket for exactly
// t.spn, no DNS rewrite of it) from the auth section, falling back to the
// exporter's own Kerberos identity.
func setKerberos(cfg *msdsn.Config, a *config.SQLAuth, krb *config.Kerberos) error {
	user, realm := splitPrincipal(kerberosUser(a, krb))
	if user == "" {
		return errors.New("kerberos login needs auth.username or kerberos.principal")
	}
	cfg.Parameters["authenticator"] = krb5auth.Name
	cfg.User = user
	if r := firstNonEmpty(a.Realm, realm, krb.Realm); r != "" {
		cfg.Parameters[krb5auth.ParamRealm] = r
	}
	if c := firstNonEmpty(a.Krb5Config, krb.Krb5Config); c != "" {
		cfg.Parameters[krb5auth.ParamConfigFile] = c
	}
	switch {
	case a.KeytabFile != "":
		cfg.Parameters[krb5auth.ParamKeytabFile] = a.KeytabFile
	case a.CCacheFile != "":
		cfg.Parameters[krb5auth.ParamCCacheFile] = a.CCacheFile
	case a.Password != nil:
		cfg.Password = a.Password.Value()
	case krb.KeytabFile != "":
		cfg.Parameters[krb5auth.ParamKeytabFile] = krb.KeytabFile
	case krb.CCacheFile != "":
		cfg.Parameters[krb5auth.ParamCCacheFile] = krb.CCacheFile
	case krb.Password != nil:
		cfg.Password = krb.Password.Value()
	default:
		return errors.New("kerberos login needs a keytab_file, ccache_file or password")
	}
	return nil
}

func kerberosUser(a *config.SQLAuth, krb *config.Kerberos) string {
	return firstNonEmpty(a.Username, krb.Principal)
}

// splitPrincipal turns user@REALM or DOMAIN\user into the user name gokrb5
// wants and the realm, if one is written.
func splitPrincipal(p string) (user, realm string) {
	if _, name, ok := strings.Cut(p, `\`); ok {
		return name, ""
	}
	if name, r, ok := strings.Cut(p, "@"); ok {
		return name, r
	}
	return p, ""
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
