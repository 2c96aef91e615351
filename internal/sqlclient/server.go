package sqlclient

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// Each method runs one query of queries.go and returns what the server
// said; errors name the query. A permission failure can be told apart with
// IsPermissionDenied.

// ConnectionCounts counts every connection by transport and auth scheme.
func (s *Session) ConnectionCounts(ctx context.Context) ([]facts.ConnectionCount, error) {
	rows, err := s.DB.QueryContext(ctx, QueryConnectionCounts)
	if err != nil {
		return nil, fmt.Errorf("counting connections: %w", err)
	}
	defer rows.Close()
	var out []facts.ConnectionCount
	for rows.Next() {
		var transport, scheme sql.NullString
		var n int64
		if err := rows.Scan(&transport, &scheme, &n); err != nil {
			return nil, fmt.Errorf("counting connections: %w", err)
		}
		out = addConnectionCount(out, facts.ConnectionCount{NetTransport: transport.String, AuthScheme: scheme.String, Count: int(n)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting connections: %w", err)
	}
	return out, nil
}

// NTLMClients lists the top clients that reach the server over TCP with NTLM.
func (s *Session) NTLMClients(ctx context.Context, top int) ([]facts.NTLMClient, error) {
	rows, err := s.DB.QueryContext(ctx, QueryNTLMClients, int64(top))
	if err != nil {
		return nil, fmt.Errorf("listing NTLM clients: %w", err)
	}
	defer rows.Close()
	var out []facts.NTLMClient
	for rows.Next() {
		var host, login, program sql.NullString
		var n int64
		if err := rows.Scan(&host, &login, &program, &n); err != nil {
			return nil, fmt.Errorf("listing NTLM clients: %w", err)
		}
		out = addNTLMClient(out, facts.NTLMClient{Host: host.String, Login: login.String, Program: program.String, Connections: int(n)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing NTLM clients: %w", err)
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
	rows, err := s.DB.QueryContext(ctx, QueryListenerPorts)
	if err != nil {
		return nil, fmt.Errorf("reading listener ports: %w", err)
	}
	defer rows.Close()
	seen := map[int]bool{}
	var out []int
	for rows.Next() {
		var port int64
		if err := rows.Scan(&port); err != nil {
			return nil, fmt.Errorf("reading listener ports: %w", err)
		}
		if !seen[int(port)] {
			seen[int(port)] = true
			out = append(out, int(port))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading listener ports: %w", err)
	}
	sort.Ints(out)
	return out, nil
}

// ServiceAccounts reads sys.dm_server_services.
func (s *Session) ServiceAccounts(ctx context.Context) ([]facts.ServiceAccount, error) {
	rows, err := s.DB.QueryContext(ctx, QueryServiceAccounts)
	if err != nil {
		return nil, fmt.Errorf("reading service accounts: %w", err)
	}
	defer rows.Close()
	var out []facts.ServiceAccount
	for rows.Next() {
		var name, account sql.NullString
		if err := rows.Scan(&name, &account); err != nil {
			return nil, fmt.Errorf("reading service accounts: %w", err)
		}
		out = append(out, facts.ServiceAccount{ServiceName: name.String, Account: account.String})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading service accounts: %w", err)
	}
	return out, nil
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
	rows, err := s.DB.QueryContext(ctx, QueryLinkedServers)
	if err != nil {
		return nil, fmt.Errorf("reading linked servers: %w", err)
	}
	defer rows.Close()
	var out []facts.LinkedServer
	byID := map[int64]int{}
	for rows.Next() {
		var id int64
		var name, product, provider, source sql.NullString
		if err := rows.Scan(&id, &name, &product, &provider, &source); err != nil {
			return nil, fmt.Errorf("reading linked servers: %w", err)
		}
		byID[id] = len(out)
		out = append(out, facts.LinkedServer{Name: name.String, Product: product.String, Provider: provider.String, DataSource: source.String})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading linked servers: %w", err)
	}
	rows.Close()

	logins, err := s.DB.QueryContext(ctx, QueryLinkedLogins)
	if err != nil {
		return nil, fmt.Errorf("reading linked server logins: %w", err)
	}
	defer logins.Close()
	for logins.Next() {
		var id, principal int64
		var self bool
		var remote sql.NullString
		if err := logins.Scan(&id, &self, &principal, &remote); err != nil {
			return nil, fmt.Errorf("reading linked server logins: %w", err)
		}
		i, ok := byID[id]
		if !ok {
			continue // server_id 0 is the local server's own mappings
		}
		if self {
			out[i].SelfMapped = true
		} else if remote.Valid && remote.String != "" {
			out[i].FixedLogin = true
		}
	}
	if err := logins.Err(); err != nil {
		return nil, fmt.Errorf("reading linked server logins: %w", err)
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
	rows, err := s.DB.QueryContext(ctx, ProcReadErrorLog, int64(0), int64(1), SearchSPNRegistration)
	if err != nil {
		return nil, fmt.Errorf("reading the error log: %w", err)
	}
	defer rows.Close()
	var lines []ErrorLogLine
	for rows.Next() {
		var l ErrorLogLine
		var process, text sql.NullString
		if err := rows.Scan(&l.Time, &process, &text); err != nil {
			return nil, fmt.Errorf("reading the error log: %w", err)
		}
		l.Text = text.String
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the error log: %w", err)
	}
	return ParseSPNRegistrations(lines), nil
}
