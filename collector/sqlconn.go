package collector

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
)

// SQLConnections opens at most one session per instance per cycle, shared by
// the SQL collectors, and closes them all at the end of the cycle. A fresh
// session each cycle matters: auth_scheme is decided at login, so a pooled
// connection would keep reporting Kerberos after an SPN is removed.
type SQLConnections struct {
	cfg    *config.Config
	logger *slog.Logger

	mu       sync.Mutex
	sessions map[string]*sqlSession
}

type sqlSession struct {
	once sync.Once
	s    *sqlclient.Session
	err  error
}

// NewSQLConnections makes an empty set for one cycle.
func NewSQLConnections(cfg *config.Config, logger *slog.Logger) *SQLConnections {
	return &SQLConnections{cfg: cfg, logger: logger, sessions: map[string]*sqlSession{}}
}

// Session returns the cycle's session to the named instance, connecting on
// first use. Concurrent callers share one connection attempt.
func (p *SQLConnections) Session(ctx context.Context, name string) (*sqlclient.Session, error) {
	var inst *config.SQLInstance
	for i := range p.cfg.SQLInstances {
		if p.cfg.SQLInstances[i].Name == name {
			inst = &p.cfg.SQLInstances[i]
		}
	}
	if inst == nil {
		return nil, fmt.Errorf("no sql instance named %q in the configuration", name)
	}
	p.mu.Lock()
	e, ok := p.sessions[name]
	if !ok {
		e = &sqlSession{}
		p.sessions[name] = e
	}
	p.mu.Unlock()
	e.once.Do(func() { e.s, e.err = sqlclient.Connect(ctx, inst, &p.cfg.Kerberos) })
	return e.s, e.err
}

// Close ends every session of the cycle.
func (p *SQLConnections) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, e := range p.sessions {
		if e.s != nil {
			if err := e.s.Close(); err != nil {
				p.logger.Debug("closing sql session", "sql_instance", name, "err", err)
			}
		}
	}
}
