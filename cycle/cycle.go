package cycle

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// A cycle runs every collector once without a barrier between phases:
//
//   - each SQL instance has its own pipeline: its SQL collectors run for it
//     alone (at most global.max_concurrent_instances instances at a time),
//     and as soon as its facts are in, its directory work may start;
//   - directory work is batched: whenever the previous directory run has
//     ended, one run covers every instance whose facts have arrived since.
//     A fleet that answers at once is still asked in a few batched searches,
//     and a stalled instance delays only its own directory work (and that of
//     the instances whose self-mapped linked servers point at it, whose
//     delegation paths need its account);
//   - fleet-wide work (DC clocks, DNS, delegated users, the services' SPNs
//     and the forest-wide duplicate scan) runs alongside, needing no SQL.
//
// Every run gets its own snapshot; the cycle merges them into one, in the
// order a single run over the whole configuration would have produced.
type cycle struct {
	ctx     context.Context
	cfg     *config.Config
	logger  *slog.Logger
	probe   bool
	timeout time.Duration
	sql     *collector.SQLConnections
	// progress, when set (tests), hears "sql" when an instance's SQL facts
	// are in and "directory" when its directory facts are.
	progress func(stage, instance string)

	// lookups are the cycle's DNS checks and ticket requests, shared by
	// its runs and answered from the runner's caches while fresh.
	lookups *collector.Lookups

	mu   sync.Mutex
	snap *facts.Snapshot
	runs map[string][]Status // per collector, one per run
	// incomplete: the instances one of whose runs failed or skipped items;
	// fleetIncomplete: a fleet-wide run (no instances) did.
	incomplete      map[string]bool
	fleetIncomplete bool
}

func (r *Runner) collect(ctx context.Context, cfg *config.Config, collectors []collector.Named, logger *slog.Logger, probe bool) *Result {
	c := &cycle{
		ctx: ctx, cfg: cfg, logger: logger, probe: probe,
		timeout:    cfg.Global.CollectorTimeout.Duration(),
		sql:        collector.NewSQLConnections(cfg, logger),
		progress:   r.progress,
		snap:       facts.New(time.Now()),
		runs:       map[string][]Status{},
		incomplete: map[string]bool{},
		lookups:    r.caches.Cycle(cfg),
	}
	defer c.sql.Close()
	defer c.lookups.Close()
	byPhase := map[collector.Phase][]collector.Named{}
	for _, col := range collectors {
		byPhase[col.Phase] = append(byPhase[col.Phase], col)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		c.merge(c.run(byPhase[collector.PhaseDiscover], cfg, facts.New(c.snap.Started), probe, nil), nil)
	})
	wg.Go(func() {
		// The services' SPNs and the duplicate scan: no instances.
		fleet := withInstances(cfg, nil)
		c.merge(c.run(byPhase[collector.PhaseDirectory], fleet, withTargets(fleet, facts.New(c.snap.Started)), probe, nil), nil)
	})

	sqlDone := make(chan string, len(cfg.SQLInstances))
	slots := make(chan struct{}, max(1, cfg.Global.MaxConcurrentInstances))
	for i := range cfg.SQLInstances {
		inst := cfg.SQLInstances[i]
		wg.Go(func() {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done(): // run anyway: the collectors fail at once and say why
			}
			one := withInstances(cfg, []config.SQLInstance{inst})
			c.merge(c.run(byPhase[collector.PhaseSQL], one, facts.New(c.snap.Started), probe, []string{inst.Name}), nil)
			c.report("sql", inst.Name)
			sqlDone <- inst.Name
		})
	}
	c.directoryBatches(byPhase[collector.PhaseDirectory], sqlDone)
	wg.Wait()

	c.snap.Finished = time.Now()
	c.order()
	if probe {
		// A probe does not scan the forest (one scan per probe would cost
		// the DC a full read of every account each time): it takes the
		// holders the background's last scan saw for this instance's own
		// SPNs, so that it judges them as the background cycle would. It
		// takes only those: the rest of the scan is the fleet's, reported
		// once on /metrics, not on every probe.
		if scan := collector.SPNScannerOf(collectors); scan != nil {
			c.snap.Duplicates = scan.Known(c.snap.SPNs)
		}
	}
	res := &Result{Config: cfg, Snapshot: c.snap, Status: c.statuses(collectors), Incomplete: c.incomplete, FleetIncomplete: c.fleetIncomplete}
	res.Findings = diagnosis.Evaluate(cfg, c.snap)
	res.Causes = diagnosis.Causes(res.Findings)
	return res
}

// directoryBatches runs the directory collectors for every instance once
// its SQL facts (and those of the instances its self-mapped linked servers
// point at) are in, batching the instances that are ready together.
func (c *cycle) directoryBatches(collectors []collector.Named, sqlDone <-chan string) {
	n := len(c.cfg.SQLInstances)
	in := map[string]bool{}
	handled := map[string]bool{}
	received := 0
	for len(handled) < n {
		if received < n {
			in[<-sqlDone] = true
			received++
		}
		for more := true; more && received < n; {
			select {
			case name := <-sqlDone:
				in[name] = true
				received++
			default:
				more = false
			}
		}
		var ready []string
		need := map[string]bool{}
		for _, inst := range c.cfg.SQLInstances {
			if handled[inst.Name] || !in[inst.Name] {
				continue
			}
			backEnds := c.backEnds(inst.Name)
			if !allIn(backEnds, in) {
				continue
			}
			ready = append(ready, inst.Name)
			need[inst.Name] = true
			for _, b := range backEnds {
				need[b] = true
			}
		}
		if len(ready) == 0 {
			continue
		}
		var batch []config.SQLInstance
		for _, inst := range c.cfg.SQLInstances {
			if need[inst.Name] {
				batch = append(batch, inst)
			}
		}
		c.directoryBatch(collectors, batch, ready)
		for _, name := range ready {
			handled[name] = true
			c.report("directory", name)
		}
	}
}

// directoryBatch runs the directory collectors for the ready instances,
// with the SQL facts of those and of their linked servers' back ends, and
// keeps the facts about the ready ones (the back ends have their own run).
func (c *cycle) directoryBatch(collectors []collector.Named, batch []config.SQLInstance, ready []string) {
	// Run even without directory collectors: the run computes the ready
	// instances' targets, which the diagnosis reads.
	snap := facts.New(c.snap.Started)
	c.mu.Lock()
	for _, inst := range batch {
		if f, ok := c.snap.SQL[inst.Name]; ok {
			snap.SQL[inst.Name] = f
		}
		if f, ok := c.snap.LinkedServers[inst.Name]; ok {
			snap.LinkedServers[inst.Name] = f
		}
		if f, ok := c.snap.ErrorLogs[inst.Name]; ok {
			snap.ErrorLogs[inst.Name] = f
		}
	}
	c.mu.Unlock()
	cfg := withInstances(c.cfg, batch)
	cfg.Services, cfg.DelegatedPrincipals = nil, config.DelegatedPrincipals{}
	// Probe mode: the forest-wide duplicate scan is the fleet run's job.
	part := c.run(collectors, cfg, withTargets(cfg, snap), true, ready)
	owned := map[string]bool{}
	for _, name := range ready {
		owned[name] = true
	}
	c.merge(part, owned)
}

// backEnds are the configured instances that name's self-mapped linked
// servers point at.
func (c *cycle) backEnds(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	if ls := c.snap.LinkedServers[name]; ls != nil {
		for _, s := range ls.Servers {
			if s.SelfMapped && s.TargetInstance != "" && s.TargetInstance != name && !slices.Contains(out, s.TargetInstance) {
				out = append(out, s.TargetInstance)
			}
		}
	}
	return out
}

func allIn(names []string, in map[string]bool) bool {
	for _, n := range names {
		if !in[n] {
			return false
		}
	}
	return true
}

// run runs the collectors concurrently on snap, each bounded by the
// collector timeout, and records how each fared. instances names the SQL
// instances the run is for, for the logs.
func (c *cycle) run(collectors []collector.Named, cfg *config.Config, snap *facts.Snapshot, probe bool, instances []string) *facts.Snapshot {
	var wg sync.WaitGroup
	for _, col := range collectors {
		wg.Go(func() {
			// Each collector logs with its own name, whatever it logs.
			logger := c.logger.With("collector", col.Name)
			env := &collector.Env{Config: cfg, Logger: logger, SQL: c.sql, Probe: probe, AllInstances: c.cfg.SQLInstances, Lookups: c.lookups}
			cctx, cancel := context.WithTimeout(c.ctx, c.timeout)
			defer cancel()
			start := time.Now()
			err := runSafely(cctx, col, env, snap)
			// Items skipped for lack of time make the run incomplete, not
			// failed: what it checked stands, the rest is unknown.
			skipped, err := collector.SplitIncomplete(err)
			st := Status{Success: err == nil, Duration: time.Since(start)}
			for _, inc := range skipped {
				st.Skipped += inc.Skipped
				st.Total += inc.Total
				st.Items, st.Reason = inc.Items, inc.Reason
			}
			logAttrs := []any{"duration", st.Duration}
			if len(instances) > 0 {
				logAttrs = append(logAttrs, "sql_instances", strings.Join(instances, ","))
			}
			if st.Skipped > 0 {
				logger.Warn("collector incomplete", append(logAttrs, "skipped", st.Incomplete())...)
			}
			if err != nil {
				st.Error = err.Error()
				logger.Warn("collector failed", append(logAttrs, "err", err)...)
			} else {
				logger.Debug("collector succeeded", logAttrs...)
			}
			c.mu.Lock()
			c.runs[col.Name] = append(c.runs[col.Name], st)
			// Skipped items are unknown, not cleared: the run's part of
			// the facts is incomplete for first-seen times (see judged)
			// even though the collector succeeded.
			if err != nil || len(skipped) > 0 {
				if len(instances) == 0 {
					c.fleetIncomplete = true
				}
				for _, name := range instances {
					c.incomplete[name] = true
				}
			}
			c.mu.Unlock()
		})
	}
	wg.Wait()
	return snap
}

// merge adds one run's facts to the cycle's snapshot. With owned set, only
// the per-target facts about those targets are kept.
func (c *cycle) merge(part *facts.Snapshot, owned map[string]bool) {
	keep := func(target string) bool { return owned == nil || owned[target] }
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.snap
	if owned == nil {
		for k, v := range part.SQL {
			s.SQL[k] = v
		}
		for k, v := range part.LinkedServers {
			s.LinkedServers[k] = v
		}
		for k, v := range part.ErrorLogs {
			s.ErrorLogs[k] = v
		}
		s.DCs = append(s.DCs, part.DCs...)
		s.DNS = append(s.DNS, part.DNS...)
		s.Users = append(s.Users, part.Users...)
		if part.Duplicates != nil {
			s.Duplicates = part.Duplicates
		}
	}
	for _, t := range part.Targets {
		if keep(t.Name) {
			s.Targets = append(s.Targets, t)
		}
	}
	for _, e := range part.SPNs {
		if keep(e.Target) {
			s.SPNs = append(s.SPNs, e)
		}
	}
	for _, p := range part.Tickets {
		if keep(p.Target) {
			s.Tickets = append(s.Tickets, p)
		}
	}
	for _, p := range part.DelegationPaths {
		if keep(p.FromInstance) {
			s.DelegationPaths = append(s.DelegationPaths, p)
		}
	}
	for _, cs := range part.CanonicalSPNs {
		if keep(cs.Target) {
			s.CanonicalSPNs = append(s.CanonicalSPNs, cs)
		}
	}
	s.Accounts = append(s.Accounts, part.Accounts...)
	s.AccountKeys = append(s.AccountKeys, part.AccountKeys...)
	// Every run of the aeskeys collector reads every domain: keep one view
	// per domain, a successful one where a run had it.
	for _, d := range part.AESDomains {
		i := slices.IndexFunc(s.AESDomains, func(have facts.DomainAES) bool { return strings.EqualFold(have.Domain, d.Domain) })
		switch {
		case i < 0:
			s.AESDomains = append(s.AESDomains, d)
		case s.AESDomains[i].Error != "" && d.Error == "":
			s.AESDomains[i] = d
		}
	}
}

// order puts the merged per-target facts in the order one run over the
// whole configuration gives: targets in configuration order (instances,
// then services), delegation paths by front end, accounts by name, once.
func (c *cycle) order() {
	s := c.snap
	rank := map[string]int{}
	for i, inst := range c.cfg.SQLInstances {
		rank[inst.Name] = i
	}
	for i, svc := range c.cfg.Services {
		if _, dup := rank[svc.Name]; !dup {
			rank[svc.Name] = len(c.cfg.SQLInstances) + i
		}
	}
	slices.SortStableFunc(s.Targets, func(a, b facts.Target) int { return cmp.Compare(rank[a.Name], rank[b.Name]) })
	slices.SortStableFunc(s.SPNs, func(a, b facts.ExpectedSPN) int { return cmp.Compare(rank[a.Target], rank[b.Target]) })
	slices.SortStableFunc(s.Tickets, func(a, b facts.TicketProbe) int { return cmp.Compare(rank[a.Target], rank[b.Target]) })
	slices.SortStableFunc(s.DelegationPaths, func(a, b facts.DelegationPath) int { return cmp.Compare(a.FromInstance, b.FromInstance) })
	slices.SortStableFunc(s.Accounts, func(a, b facts.Account) int { return cmp.Compare(a.Name, b.Name) })
	s.Accounts = slices.CompactFunc(s.Accounts, func(a, b facts.Account) bool { return strings.EqualFold(a.Name, b.Name) })
	slices.SortStableFunc(s.CanonicalSPNs, func(a, b facts.CanonicalSPN) int { return cmp.Compare(rank[a.Target], rank[b.Target]) })
	slices.SortStableFunc(s.AccountKeys, func(a, b facts.AccountKeys) int {
		if c := cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return cmp.Compare(a.Error, b.Error) // a run that read it before one that failed
	})
	s.AccountKeys = slices.CompactFunc(s.AccountKeys, func(a, b facts.AccountKeys) bool { return strings.EqualFold(a.Name, b.Name) })
	slices.SortStableFunc(s.AESDomains, func(a, b facts.DomainAES) int { return cmp.Compare(a.Domain, b.Domain) })
}

// statuses folds each collector's runs into one status: failed if any run
// failed (with every distinct error), as long as its longest run.
func (c *cycle) statuses(collectors []collector.Named) map[string]Status {
	out := map[string]Status{}
	for _, col := range collectors {
		st := Status{Success: true}
		var errs []error
		seen := map[string]bool{}
		for _, run := range c.runs[col.Name] {
			st.Duration = max(st.Duration, run.Duration)
			// Runs over different instances check different items: the
			// cycle skipped their sum. A collector that did nothing has
			// no total.
			st.Skipped += run.Skipped
			st.Total += run.Total
			if run.Skipped > 0 {
				st.Items, st.Reason = run.Items, run.Reason
			}
			if !run.Success {
				st.Success = false
				if !seen[run.Error] {
					seen[run.Error] = true
					errs = append(errs, errors.New(run.Error))
				}
			}
		}
		if err := errors.Join(errs...); err != nil {
			st.Error = err.Error()
		}
		out[col.Name] = st
	}
	return out
}

func (c *cycle) report(stage, instance string) {
	if c.progress != nil {
		c.progress(stage, instance)
	}
}

// withTargets computes, once for a directory run, what that run's SQL
// facts and configuration expect (collector.Targets): the directory
// collectors and, after the merge, the diagnosis read them from the
// snapshot.
func withTargets(cfg *config.Config, snap *facts.Snapshot) *facts.Snapshot {
	snap.Targets = collector.Targets(cfg, snap)
	if snap.Targets == nil {
		snap.Targets = []facts.Target{} // computed: nothing is expected
	}
	return snap
}

// withInstances is a copy of cfg watching only the given instances.
func withInstances(cfg *config.Config, instances []config.SQLInstance) *config.Config {
	one := *cfg
	one.SQLInstances = instances
	return &one
}
