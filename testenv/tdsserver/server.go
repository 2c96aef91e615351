// Package tdsserver is a SQL Server stand-in that speaks enough TDS for the
// real go-mssqldb driver: PRELOGIN, LOGIN7 with SQL, Kerberos (SPNEGO,
// verified with a keytab) and NTLM logins, SQL batches and RPCs. It answers
// exactly the queries in internal/sqlclient/queries.go from a scenario, and
// performs linked-server second hops by really connecting to another
// stand-in. See testenv/README.md.
package tdsserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"sync"
	"time"
)

// Options tune a Server beyond its scenario.
type Options struct {
	// Listen overrides Scenario.Listen, e.g. "127.0.0.11:0" for a free port.
	Listen string
	// Resolve maps a linked server's connect address to the one to dial. A
	// Group sets it so hops follow servers that listen on other ports.
	Resolve func(addr string) string
	// Logf receives one line per notable event (logins, refusals, hops).
	// Defaults to log.Printf.
	Logf func(format string, args ...any)
	// HopTimeout bounds one second hop, login included. Default 15s.
	HopTimeout time.Duration
}

// Server plays one scenario on one TCP listener.
type Server struct {
	sc      *Scenario
	opts    Options
	ln      net.Listener
	kts     keytabCache
	replays replayCache

	ctx    context.Context // cancelled by Close; parent of every request
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	sessions map[uint16]*session // logged-in sessions by session id
	history  []SessionInfo       // every login, newest last, at most maxHistory
	nextSPID uint16
	closed   bool
}

// Start listens and serves sc in the background until Close.
func Start(sc *Scenario, opts Options) (*Server, error) {
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	if opts.HopTimeout == 0 {
		opts.HopTimeout = 15 * time.Second
	}
	addr := sc.Listen
	if opts.Listen != "" {
		addr = opts.Listen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sc.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		sc: sc, opts: opts, ln: ln, ctx: ctx, cancel: cancel,
		conns:    map[net.Conn]struct{}{},
		sessions: map[uint16]*session{},
		nextSPID: firstUserSPID,
	}
	s.wg.Add(1)
	go s.acceptLoop()
	s.logf("serving scenario (%s) on %s", sc.Behaviour, ln.Addr())
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Scenario is the scenario being served.
func (s *Server) Scenario() *Scenario { return s.sc }

// Close stops listening, drops every connection and waits for their
// goroutines. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) logf(format string, args ...any) {
	s.opts.Logf("[%s] "+format, append([]any{s.sc.Name}, args...)...)
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.logf("accept: %v", err)
			}
			return
		}
		if !s.track(conn) {
			conn.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(conn)
			if s.sc.Behaviour == "stall" {
				// Accept, then never answer: read and discard until the
				// client gives up or the server closes.
				_, _ = io.Copy(io.Discard, conn)
				return
			}
			newSession(s, conn).serve()
		}()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// User sessions start at 51 on SQL Server; lower ids are system sessions.
const firstUserSPID = 51

// register gives a logged-in session an id not used by a live or a
// scenario session, and makes it visible to the DMV queries.
func (s *Server) register(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	taken := map[int]bool{}
	for _, e := range s.sc.Sessions {
		taken[e.SessionID] = true
	}
	for {
		id := s.nextSPID
		s.nextSPID++
		if s.nextSPID > 32767 {
			s.nextSPID = firstUserSPID
		}
		if _, live := s.sessions[id]; !live && !taken[int(id)] {
			ss.spid = id
			s.sessions[id] = ss
			s.history = append(s.history, ss.info())
			if len(s.history) > maxHistory {
				s.history = s.history[len(s.history)-maxHistory:]
			}
			return
		}
	}
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.spid] == ss {
		delete(s.sessions, ss.spid)
	}
}

// sessionRow is a session as sys.dm_exec_connections/dm_exec_sessions show it.
type sessionRow struct {
	id                                      int
	host, login, program, scheme, transport string
}

// allSessions returns the live sessions and the scenario's extra ones.
func (s *Server) allSessions() []sessionRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := make([]sessionRow, 0, len(s.sessions)+len(s.sc.Sessions))
	for _, ss := range s.sessions {
		rows = append(rows, sessionRow{int(ss.spid), ss.host, ss.login, ss.program, ss.scheme, "TCP"})
	}
	for _, e := range s.sc.Sessions {
		rows = append(rows, sessionRow{e.SessionID, e.HostName, e.LoginName, e.ProgramName, e.AuthScheme, e.NetTransport})
	}
	return rows
}

// SessionInfo describes a live session, for tests and diagnostics.
type SessionInfo struct {
	ID         int
	Login      string // e.g. CORP\krbmon, CORP\sqlsvc_a (a delegated hop), krbmon_sql
	AuthScheme string // KERBEROS | NTLM | SQL
	HostName   string
	Program    string
}

const maxHistory = 1000

// LoginHistory returns the last logins since the server started, oldest
// first, including sessions that have ended (e.g. a linked-server hop).
func (s *Server) LoginHistory() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SessionInfo(nil), s.history...)
}

// Sessions returns the logged-in sessions (not the scenario's extra ones),
// ordered by session id.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (ss *session) info() SessionInfo {
	return SessionInfo{int(ss.spid), ss.login, ss.scheme, ss.host, ss.program}
}

// now is SYSUTCDATETIME() on this server: real UTC plus the scenario's offset.
func (s *Server) now() time.Time { return time.Now().UTC().Add(s.sc.ClockOffset.Duration) }

// Group runs several scenarios that reach each other through linked servers.
type Group struct {
	servers  []*Server
	browsers []*Browser // one SQL Browser per IP with named instances
	mu       sync.Mutex
	addrs    map[string]string // scenario listen address -> actual address
}

// GroupOptions tune StartGroup.
type GroupOptions struct {
	// EphemeralPorts makes each server listen on its scenario's IP with a
	// free port, so tests never collide with a running sqlstandin or with
	// each other; linked-server hops are redirected to match.
	EphemeralPorts bool
	Logf           func(format string, args ...any)
	HopTimeout     time.Duration
}

// StartGroup starts one server per scenario. On error, the servers already
// started are closed.
func StartGroup(scenarios []*Scenario, opts GroupOptions) (*Group, error) {
	g := &Group{addrs: map[string]string{}}
	for _, sc := range scenarios {
		o := Options{Resolve: g.resolve, Logf: opts.Logf, HopTimeout: opts.HopTimeout}
		if opts.EphemeralPorts {
			host, _, err := net.SplitHostPort(sc.Listen)
			if err != nil {
				g.Close()
				return nil, err
			}
			o.Listen = net.JoinHostPort(host, "0")
		}
		srv, err := Start(sc, o)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.mu.Lock()
		g.servers = append(g.servers, srv)
		g.addrs[sc.Listen] = srv.Addr()
		g.mu.Unlock()
	}
	// Named instances are found by their SQL Browser, on UDP 1434 of their
	// IP, as clients (and the exporter's discovery) find SQL Server's.
	for _, addr := range browserAddrs(g.servers) {
		host, _, _ := net.SplitHostPort(addr)
		logf := opts.Logf
		if logf == nil {
			logf = log.Printf
		}
		b, err := StartBrowser(addr, func() []*Server { return g.namedOn(host) }, logf)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.browsers = append(g.browsers, b)
	}
	return g, nil
}

// namedOn is the group's named instances listening on host.
func (g *Group) namedOn(host string) []*Server {
	var out []*Server
	for _, s := range g.servers {
		if h, _, err := net.SplitHostPort(s.Addr()); err == nil && h == host && s.sc.InstanceName != "" {
			out = append(out, s)
		}
	}
	return out
}

func (g *Group) resolve(addr string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a, ok := g.addrs[addr]; ok {
		return a
	}
	return addr
}

// Server returns the server playing the scenario called name, or nil.
func (g *Group) Server(name string) *Server {
	for _, s := range g.servers {
		if s.sc.Name == name {
			return s
		}
	}
	return nil
}

// Servers returns the servers in start order.
func (g *Group) Servers() []*Server { return append([]*Server(nil), g.servers...) }

// Close closes every server.
func (g *Group) Close() error {
	var errs []error
	for _, b := range g.browsers {
		errs = append(errs, b.Close())
	}
	for _, s := range g.servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
