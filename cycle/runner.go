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
	"github.com/kerberos-exporter/kerberos_exporter/internal/firstseen"
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
	// Incomplete are the SQL instances one of whose collector runs failed
	// or skipped items for lack of time this cycle; FleetIncomplete says a
	// run of the fleet-wide work (DCs, DNS, delegated users, services) did.
	// Their findings may be missing without having cleared (see judged).
	Incomplete      map[string]bool
	FleetIncomplete bool
	// FirstCycle marks the first cycle the runner completed since it was
	// made: a target that was still starting may show as down in it, and
	// nothing is known yet of how long a finding has stood. A probe's
	// result is never a cycle of the runner and is not marked.
	FirstCycle bool
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
	// firstSeen stamps findings and causes with when they were first seen
	// (SetFirstSeen); nil leaves them unstamped.
	firstSeen *firstseen.Store
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

// SetFirstSeen makes the runner stamp every cycle's and probe's findings
// and causes with their first-seen times from store, and save the store
// after each background cycle.
func (r *Runner) SetFirstSeen(store *firstseen.Store) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.firstSeen = store
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
			r.saveFirstSeen() // what probes added since the last cycle
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
	store := r.firstSeen
	r.mu.Unlock()
	// A cycle cut short by shutdown judges nothing.
	if store != nil && ctx.Err() == nil {
		configured := map[string]bool{}
		for _, inst := range r.Config().SQLInstances {
			configured[inst.Name] = true
		}
		store.Observe(res.Snapshot.Finished, res.Findings, res.Causes, firstseen.Scope{Judged: judged(res, true, configured)})
	}
	r.mu.Lock()
	res.FirstCycle = r.last == nil
	for name, st := range res.Status {
		if st.Success {
			r.lastSuccess[name] = res.Snapshot.Finished
		}
		st.LastSuccess = r.lastSuccess[name]
		res.Status[name] = st
	}
	r.last = res
	r.mu.Unlock()
	r.saveFirstSeen()
	return res
}

// saveFirstSeen saves the first-seen store if it changed.
func (r *Runner) saveFirstSeen() {
	r.mu.Lock()
	store := r.firstSeen
	r.mu.Unlock()
	if store == nil {
		return
	}
	if err := store.Save(time.Now()); err != nil {
		r.logger.Warn("first-seen times not saved; they are kept in memory and saved again after the next cycle", "err", err)
	}
}

// judged says which parts of a cycle's facts were complete, so that a
// finding about them that was not seen has cleared (firstseen.Judged): a
// SQL instance the cycle looked at, if its runs succeeded without skipping
// anything and the exporter logged in to it; the fleet-wide work ("",
// services, instances no longer configured) if its runs did and the cycle
// was a background one (fleetWide), since a probe's view of the fleet is
// partial. A configured instance the cycle did not look at (a probe of
// another, or the background loop with --collection.background=fleet) is
// not judged. Nothing is judged when the fleet-wide work failed or skipped
// items: the instances' DNS findings come from it.
func judged(res *Result, fleetWide bool, configured map[string]bool) func(instance string) bool {
	looked := map[string]bool{}
	for _, inst := range res.Config.SQLInstances {
		looked[inst.Name] = true
	}
	return func(instance string) bool {
		if res.FleetIncomplete {
			return false
		}
		if looked[instance] {
			if sql := res.Snapshot.SQL[instance]; sql != nil && !sql.Up {
				return false
			}
			return !res.Incomplete[instance]
		}
		if configured[instance] {
			return false
		}
		return fleetWide
	}
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
// needs) with its own logger: /probe serves it from a fresh registry. Its
// only trace is in the first-seen store, which stamps its findings as the
// background cycle's (so that both agree) and forgets the cleared ones of
// its own instance only.
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
	res := r.collect(ctx, &one, r.collectors, logger, true)
	r.mu.Lock()
	store := r.firstSeen
	r.mu.Unlock()
	// A probe cut short (its scrape's deadline passed, or the client went)
	// judges nothing, as a cycle cut short by shutdown.
	if store != nil && ctx.Err() == nil {
		// The probe adds only its own instance's entries: its view of the
		// fleet is partial.
		own := func(instance string) bool { return instance == target }
		store.Observe(res.Snapshot.Finished, res.Findings, res.Causes, firstseen.Scope{Judged: judged(res, false, nil), Owns: own})
	}
	return res, nil
}
