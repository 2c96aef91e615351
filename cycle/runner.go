package cycle

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// Status is how one collector fared in the last cycle.
type Status struct {
	Success     bool
	Duration    time.Duration
	LastSuccess time.Time // zero until it first succeeds
	Error       string
	// Skipped is how many of Items (hosts, SPNs, domain controllers) the
	// collector had no time to check in its last run, of Total; their
	// checks are unknown this cycle. A run that only skipped items still
	// succeeds: it is incomplete, not failed.
	Skipped, Total int
	Items, Reason  string
}

// Incomplete says what the collector skipped, e.g. "120 of 300 hosts not
// checked this cycle (deadline)"; "" when it checked everything.
func (s Status) Incomplete() string {
	if s.Skipped == 0 {
		return ""
	}
	return (&collector.Incomplete{Skipped: s.Skipped, Total: s.Total, Items: s.Items, Reason: s.Reason}).Error()
}

// Result is one completed collection cycle: the facts, how each collector
// fared, and the findings judged from the facts.
type Result struct {
	Config   *config.Config
	Snapshot *facts.Snapshot
	Status   map[string]Status
	Findings []diagnosis.Finding
	// Causes group the findings by root cause (diagnosis.Causes).
	Causes []diagnosis.Cause
}

// Runner runs the enabled collectors in the background and keeps the last
// completed Result, so that a scrape never waits on AD or SQL Server.
type Runner struct {
	logger *slog.Logger

	mu          sync.Mutex
	cfg         *config.Config
	last        *Result
	lastSuccess map[string]time.Time
	trigger     chan struct{}
	collectors  []collector.Named
	// progress, when set (tests), hears each instance's stages in a cycle.
	progress func(stage, instance string)
	// discovery's last answer (see discovery.go); browse asks SQL Browsers.
	discovered      []config.SQLInstance
	discoveredAt    time.Time
	discoveryStatus Status
	browse          browseFunc
	// background is what the background loop collects (SetBackground).
	background Background
	// caches keep DNS answers and ticket-request outcomes across cycles.
	caches *collector.Caches
}

// Background says what the background loop collects.
type Background string

const (
	// BackgroundAll: every instance and the fleet-wide work, on /metrics.
	BackgroundAll Background = "all"
	// BackgroundFleet: only the fleet-wide work (DC clocks, delegated
	// users, the services' DNS and SPNs, the forest-wide duplicate scan) on
	// /metrics and the findings page; each instance's work is done by its
	// /probe alone, so that replicas sharded by hashmod split the SQL and
	// directory load, not only the scrapes.
	BackgroundFleet Background = "fleet"
)

// SetBackground chooses what the background loop collects from its next
// cycle on.
func (r *Runner) SetBackground(b Background) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.background = b
}

// NewRunner makes a runner for the collectors enabled now.
func NewRunner(cfg *config.Config, logger *slog.Logger) *Runner {
	return &Runner{
		logger:      logger,
		cfg:         cfg,
		lastSuccess: map[string]time.Time{},
		trigger:     make(chan struct{}, 1),
		collectors:  collector.Enabled(),
		browse:      browseSQL,
		background:  BackgroundAll,
		caches:      collector.NewCaches(),
	}
}

// SetConfig swaps in a new configuration (after a successful reload) and
// starts a cycle with it at once.
func (r *Runner) SetConfig(cfg *config.Config) {
	r.mu.Lock()
	if !sameDiscovery(r.cfg, cfg) {
		// Instances found under the old settings carry the old template's
		// credentials and passed the old patterns: they go now, not when a
		// search with the new settings first succeeds.
		r.discovered = nil
	}
	r.cfg = cfg
	r.discoveredAt = time.Time{} // the next cycle discovers with the new settings
	r.mu.Unlock()
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// sameDiscovery says whether two configurations discover the same instances
// with the same connection settings.
func sameDiscovery(a, b *config.Config) bool {
	return reflect.DeepEqual(a.Discovery, b.Discovery) && reflect.DeepEqual(a.Domains, b.Domains)
}

// Config is the configuration in force, with the instances discovery found.
func (r *Runner) Config() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return withDiscovered(r.cfg, r.discovered)
}

// Last is the last completed cycle, nil before the first one completes.
func (r *Runner) Last() *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Loop runs a cycle now and then every collection interval until ctx ends.
func (r *Runner) Loop(ctx context.Context) {
	collector.StartSPNScans(ctx, r.collectors, r.Config, r.logger) // on their own schedule (spnscan.go)
	for {
		r.RunOnce(ctx)
		timer := time.NewTimer(r.Config().Global.CollectionInterval.Duration())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.trigger:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// RunOnce runs every enabled collector once, each SQL instance in its own
// pipeline (see cycle.go), each run bounded by the collector timeout, then
// judges the facts. A slow or dead target delays only its own facts, never
// beyond the timeout, and never the scrape.
func (r *Runner) RunOnce(ctx context.Context) *Result {
	discovery := r.refreshDiscovery(ctx)
	cfg := r.Config()
	r.mu.Lock()
	fleetOnly := r.background == BackgroundFleet
	r.mu.Unlock()
	if fleetOnly {
		// The instances are still discovered (for /sd and /probe), but
		// their work is their probes'.
		cfg = withInstances(cfg, nil)
	}
	// Answers past their time to live go, with the hosts and SPNs no
	// longer configured.
	r.caches.Sweep()
	res := r.collect(ctx, cfg, r.collectors, r.logger, false)
	if discovery != nil {
		res.Status[discoveryStatusName] = *discovery
	}
	r.mu.Lock()
	for name, st := range res.Status {
		if st.Success {
			r.lastSuccess[name] = res.Snapshot.Finished
		}
		st.LastSuccess = r.lastSuccess[name]
		res.Status[name] = st
	}
	r.last = res
	r.mu.Unlock()
	return res
}

// runSafely turns a collector's panic into its own failure, so that one
// bad collector never takes the exporter down.
func runSafely(ctx context.Context, c collector.Named, env *collector.Env, snap *facts.Snapshot) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{collector: c.Name, value: p}
		}
	}()
	return c.Update(ctx, env, snap)
}

type panicError struct {
	collector string
	value     any
}

func (e *panicError) Error() string {
	return "collector " + e.collector + " panicked: " + sprint(e.value)
}

// Probe runs one cycle for one SQL instance (and the directory facts it
// needs) with its own logger, keeping no state: /probe serves it from a fresh
// registry.
func (r *Runner) Probe(ctx context.Context, target string, logger *slog.Logger) (*Result, error) {
	cfg := r.Config()
	one := *cfg
	one.SQLInstances = nil
	one.Services = nil
	for _, inst := range cfg.SQLInstances {
		if inst.Name == target {
			one.SQLInstances = append(one.SQLInstances, inst)
		}
	}
	if len(one.SQLInstances) == 0 {
		return nil, fmt.Errorf("unknown target %q: not a configured sql instance", target)
	}
	return r.collect(ctx, &one, r.collectors, logger, true), nil
}
