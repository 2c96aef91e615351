package tdsserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// What the stand-in says it is: SQL Server 2022 RTM-CU, TDS 7.4.
var (
	serverVersion = [4]byte{16, 0, 0x10, 0x27} // 16.0.4135
	tdsVersion74  = uint32(0x74000004)
)

const progName = "Microsoft SQL Server"

// session is one client connection.
type session struct {
	srv        *Server
	conn       net.Conn
	packetSize int

	// Set once at login, read-only afterwards.
	spid      uint16
	login     string // e.g. CORP\krbmon or krbmon_sql
	password  string // SQL logins only: forwarded by self-mapped hops
	scheme    string // KERBEROS | NTLM | SQL
	host      string
	program   string
	localPort int
}

func newSession(s *Server, conn net.Conn) *session {
	ss := &session{srv: s, conn: conn, packetSize: defaultPacketSize}
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		ss.localPort = a.Port
	}
	return ss
}

// loginTimeout bounds PRELOGIN+LOGIN7 so a silent client cannot hold a
// goroutine forever; SQL Server's own default is similar.
const loginTimeout = 60 * time.Second

func (ss *session) serve() {
	_ = ss.conn.SetDeadline(time.Now().Add(loginTimeout)) // a failure shows as the read's error
	if err := ss.handshake(); err != nil {
		var le *loginError
		if !errors.As(err, &le) && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			ss.srv.logf("%s: login: %v", ss.conn.RemoteAddr(), err)
		}
		return
	}
	_ = ss.conn.SetDeadline(time.Time{})
	ss.srv.register(ss)
	defer ss.srv.unregister(ss)
	ss.srv.logf("session %d: %s logged in with %s from %s (host %q, program %q)",
		ss.spid, ss.login, ss.scheme, ss.conn.RemoteAddr(), ss.host, ss.program)
	ss.requests()
}

func (ss *session) send(typ byte, tokens []byte) error {
	return writeMessage(ss.conn, typ, ss.spid, ss.packetSize, tokens)
}

func (ss *session) reply(t *tokenWriter) error { return ss.send(pktReply, t.b) }

// loginError is a failed login: the client gets the SQL error, the server
// log gets the reason (SQL Server does not tell the client why either).
type loginError struct {
	sqlErr *SQLError
	reason string
}

func (e *loginError) Error() string { return e.sqlErr.Message + " (" + e.reason + ")" }

func loginFailed(user, reason string) *loginError {
	return &loginError{
		sqlErr: &SQLError{Number: 18456, State: 1, Class: 14, Message: fmt.Sprintf("Login failed for user '%s'.", user)},
		reason: reason,
	}
}

func (ss *session) handshake() error {
	m, err := readMessageOf(ss.conn, pktPrelogin)
	if err != nil {
		return err
	}
	opts, err := parsePrelogin(m.data)
	if err != nil {
		return err
	}
	if enc := opts[preEncryption]; len(enc) == 1 && (enc[0] == encryptOn || enc[0] == encryptReq) {
		ss.srv.logf("%s: client requires encryption; answering ENCRYPT_NOT_SUP (use encrypt=disable)", ss.conn.RemoteAddr())
	}
	if err := ss.send(pktReply, preloginReply(serverVersion)); err != nil {
		return err
	}

	if m, err = readMessageOf(ss.conn, pktLogin7); err != nil {
		return err
	}
	l, err := parseLogin7(m.data)
	if err != nil {
		return err
	}
	ss.host, ss.program = l.HostName, l.AppName
	if l.PacketSize >= 512 && l.PacketSize <= maxPacketLen {
		ss.packetSize = int(l.PacketSize)
	}

	if err = ss.authenticate(l); err == nil {
		err = ss.checkDatabase(l.Database)
	}
	var le *loginError
	if errors.As(err, &le) {
		ss.srv.logf("%s: login refused: %v", ss.conn.RemoteAddr(), le)
		var t tokenWriter
		le.sqlErr.Server = ss.srv.sc.MachineName
		t.errorToken(le.sqlErr)
		t.done(tokDone, doneError, curCmdNone, 0)
		_ = ss.reply(&t) // the login failed anyway; le says why
		return le
	}
	if err != nil {
		return err
	}
	return ss.reply(ss.loginResponse(l.Database))
}

func (ss *session) authenticate(l *login7) error {
	if !l.Integrated {
		for _, sl := range ss.srv.sc.SQLLogins {
			if strings.EqualFold(sl.Name, l.UserName) && sl.Password == l.Password {
				ss.login, ss.password, ss.scheme = sl.Name, sl.Password, schemeSQL
				return nil
			}
		}
		return loginFailed(l.UserName, "unknown SQL login or wrong password")
	}
	switch {
	case ntlmType(l.SSPI) == 1:
		return ss.authenticateNTLM(l)
	case len(l.SSPI) > 0:
		k := ss.srv.sc.Kerberos
		login, err := acceptKerberos(l.SSPI, k, &ss.srv.kts, &ss.srv.replays, ss.srv.sc.Domain)
		if err != nil {
			return loginFailed("", "Kerberos: "+err.Error())
		}
		ss.login, ss.scheme = login, schemeKerberos
		// The SPNEGO accept token travels in its own message; the driver
		// reads it, then reads the login response.
		var t tokenWriter
		t.sspi(spnegoAccepted)
		return ss.reply(&t)
	}
	return loginFailed("", "integrated security without an SSPI token")
}

func (ss *session) authenticateNTLM(l *login7) error {
	sc := ss.srv.sc
	dnsDomain := ""
	if sc.Kerberos != nil {
		dnsDomain = sc.Kerberos.Realm
	}
	challenge, err := ntlmChallenge(l.SSPI, sc.Domain, sc.MachineName, dnsDomain)
	if err != nil {
		return loginFailed("", "NTLM: "+err.Error())
	}
	var t tokenWriter
	t.sspi(challenge)
	if err := ss.reply(&t); err != nil {
		return err
	}
	m, err := readMessageOf(ss.conn, pktSSPI)
	if err != nil {
		return err
	}
	login, workstation, err := ntlmIdentity(m.data)
	if err != nil {
		return loginFailed("", "NTLM: "+err.Error())
	}
	if login == anonymousLogon {
		// What a SQL Server sees when delegation is broken: the front-end
		// server has no credentials to forward.
		return loginFailed(anonymousLogon, "anonymous NTLM logon")
	}
	if ss.host == "" {
		ss.host = workstation
	}
	ss.login, ss.scheme = login, schemeNTLM
	return nil
}

// The system databases; any other name fails like a missing database.
var systemDatabases = []string{"master", "tempdb", "model", "msdb"}

func (ss *session) checkDatabase(db string) error {
	if db == "" {
		return nil
	}
	for _, d := range systemDatabases {
		if strings.EqualFold(d, db) {
			return nil
		}
	}
	return &loginError{
		sqlErr: &SQLError{Number: 4060, State: 1, Class: 11, Message: fmt.Sprintf("Cannot open database \"%s\" requested by the login. The login failed.", db)},
		reason: "unknown database",
	}
}

// loginResponse is what SQL Server sends after a successful login:
// database and language context, collation, packet size, LOGINACK.
func (ss *session) loginResponse(db string) *tokenWriter {
	if db == "" {
		db = "master"
	}
	db = strings.ToLower(db)
	srv := ss.srv.sc.MachineName
	var t tokenWriter
	t.envChange(envDatabase, db, "")
	t.info(&SQLError{Number: 5701, State: 2, Message: fmt.Sprintf("Changed database context to '%s'.", db), Server: srv})
	t.envChange(envLanguage, "us_english", "")
	t.info(&SQLError{Number: 5703, State: 1, Message: "Changed language setting to us_english.", Server: srv})
	t.envChangeCollation()
	t.envChange(envPacket, fmt.Sprint(ss.packetSize), fmt.Sprint(ss.packetSize))
	t.loginAck(tdsVersion74, progName, serverVersion)
	t.done(tokDone, doneFinal, curCmdNone, 0)
	return &t
}

// pending is a request read from the wire with the context that an
// attention from the client cancels.
type pending struct {
	msg    message
	ctx    context.Context
	cancel context.CancelFunc
}

// requests serves SQL batches and RPCs until the connection ends. A
// reader goroutine keeps reading while a request runs, so an attention
// (the driver's cancel on timeout) can abort a slow request, e.g. a hop to
// a server that does not answer.
func (ss *session) requests() {
	queue := make(chan pending)
	stop := make(chan struct{})
	defer close(stop)
	go ss.readRequests(queue, stop)
	for p := range queue {
		var err error
		switch p.msg.typ {
		case pktAttention:
			// Acknowledge with DONE_ATTN. A request the attention
			// cancelled has sent nothing, so this is its only reply.
			var t tokenWriter
			t.done(tokDone, doneAttn, curCmdNone, 0)
			err = ss.reply(&t)
		case pktSQLBatch, pktRPC:
			t := ss.execute(p.ctx, p.msg)
			if p.ctx.Err() == nil {
				err = ss.reply(t)
			}
		default:
			err = protoErrorf("unexpected packet type %#x after login", p.msg.typ)
		}
		p.cancel()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				ss.srv.logf("session %d: %v", ss.spid, err)
			}
			ss.conn.Close()
			// Drain so the reader can finish.
			for p := range queue {
				p.cancel()
			}
			return
		}
	}
}

func (ss *session) readRequests(queue chan<- pending, stop <-chan struct{}) {
	defer close(queue)
	// current cancels the latest request; only this goroutine touches it.
	current := context.CancelFunc(func() {})
	defer func() { current() }() // the client is gone: stop its request
	for {
		m, err := readMessage(ss.conn)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				ss.srv.logf("session %d: read: %v", ss.spid, err)
			}
			return
		}
		ctx, cancel := context.WithCancel(ss.srv.ctx)
		if m.typ == pktAttention {
			current()
		} else {
			current = cancel
		}
		select {
		case queue <- pending{m, ctx, cancel}:
		case <-stop:
			cancel()
			return
		}
	}
}
