package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	// ctx lives as long as the cycle: a login is not tied to whichever
	// collector asked first, so one collector's deadline never fails another's.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	sessions map[string]*sqlSession
}

type sqlSession struct {
	done chan struct{} // closed when the login attempt ended
	s    *sqlclient.Session
	err  error
}

// NewSQLConnections makes an empty set for one cycle.
func NewSQLConnections(cfg *config.Config, logger *slog.Logger) *SQLConnections {
	ctx, cancel := context.WithCancel(context.Background())
	return &SQLConnections{cfg: cfg, logger: logger, ctx: ctx, cancel: cancel, sessions: map[string]*sqlSession{}}
}

// Session returns the cycle's session to the named instance, connecting on
// first use. Concurrent callers share one login attempt, which the instance
// timeout bounds; each caller waits no longer than its own ctx.
func (p *SQLConnections) Session(ctx context.Context, name string) (*sqlclient.Session, error) {
	inst := p.instance(name)
	if inst == nil {
		return nil, fmt.Errorf("no sql instance named %q in the configuration", name)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("sql instance %s: the collection cycle has ended", name)
	}
	e, ok := p.sessions[name]
	if !ok {
		e = &sqlSession{done: make(chan struct{})}
		p.sessions[name] = e
		go p.connect(e, inst)
	}
	p.mu.Unlock()
	select {
	case <-e.done:
		return e.s, e.err
	case <-ctx.Done():
		return nil, &sqlclient.ConnectError{Instance: name, Method: inst.Auth.Method, Cause: sqlclient.CauseTimeout, Err: ctx.Err()}
	}
}

func (p *SQLConnections) connect(e *sqlSession, inst *config.SQLInstance) {
	s, err := sqlclient.Connect(p.ctx, inst, &p.cfg.Kerberos)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed && s != nil {
		// The cycle ended while logging in: nobody will close it later.
		s.Close()
		s, err = nil, fmt.Errorf("sql instance %s: the collection cycle has ended", inst.Name)
	}
	e.s, e.err = s, err
	close(e.done)
}

func (p *SQLConnections) instance(name string) *config.SQLInstance {
	for i := range p.cfg.SQLInstances {
		if p.cfg.SQLInstances[i].Name == name {
			return &p.cfg.SQLInstances[i]
		}
	}
	return nil
}

// Close ends every session of the cycle and abandons logins in progress.
func (p *SQLConnections) Close() {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for name, e := range p.sessions {
		select {
		case <-e.done:
		default:
			continue // connect closes it when it ends
		}
		if e.s != nil {
			if err := e.s.Close(); err != nil {
				p.logger.Debug("closing sql session", "sql_instance", name, "err", err)
			}
		}
	}
}

// forEachInstance runs work for every configured instance concurrently and
// returns the results by instance name. It returns when all are done or ctx
// ends; an instance still running then gets abandoned(inst) instead, so one
// stalled server never holds up the others' results. work must only write
// to what it returns.
func forEachInstance[T any](ctx context.Context, instances []config.SQLInstance, work func(context.Context, *config.SQLInstance) T, abandoned func(*config.SQLInstance) T) map[string]T {
	type result struct {
		name string
		val  T
	}
	ch := make(chan result, len(instances))
	for i := range instances {
		inst := &instances[i]
		go func() { ch <- result{inst.Name, work(ctx, inst)} }()
	}
	out := make(map[string]T, len(instances))
	for range instances {
		select {
		case r := <-ch:
			out[r.name] = r.val
		case <-ctx.Done():
			for drained := false; !drained; {
				select {
				case r := <-ch:
					out[r.name] = r.val
				default:
					drained = true
				}
			}
			for i := range instances {
				if _, ok := out[instances[i].Name]; !ok {
					out[instances[i].Name] = abandoned(&instances[i])
				}
			}
			return out
		}
	}
	return out
}

// readFailed records a failed read on an instance's facts (its error text
// and whether it was a permission denial). A denial is itself a fact, the
// exporter may not read that, so only any other failure fails the collector.
func readFailed(instance string, err error, text *string, denied *bool) error {
	*text = err.Error()
	if sqlclient.IsPermissionDenied(err) {
		*denied = true
		return nil
	}
	return fmt.Errorf("sql instance %s: %w", instance, err)
}

// storePerInstance runs read for every instance concurrently
// (collectPerInstance) and stores the facts of those that answered in dst,
// a collector's own section of the snapshot.
func storePerInstance[F any](ctx context.Context, env *Env, dst map[string]*F, read func(context.Context, *Env, *config.SQLInstance) (*F, error)) error {
	found, err := collectPerInstance(ctx, env, read)
	maps.Copy(dst, found)
	return err
}

// collectPerInstance runs read for every instance concurrently and keeps
// the facts of those that answered. read returns nil facts when the instance
// could not be asked at all (the sql collector reports why). The errors of
// all instances are joined, so one failing instance fails the collector
// without hiding the others' facts.
func collectPerInstance[F any](ctx context.Context, env *Env, read func(context.Context, *Env, *config.SQLInstance) (*F, error)) (map[string]*F, error) {
	type result struct {
		facts *F
		err   error
	}
	results := forEachInstance(ctx, env.Config.SQLInstances,
		func(ctx context.Context, inst *config.SQLInstance) result {
			f, err := read(ctx, env, inst)
			return result{f, err}
		},
		func(*config.SQLInstance) result { return result{} })
	out := map[string]*F{}
	var errs []error
	for name, r := range results {
		if r.facts != nil {
			out[name] = r.facts
		}
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return out, errors.Join(errs...)
}
