package tdsserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	// The Kerberos authenticator for delegated hops: like SQL Server, it asks
	// for a ticket to the linked server's SPN as configured, with no DNS
	// lookup on the way.
	"github.com/kerberos-exporter/kerberos_exporter/internal/krb5auth"
)

// hop runs query on the linked server ls as the caller's login mapping
// says, by really connecting to the stand-in that plays it, and relays its
// result or its error.
//
// How the hop authenticates, as SQL Server would:
//   - fixed mapping (remote_name): SQL login to the remote server;
//   - self-mapped SQL login: the caller's own name and password;
//   - self-mapped Kerberos caller on a linked server whose delegation works:
//     Kerberos with this server's own keytab for the linked server's SPN
//     (a stand-in cannot do S4U2proxy, so the remote sees the service
//     account, not the caller; the auth scheme, which is what is measured,
//     is real);
//   - otherwise (NTLM caller, broken delegation, no ticket to be had): an
//     anonymous NTLM logon, which the remote refuses with 18456.
func (ss *session) hop(ctx context.Context, ls *LinkedServer, query string) outcome {
	m := ss.mapping(ls)
	if m == nil {
		return fail(7416, 16, "Access to the remote server is denied because no login-mapping exists.")
	}
	ctx, cancel := context.WithTimeout(ctx, ss.srv.opts.HopTimeout)
	defer cancel()

	var how string
	var dsn *url.URL
	kerberos := false
	switch {
	case !m.UsesSelfCredential:
		how, dsn = "fixed SQL login "+m.RemoteName, ss.hopDSN(ls, url.UserPassword(m.RemoteName, m.RemotePassword), nil)
	case ss.scheme == schemeSQL:
		how, dsn = "self-mapped SQL login", ss.hopDSN(ls, url.UserPassword(ss.login, ss.password), nil)
	case ss.scheme == schemeKerberos && ls.Delegation:
		k := ss.srv.sc.Kerberos
		kerberos = true
		how, dsn = "Kerberos as "+k.Principal, ss.hopDSN(ls, url.User(k.Principal), map[string]string{
			"authenticator":          krb5auth.Name,
			krb5auth.ParamConfigFile: k.Krb5Conf,
			krb5auth.ParamKeytabFile: k.Keytab,
			krb5auth.ParamRealm:      k.Realm,
			"ServerSPN":              ls.SPN,
		})
	default:
		how, dsn = "anonymous", ss.anonymousDSN(ls)
	}

	rs, err := ss.runRemote(ctx, dsn, query)
	if err != nil && kerberos && isKerberosClientError(err) {
		// No ticket for the linked server's SPN: like SQL Server, fall back
		// to NTLM, which has nothing to forward, i.e. the anonymous logon.
		ss.srv.logf("session %d: hop to %q: Kerberos failed (%v); falling back to anonymous", ss.spid, ls.Name, err)
		how = "anonymous after Kerberos failed"
		rs, err = ss.runRemote(ctx, ss.anonymousDSN(ls), query)
	}
	if err != nil {
		ss.srv.logf("session %d: hop to %q (%s) failed: %v", ss.spid, ls.Name, how, err)
		if ctx.Err() != nil {
			// The hop's own timeout, an attention or shutdown; the driver's
			// error is then only the closed connection.
			err = ctx.Err()
		}
		return relayError(ls, err)
	}
	ss.srv.logf("session %d: hop to %q (%s) ok", ss.spid, ls.Name, how)
	return rows(rs)
}

// mapping picks the caller's login mapping: one for the caller's own login
// first, else the default one (local_principal_id 0).
func (ss *session) mapping(ls *LinkedServer) *LinkedLogin {
	var def *LinkedLogin
	for i := range ls.Logins {
		m := &ls.Logins[i]
		if m.LocalPrincipalID != 0 && strings.EqualFold(m.LocalLogin, ss.login) {
			return m
		}
		if m.LocalPrincipalID == 0 && def == nil {
			def = m
		}
	}
	return def
}

func (ss *session) hopDSN(ls *LinkedServer, user *url.Userinfo, params map[string]string) *url.URL {
	addr := ls.Connect
	if ss.srv.opts.Resolve != nil {
		addr = ss.srv.opts.Resolve(addr)
	}
	q := url.Values{}
	q.Set("encrypt", "disable")
	q.Set("dial timeout", "5")
	q.Set("app name", progName) // what a linked-server connection shows as program_name
	q.Set("workstation id", ss.srv.sc.MachineName)
	for k, v := range params {
		q.Set(k, v)
	}
	return &url.URL{Scheme: "sqlserver", User: user, Host: addr, RawQuery: q.Encode()}
}

// anonymousDSN logs on with NTLM and an empty user name: the anonymous
// logon a server makes when it has no credentials to forward.
func (ss *session) anonymousDSN(ls *LinkedServer) *url.URL {
	return ss.hopDSN(ls, url.User(`\`), map[string]string{"authenticator": "ntlm"})
}

// runRemote connects with go-mssqldb and runs query, returning its first
// result set as the stand-in's own ResultSet.
func (ss *session) runRemote(ctx context.Context, dsn *url.URL, query string) (*ResultSet, error) {
	connector, err := mssql.NewConnector(dsn.String())
	if err != nil {
		return nil, err
	}
	connector.Dialer = closeOnDone{ctx: ctx}
	db := sql.OpenDB(connector)
	defer db.Close()
	conn, err := db.Conn(ctx) // the login happens here
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r, err := conn.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readResultSet(r)
}

// closeOnDone dials TCP and closes the connection when ctx ends:
// go-mssqldb does not watch the context while it waits for the PRELOGIN
// answer, so without this a hop to a server that accepts but never answers
// would hang (and an attention could not stop it).
type closeOnDone struct {
	ctx context.Context
	net.Dialer
}

func (d closeOnDone) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := d.Dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(d.ctx, func() { conn.Close() })
	return conn, nil
}

func readResultSet(r *sql.Rows) (*ResultSet, error) {
	types, err := r.ColumnTypes()
	if err != nil {
		return nil, err
	}
	rs := &ResultSet{}
	for _, ct := range types {
		c := Column{Name: ct.Name()}
		switch ct.DatabaseTypeName() {
		case "NVARCHAR", "NCHAR", "VARCHAR", "CHAR":
			c.Type = NVarChar
			if n, ok := ct.Length(); ok {
				c.Size = int(n)
			}
		case "INT", "SMALLINT", "TINYINT":
			c.Type = Int
		case "BIGINT":
			c.Type = BigInt
		case "BIT":
			c.Type = Bit
		case "DATETIME2":
			c.Type = DateTime2
		case "DATETIME":
			c.Type = DateTime
		default:
			return nil, fmt.Errorf("linked server returned a %s column, which the stand-in cannot relay", ct.DatabaseTypeName())
		}
		rs.Columns = append(rs.Columns, c)
	}
	for r.Next() {
		vals := make([]any, len(rs.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			if t, ok := v.(time.Time); ok {
				vals[i] = t.UTC()
			}
		}
		rs.Rows = append(rs.Rows, vals)
	}
	return rs, r.Err()
}

// isKerberosClientError tells a failure to get or use a Kerberos ticket on
// this side (no SPN in the directory, KDC unreachable) from an answer of
// the remote server or the network.
func isKerberosClientError(err error) bool {
	var me mssql.Error
	var ne net.Error
	return !errors.As(err, &me) && !errors.As(err, &ne) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// relayError turns what the hop ran into into the error SQL Server would
// give its own client: the remote's error as is, or a provider error.
func relayError(ls *LinkedServer, err error) outcome {
	var me mssql.Error
	if errors.As(err, &me) {
		// The driver prefixes login errors with "login error: "; the
		// original is the last entry of All.
		orig := me
		if n := len(me.All); n > 0 {
			orig = me.All[n-1]
		}
		return outcome{status: 1, err: &SQLError{
			Number: orig.Number, State: orig.State, Class: orig.Class,
			Message: orig.Message, Server: orig.ServerName, Proc: orig.ProcName, Line: orig.LineNo,
		}}
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fail(258, 16, "TCP Provider: Timeout error [258]. (linked server %q)", ls.Name)
	case errors.As(err, &ne):
		return fail(53, 16, "TCP Provider: Could not open a connection to SQL Server [53]. (linked server %q: %v)", ls.Name, err)
	}
	return fail(7303, 16, "Cannot initialize the data source object of OLE DB provider \"%s\" for linked server \"%s\". (%v)", ls.Provider, ls.Name, err)
}
