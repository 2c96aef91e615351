package sqlclient

import (
	"context"
	"database/sql/driver"
	"net"
	"sync"
	"time"
)

// go-mssqldb reads the PRELOGIN and LOGIN7 replies without watching the
// context, so a server that accepts TCP and then says nothing would hold a
// login forever. loginDialer puts the dial context's deadline (the instance
// timeout, or the caller's deadline if sooner) on the new connection, and
// loginConnector lifts it once the login is done: later queries are bounded
// by their own contexts.

type loginDialer struct{ keepAlive time.Duration }

func (d loginDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{KeepAlive: d.keepAlive}
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			conn.Close()
			return nil, err
		}
	}
	if slot, ok := ctx.Value(dialedKey{}).(*dialedConns); ok {
		slot.add(conn)
	}
	return conn, nil
}

// HostName makes loginDialer a go-mssqldb HostDialer, so that the driver
// hands it host:port instead of resolving the name itself with
// net.LookupIP, which no context can cancel. The value is not used.
func (loginDialer) HostName() string { return "" }

type dialedKey struct{}

// dialedConns collects what one login dialled (go-mssqldb may dial every
// address of a host in parallel and keep one).
type dialedConns struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *dialedConns) add(c net.Conn) {
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
}

func (d *dialedConns) clearDeadlines() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		// A connection go-mssqldb discarded is closed; the error is moot.
		_ = c.SetDeadline(time.Time{})
	}
}

type loginConnector struct{ driver.Connector }

func (c loginConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dialed := &dialedConns{}
	conn, err := c.Connector.Connect(context.WithValue(ctx, dialedKey{}, dialed))
	if err == nil {
		dialed.clearDeadlines()
	}
	return conn, err
}
