package cycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// fakeSQL reports every instance up, after gate(name) returns.
type fakeSQL struct {
	gate func(ctx context.Context, name string) error
	// linked gives an instance self-mapped linked servers to these instances.
	linked map[string][]string
}

func (f fakeSQL) Update(ctx context.Context, env *collector.Env, snap *facts.Snapshot) error {
	var errs []error
	for _, inst := range env.Config.SQLInstances {
		if f.gate != nil {
			if err := f.gate(ctx, inst.Name); err != nil {
				snap.SQL[inst.Name] = &facts.SQLInstance{Name: inst.Name, Cause: "timeout"}
				errs = append(errs, fmt.Errorf("sql instance %s: %w", inst.Name, err))
				continue
			}
		}
		snap.SQL[inst.Name] = &facts.SQLInstance{Name: inst.Name, Up: true, EngineAccount: `CORP\svc_` + inst.Name}
		ls := &facts.LinkedServers{Instance: inst.Name, Readable: true}
		for _, to := range f.linked[inst.Name] {
			ls.Servers = append(ls.Servers, facts.LinkedServer{Name: strings.ToUpper(to), SelfMapped: true, TargetInstance: to})
		}
		snap.LinkedServers[inst.Name] = ls
	}
	return errors.Join(errs...)
}

func (fakeSQL) Metrics(*facts.Snapshot, chan<- prometheus.Metric) {}

// fakeDirectory records the instances of each run and writes an expected
// SPN per target (instances and services), an account per target and one
// shared account, and a delegation path per linked server.
type fakeDirectory struct {
	mu      *sync.Mutex
	batches *[][]string
	// targets records the names of the targets each run found in its
	// snapshot (the cycle's), "<none computed>" when it found none.
	targets *[][]string
}

func (f fakeDirectory) Update(_ context.Context, env *collector.Env, snap *facts.Snapshot) error {
	var names []string
	for _, inst := range env.Config.SQLInstances {
		names = append(names, inst.Name)
	}
	seen := []string{"<none computed>"}
	if snap.Targets != nil {
		seen = []string{}
		for _, t := range snap.Targets {
			seen = append(seen, t.Name)
		}
	}
	f.mu.Lock()
	*f.batches = append(*f.batches, names)
	*f.targets = append(*f.targets, seen)
	f.mu.Unlock()
	for _, t := range snap.Targets {
		up := t.SQL && snap.SQL[t.Name] != nil && snap.SQL[t.Name].Up
		snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: t.Name, SPN: fmt.Sprintf("x/%s up=%v", t.Name, up)})
		snap.Accounts = append(snap.Accounts, facts.Account{Name: `CORP\acct_` + t.Name})
	}
	snap.Accounts = append(snap.Accounts, facts.Account{Name: `CORP\shared`})
	for name, ls := range snap.LinkedServers {
		for _, s := range ls.Servers {
			back := snap.SQL[s.TargetInstance]
			snap.DelegationPaths = append(snap.DelegationPaths, facts.DelegationPath{FromInstance: name, LinkedServer: s.Name, ToTarget: s.TargetInstance,
				ToAccount: map[bool]string{true: back.EngineAccount, false: "unknown"}[back != nil]})
		}
	}
	return nil
}

func (fakeDirectory) Metrics(*facts.Snapshot, chan<- prometheus.Metric) {}

type cycleTest struct {
	runner  *Runner
	batches [][]string
	targets [][]string
	mu      sync.Mutex
	events  chan string
}

func newCycleTest(t *testing.T, cfg *config.Config, sql fakeSQL) *cycleTest {
	t.Helper()
	ct := &cycleTest{events: make(chan string, 100)}
	ct.runner = NewRunner(cfg, slog.New(slog.DiscardHandler))
	ct.runner.collectors = []collector.Named{
		{Name: "fakesql", Phase: collector.PhaseSQL, Collector: sql},
		{Name: "fakedir", Phase: collector.PhaseDirectory, Collector: fakeDirectory{&ct.mu, &ct.batches, &ct.targets}},
	}
	ct.runner.progress = func(stage, instance string) { ct.events <- stage + " " + instance }
	return ct
}

func cycleConfig(instances ...string) *config.Config {
	cfg := &config.Config{Global: config.Global{CollectorTimeout: config.Duration(time.Hour), MaxConcurrentInstances: 32}}
	for _, name := range instances {
		cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: name, Host: name + ".corp.test"})
	}
	cfg.Domains = []config.Domain{{Name: "corp.test"}}
	return cfg
}

// waitFor reads progress events until every one of want has been seen,
// failing on any event in forbidden first.
func (ct *cycleTest) waitFor(t *testing.T, want []string, forbidden ...string) {
	t.Helper()
	pending := map[string]bool{}
	for _, w := range want {
		pending[w] = true
	}
	// A guard against hanging, not a speed check: the fake collectors take
	// no time at all.
	guard := time.After(2 * time.Minute)
	for len(pending) > 0 {
		select {
		case ev := <-ct.events:
			if slices.Contains(forbidden, ev) {
				t.Fatalf("%q came before %q", ev, want)
			}
			delete(pending, ev)
		case <-guard:
			t.Fatalf("no %q", want)
		}
	}
}

func TestCycleDirectoryWorkDoesNotWaitForAStalledInstance(t *testing.T) {
	release := make(chan struct{})
	cfg := cycleConfig("fast1", "stall", "fast2")
	cfg.Services = []config.Service{{Name: "crm", Account: `CORP\crmweb`, SPNs: []string{"HTTP/crm.corp.test"}}}
	ct := newCycleTest(t, cfg, fakeSQL{gate: func(ctx context.Context, name string) error {
		if name != "stall" {
			return nil
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	done := make(chan *Result)
	go func() { done <- ct.runner.RunOnce(context.Background()) }()

	// Both fast instances get their directory facts while stall is stuck.
	ct.waitFor(t, []string{"directory fast1", "directory fast2"}, "sql stall")
	close(release)
	res := <-done

	ct.mu.Lock()
	for _, b := range ct.batches {
		if slices.Contains(b, "stall") && (slices.Contains(b, "fast1") || slices.Contains(b, "fast2")) {
			t.Errorf("a directory run held the fast instances together with the stalled one: %v", b)
		}
	}
	ct.mu.Unlock()

	// One merged snapshot, in configuration order, services last, every
	// target's facts from its own run, accounts once each.
	var spns []string
	for _, e := range res.Snapshot.SPNs {
		spns = append(spns, e.SPN)
	}
	want := []string{"x/fast1 up=true", "x/stall up=true", "x/fast2 up=true", "x/crm up=false"}
	if !slices.Equal(spns, want) {
		t.Errorf("expected SPNs %q, want %q", spns, want)
	}
	var accounts []string
	for _, a := range res.Snapshot.Accounts {
		accounts = append(accounts, a.Name)
	}
	if want := []string{`CORP\acct_crm`, `CORP\acct_fast1`, `CORP\acct_fast2`, `CORP\acct_stall`, `CORP\shared`}; !slices.Equal(accounts, want) {
		t.Errorf("accounts %q, want %q", accounts, want)
	}
	if len(res.Snapshot.SQL) != 3 {
		t.Errorf("sql facts for %d instances, want 3", len(res.Snapshot.SQL))
	}
	for _, name := range []string{"fakesql", "fakedir"} {
		if st := res.Status[name]; !st.Success {
			t.Errorf("%s: %+v", name, st)
		}
	}
}

func TestCycleFrontEndWaitsForItsLinkedServersBackEnd(t *testing.T) {
	release := make(chan struct{})
	cfg := cycleConfig("front", "back", "other")
	ct := newCycleTest(t, cfg, fakeSQL{
		linked: map[string][]string{"front": {"back"}},
		gate: func(ctx context.Context, name string) error {
			if name == "back" {
				<-release
			}
			return nil
		},
	})
	done := make(chan *Result)
	go func() { done <- ct.runner.RunOnce(context.Background()) }()
	// other does not wait; front waits for its back end's account.
	ct.waitFor(t, []string{"directory other"}, "sql back", "directory front")
	close(release)
	res := <-done
	if got := res.Snapshot.DelegationPaths; len(got) != 1 || got[0].FromInstance != "front" || got[0].ToAccount != `CORP\svc_back` {
		t.Errorf("delegation paths %+v, want front → back judged with back's account", got)
	}
}

func TestCycleBoundsSQLConcurrency(t *testing.T) {
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("sql%02d", i))
	}
	cfg := cycleConfig(names...)
	cfg.Global.MaxConcurrentInstances = 3
	var inFlight, most atomic.Int32
	ct := newCycleTest(t, cfg, fakeSQL{gate: func(context.Context, string) error {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond) // overlap, so that a missing bound shows
		inFlight.Add(-1)
		return nil
	}})
	res := ct.runner.RunOnce(context.Background())
	if m := most.Load(); m > 3 {
		t.Errorf("%d instances were talked to at once, want at most max_concurrent_instances (3)", m)
	}
	if len(res.Snapshot.SQL) != 12 || len(res.Snapshot.SPNs) != 12 {
		t.Errorf("facts for %d instances and %d SPNs, want 12 each", len(res.Snapshot.SQL), len(res.Snapshot.SPNs))
	}
}

func TestCycleFoldsPerInstanceFailuresIntoTheCollectorStatus(t *testing.T) {
	cfg := cycleConfig("good", "bad")
	ct := newCycleTest(t, cfg, fakeSQL{gate: func(_ context.Context, name string) error {
		if name == "bad" {
			return errors.New("login failed")
		}
		return nil
	}})
	res := ct.runner.RunOnce(context.Background())
	st := res.Status["fakesql"]
	if st.Success || !strings.Contains(st.Error, "sql instance bad: login failed") {
		t.Errorf("status %+v, want failed naming the bad instance", st)
	}
	if !res.Snapshot.SQL["good"].Up {
		t.Error("the good instance's facts were lost")
	}
}

// TestCycleMergesKeysAndAliases: the aeskeys and cname facts of every
// directory run reach the cycle's snapshot: one view per domain (a
// successful one over a failed one), each account's keys once (a read one
// over a failed one), each target's alias SPNs from its own run only.
func TestCycleMergesKeysAndAliases(t *testing.T) {
	cfg := &config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}, {Name: "sqlb"}}}
	c := &cycle{cfg: cfg, snap: facts.New(time.Now()), runs: map[string][]Status{}}
	failed := facts.DomainAES{Domain: "corp.test", Error: "timeout"}
	read := facts.DomainAES{Domain: "corp.test", AESSince: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)}
	alias := func(target string) facts.CanonicalSPN {
		return facts.CanonicalSPN{Target: target, SPN: "HTTP/" + target + "alias.corp.test"}
	}
	c.merge(&facts.Snapshot{AESDomains: []facts.DomainAES{failed},
		AccountKeys:   []facts.AccountKeys{{Name: `CORP\sqlsvc_b`, Error: "timeout"}},
		CanonicalSPNs: []facts.CanonicalSPN{alias("sqlb"), alias("sqla")}}, map[string]bool{"sqlb": true})
	c.merge(&facts.Snapshot{AESDomains: []facts.DomainAES{read},
		AccountKeys:   []facts.AccountKeys{{Name: `CORP\sqlsvc_a`, Found: true}, {Name: `CORP\SQLSVC_B`, Found: true}},
		CanonicalSPNs: []facts.CanonicalSPN{alias("sqla")}}, map[string]bool{"sqla": true})
	c.order()
	s := c.snap
	if len(s.AESDomains) != 1 || s.AESDomains[0].Error != "" {
		t.Errorf("domains %+v, want corp.test once, as read", s.AESDomains)
	}
	if len(s.AccountKeys) != 2 || !s.AccountKeys[0].Found || !s.AccountKeys[1].Found {
		t.Errorf("account keys %+v, want sqlsvc_a and sqlsvc_b once each, as read", s.AccountKeys)
	}
	var targets []string
	for _, cs := range s.CanonicalSPNs {
		targets = append(targets, cs.Target)
	}
	if !slices.Equal(targets, []string{"sqla", "sqlb"}) {
		t.Errorf("alias SPNs of %q, want sqla and sqlb once each, in configuration order", targets)
	}
}

// TestCycleComputesTargetsOnceIntoTheSnapshot: every directory run reads
// the targets the cycle computed from the SQL facts in (a front end's run
// sees its back end's too), and the merged snapshot holds every target
// once, in configuration order, for the diagnosis.
func TestCycleComputesTargetsOnceIntoTheSnapshot(t *testing.T) {
	cfg := cycleConfig("front", "back", "alone")
	cfg.Services = []config.Service{{Name: "crm", Account: `CORP\crmweb`, SPNs: []string{"HTTP/crm.corp.test"}}}
	ct := newCycleTest(t, cfg, fakeSQL{linked: map[string][]string{"front": {"back"}}})
	res := ct.runner.RunOnce(context.Background())

	var names []string
	for _, tg := range res.Snapshot.Targets {
		names = append(names, tg.Name)
	}
	if want := []string{"front", "back", "alone", "crm"}; !slices.Equal(names, want) {
		t.Errorf("snapshot targets %v, want %v", names, want)
	}
	if len(res.Snapshot.Targets) == 0 {
		t.FailNow()
	}
	if tg := res.Snapshot.Targets[0]; tg.Account != `CORP\svc_front` || tg.AccountSource != "sql" || tg.HostNetBIOS != "front" {
		t.Errorf("front's target was not computed from its SQL facts: %+v", tg)
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	sawBackEnd := false
	for i, seen := range ct.targets {
		if slices.Contains(seen, "<none computed>") {
			t.Errorf("directory run for %v found no targets computed by the cycle", ct.batches[i])
		}
		if slices.Contains(seen, "front") && slices.Contains(seen, "back") {
			sawBackEnd = true
		}
	}
	if !sawBackEnd {
		t.Errorf("front's directory run did not see its back end's target: %v", ct.targets)
	}
}

// chattyCollector logs through the logger the cycle gives it.
type chattyCollector struct{}

func (chattyCollector) Update(_ context.Context, env *collector.Env, _ *facts.Snapshot) error {
	env.Logger.Info("hello from a collector")
	return nil
}

func (chattyCollector) Metrics(*facts.Snapshot, chan<- prometheus.Metric) {}

// lockedBuffer is a bytes.Buffer safe for a logger written from goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCycleScopesEachCollectorsLogger: what a collector logs carries its
// name, without the collector saying it.
func TestCycleScopesEachCollectorsLogger(t *testing.T) {
	var out lockedBuffer
	r := NewRunner(cycleConfig("a"), slog.New(slog.NewTextHandler(&out, nil)))
	r.collectors = []collector.Named{{Name: "chatty", Phase: collector.PhaseDiscover, Collector: chattyCollector{}}}
	r.RunOnce(context.Background())
	if !strings.Contains(out.String(), `msg="hello from a collector" collector=chatty`) {
		t.Errorf("the collector's log line does not name it:\n%s", out.String())
	}
}

// TestCycleMarksOnlyTheFirstCycle: the first completed cycle since the
// runner was made is marked (a target that was still starting may show as
// down in it); later cycles, a reload's among them, and probes are not.
func TestCycleMarksOnlyTheFirstCycle(t *testing.T) {
	cfg := cycleConfig("a")
	ct := newCycleTest(t, cfg, fakeSQL{})
	ct.runner.progress = nil
	if probe, err := ct.runner.Probe(context.Background(), "a", slog.New(slog.DiscardHandler)); err != nil || probe.FirstCycle {
		t.Errorf("a probe before any cycle: err %v, marked %v; want unmarked", err, probe != nil && probe.FirstCycle)
	}
	if res := ct.runner.RunOnce(context.Background()); !res.FirstCycle || !ct.runner.Last().FirstCycle {
		t.Error("the first cycle is not marked")
	}
	if res := ct.runner.RunOnce(context.Background()); res.FirstCycle {
		t.Error("the second cycle is marked first")
	}
	ct.runner.SetConfig(cycleConfig("a", "b"))
	if res := ct.runner.RunOnce(context.Background()); res.FirstCycle {
		t.Error("the first cycle after a reload is marked first: the exporter did not start")
	}
}
