package sqlclient

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// Each method runs one query of queries.go and returns what the server
// said; errors name the query. A permission failure can be told apart with
// IsPermissionDenied.

// queryRows runs query and turns each row into a T with scan. Every error
// (the query's, a row's, the result set's) is wrapped with doing, which
// says what was being read.
func queryRows[T any](ctx context.Context, db *sql.DB, doing, query string, scan func(*sql.Rows) (T, error), args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", doing, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	return out, nil
}

// ConnectionCounts counts every connection by transport and auth scheme.
func (s *Session) ConnectionCounts(ctx context.Context) ([]facts.ConnectionCount, error) {
	rows, err := queryRows(ctx, s.DB, "counting connections", QueryConnectionCounts, func(r *sql.Rows) (facts.ConnectionCount, error) {
		var transport, scheme sql.NullString
		var n int64
		err := r.Scan(&transport, &scheme, &n)
		return facts.ConnectionCount{NetTransport: transport.String, AuthScheme: scheme.String, Count: int(n)}, err
	})
	if err != nil {
		return nil, err
	}
	var out []facts.ConnectionCount
	for _, c := range rows {
		out = addConnectionCount(out, c)
	}
	return out, nil
}

// NTLMClients lists the top clients that reach the server over TCP with NTLM.
func (s *Session) NTLMClients(ctx context.Context, top int) ([]facts.NTLMClient, error) {
	rows, err := queryRows(ctx, s.DB, "listing NTLM clients", QueryNTLMClients, func(r *sql.Rows) (facts.NTLMClient, error) {
		var host, login, program sql.NullString
		var n int64
		err := r.Scan(&host, &login, &program, &n)
		return facts.NTLMClient{Host: host.String, Login: login.String, Program: program.String, Connections: int(n)}, err
	}, int64(top))
	if err != nil {
		return nil, err
	}
	var out []facts.NTLMClient
	for _, c := range rows {
		out = addNTLMClient(out, c)
	}
	return out, nil
}

// addConnectionCount adds c to counts, summing rows that differ only by
// NULL and "" (one metric series each).
func addConnectionCount(counts []facts.ConnectionCount, c facts.ConnectionCount) []facts.ConnectionCount {
	for i := range counts {
		if counts[i].NetTransport == c.NetTransport && counts[i].AuthScheme == c.AuthScheme {
			counts[i].Count += c.Count
			return counts
		}
	}
	return append(counts, c)
}

// addNTLMClient is addConnectionCount for NTLM clients.
func addNTLMClient(clients []facts.NTLMClient, c facts.NTLMClient) []facts.NTLMClient {
	for i := range clients {
		if clients[i].Host == c.Host && clients[i].Login == c.Login && clients[i].Program == c.Program {
			clients[i].Connections += c.Connections
			return clients
		}
	}
	return append(clients, c)
}

// Identity is what the server calls itself.
type Identity struct {
	MachineName     string
	PhysicalNetBIOS string
	InstanceName    string // "" for a default instance
	DomainName      string
	UTCNow          time.Time
}

// Identity reads the server's names.
func (s *Session) Identity(ctx context.Context) (Identity, error) {
	var machine, physical, instance, domain sql.NullString
	var id Identity
	err := s.DB.QueryRowContext(ctx, QueryServerIdentity).Scan(&machine, &physical, &instance, &domain, &id.UTCNow)
	if err != nil {
		return id, fmt.Errorf("reading server identity: %w", err)
	}
	id.MachineName, id.PhysicalNetBIOS, id.InstanceName, id.DomainName = machine.String, physical.String, instance.String, domain.String
	return id, nil
}

// ListenerPorts returns the distinct TCP ports the engine listens on, sorted
// (a port appears once per listening address).
func (s *Session) ListenerPorts(ctx context.Context) ([]int, error) {
	ports, err := queryRows(ctx, s.DB, "reading listener ports", QueryListenerPorts, func(r *sql.Rows) (int, error) {
		var port int64
		err := r.Scan(&port)
		return int(port), err
	})
	if err != nil {
		return nil, err
	}
	sort.Ints(ports)
	return slices.Compact(ports), nil
}

// ServiceAccounts reads sys.dm_server_services.
func (s *Session) ServiceAccounts(ctx context.Context) ([]facts.ServiceAccount, error) {
	return queryRows(ctx, s.DB, "reading service accounts", QueryServiceAccounts, func(r *sql.Rows) (facts.ServiceAccount, error) {
		var name, account sql.NullString
		err := r.Scan(&name, &account)
		return facts.ServiceAccount{ServiceName: name.String, Account: account.String}, err
	})
}

// ClockSkew is the server's clock minus the exporter's, the exporter's time
// taken halfway through the round trip. The query runs on a connection that
// is already logged in, so the login does not count as round trip.
func (s *Session) ClockSkew(ctx context.Context) (time.Duration, error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("measuring clock skew: %w", err)
	}
	defer conn.Close()
	var server time.Time
	sent := time.Now()
	if err := conn.QueryRowContext(ctx, QueryClock).Scan(&server); err != nil {
		return 0, fmt.Errorf("measuring clock skew: %w", err)
	}
	rtt := time.Since(sent)
	return server.Sub(sent.Add(rtt / 2)), nil
}

// LinkedServers reads sys.servers and sys.linked_logins. Only Name,
// Product, Provider, DataSource, SelfMapped and FixedLogin are filled.
func (s *Session) LinkedServers(ctx context.Context) ([]facts.LinkedServer, error) {
	type server struct {
		id int64
		facts.LinkedServer
	}
	servers, err := queryRows(ctx, s.DB, "reading linked servers", QueryLinkedServers, func(r *sql.Rows) (server, error) {
		var sv server
		var name, product, provider, source sql.NullString
		err := r.Scan(&sv.id, &name, &product, &provider, &source)
		sv.LinkedServer = facts.LinkedServer{Name: name.String, Product: product.String, Provider: provider.String, DataSource: source.String}
		return sv, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]facts.LinkedServer, 0, len(servers))
	byID := map[int64]int{}
	for _, sv := range servers {
		byID[sv.id] = len(out)
		out = append(out, sv.LinkedServer)
	}

	type login struct {
		id           int64
		self, remote bool
	}
	logins, err := queryRows(ctx, s.DB, "reading linked server logins", QueryLinkedLogins, func(r *sql.Rows) (login, error) {
		var l login
		var principal int64
		var remote sql.NullString
		err := r.Scan(&l.id, &l.self, &principal, &remote)
		l.remote = remote.Valid && remote.String != ""
		return l, err
	})
	if err != nil {
		return nil, err
	}
	for _, l := range logins {
		i, ok := byID[l.id]
		if !ok {
			continue // server_id 0 is the local server's own mappings
		}
		if l.self {
			out[i].SelfMapped = true
		} else if l.remote {
			out[i].FixedLogin = true
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// TestLinkedServer runs sys.sp_testlinkedserver as an RPC: the name is a
// parameter, so a hostile name is never SQL text.
func (s *Session) TestLinkedServer(ctx context.Context, name string) error {
	if _, err := s.DB.ExecContext(ctx, ProcTestLinkedServer, sql.Named("servername", name)); err != nil {
		return fmt.Errorf("testing linked server %q: %w", name, err)
	}
	return nil
}

// Hop is the second hop as the linked server saw it.
type Hop struct {
	NetTransport string
	AuthScheme   string
	// ClockSkew is the linked server's clock minus this server's.
	ClockSkew time.Duration
}

// Hop runs HopQuery through the linked server. This server's clock is read
// on the same connection just before and after, and the remote clock is
// compared with the midpoint.
func (s *Session) Hop(ctx context.Context, name string) (Hop, error) {
	var h Hop
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return h, fmt.Errorf("hop through linked server %q: %w", name, err)
	}
	defer conn.Close()
	var before, after, remote time.Time
	if err := conn.QueryRowContext(ctx, QueryClock).Scan(&before); err != nil {
		return h, fmt.Errorf("hop through linked server %q: reading the local clock: %w", name, err)
	}
	var transport, scheme sql.NullString
	if err := conn.QueryRowContext(ctx, HopQuery(name)).Scan(&transport, &scheme, &remote); err != nil {
		return h, fmt.Errorf("hop through linked server %q: %w", name, err)
	}
	if err := conn.QueryRowContext(ctx, QueryClock).Scan(&after); err != nil {
		return h, fmt.Errorf("hop through linked server %q: reading the local clock: %w", name, err)
	}
	h.NetTransport, h.AuthScheme = transport.String, scheme.String
	h.ClockSkew = remote.Sub(before.Add(after.Sub(before) / 2))
	return h, nil
}

// SPNRegistrations reads the SPN messages of the current error log (the
// last start-up) with sys.sp_readerrorlog as an RPC, and keeps the last
// result per SPN.
func (s *Session) SPNRegistrations(ctx context.Context) ([]facts.SPNRegistration, error) {
	lines, err := queryRows(ctx, s.DB, "reading the error log", ProcReadErrorLog, func(r *sql.Rows) (ErrorLogLine, error) {
		var l ErrorLogLine
		var process, text sql.NullString
		err := r.Scan(&l.Time, &process, &text)
		l.Text = text.String
		return l, err
	}, int64(0), int64(1), SearchSPNRegistration)
	if err != nil {
		return nil, err
	}
	return ParseSPNRegistrations(lines), nil
}
