package cycle

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/firstseen"
)

// findingsByTarget indexes a result's findings by check and target.
func findingsByTarget(res *Result) map[string]diagnosis.Finding {
	out := map[string]diagnosis.Finding{}
	for _, f := range res.Findings {
		out[f.Check+" "+f.Target] = f
	}
	return out
}

// The runner stamps each finding and cause with when it was first seen,
// keeps the time while it stays, and while its instance's collection fails;
// a probe agrees with the background and forgets only its own instance's.
func TestRunnerStampsFirstSeen(t *testing.T) {
	var bFails atomic.Bool
	ct := newCycleTest(t, cycleConfig("a", "b"), fakeSQL{gate: func(_ context.Context, name string) error {
		if name == "b" && bFails.Load() {
			return errors.New("login failed")
		}
		return nil
	}})
	ct.runner.SetFirstSeen(firstseen.NewMemory(slog.New(slog.DiscardHandler)))
	ctx := context.Background()

	first := ct.runner.RunOnce(ctx)
	if len(first.Findings) == 0 || len(first.Causes) == 0 {
		t.Fatal("the fake fleet yields no findings to stamp")
	}
	t0 := first.Snapshot.Finished
	for _, f := range first.Findings {
		if !f.FirstSeen.Equal(t0) {
			t.Errorf("first cycle: %s %s FirstSeen %v, want the cycle's end %v", f.Check, f.Target, f.FirstSeen, t0)
		}
	}
	for _, c := range first.Causes {
		if !c.FirstSeen.Equal(t0) {
			t.Errorf("first cycle: cause %s %s FirstSeen %v, want %v", c.Cause, c.Subject, c.FirstSeen, t0)
		}
	}

	bFails.Store(true)
	failing := ct.runner.RunOnce(ctx)
	bFails.Store(false)
	healed := ct.runner.RunOnce(ctx)
	before, during, after := findingsByTarget(first), findingsByTarget(failing), findingsByTarget(healed)
	lostWhileFailing := 0
	for key, f := range before {
		if _, ok := during[key]; !ok {
			lostWhileFailing++
		}
		if got, ok := after[key]; !ok || !got.FirstSeen.Equal(f.FirstSeen) {
			t.Errorf("%s: FirstSeen %v after b failed and came back, want %v", key, got.FirstSeen, f.FirstSeen)
		}
	}
	if lostWhileFailing == 0 {
		t.Error("no finding went unseen while b failed: the test shows nothing")
	}

	// A probe of a: same times as the background's.
	probe, err := ct.runner.Probe(ctx, "a", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for key, f := range findingsByTarget(probe) {
		if want, ok := after[key]; ok && !f.FirstSeen.Equal(want.FirstSeen) {
			t.Errorf("probe: %s FirstSeen %v, background's %v", key, f.FirstSeen, want.FirstSeen)
		}
	}

	// The metrics carry the times.
	e := NewResultExporter(ct.runner, healed)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	if n, err := testutil.GatherAndCount(reg, "kerberos_finding_first_seen_timestamp_seconds"); err != nil || n != len(healed.Findings) {
		t.Errorf("kerberos_finding_first_seen_timestamp_seconds: %d series (%v), want one per finding (%d)", n, err, len(healed.Findings))
	}
	if n, err := testutil.GatherAndCount(reg, "kerberos_root_cause_first_seen_timestamp_seconds"); err != nil || n == 0 {
		t.Errorf("kerberos_root_cause_first_seen_timestamp_seconds: %d series (%v), want some", n, err)
	}
}

// With --collection.background=fleet the background cycle never sees an
// instance's findings: it must not forget those the probes found.
func TestFleetBackgroundKeepsProbesFirstSeen(t *testing.T) {
	ct := newCycleTest(t, cycleConfig("a", "b"), fakeSQL{})
	ct.runner.SetBackground(BackgroundFleet)
	store := firstseen.NewMemory(slog.New(slog.DiscardHandler))
	ct.runner.SetFirstSeen(store)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	ct.runner.RunOnce(ctx)
	first, err := ct.runner.Probe(ctx, "a", log)
	if err != nil {
		t.Fatal(err)
	}
	own := 0
	for _, f := range first.Findings {
		if f.Instance == "a" {
			own++
			if f.FirstSeen.IsZero() {
				t.Errorf("probe of a: its finding %s %s has no first-seen time", f.Check, f.Target)
			}
		}
	}
	if own == 0 {
		t.Fatal("the probe of a found nothing of its own: the test shows nothing")
	}
	ct.runner.RunOnce(ctx)
	if _, err := ct.runner.Probe(ctx, "b", log); err != nil {
		t.Fatal(err)
	}
	again, err := ct.runner.Probe(ctx, "a", log)
	if err != nil {
		t.Fatal(err)
	}
	was := findingsByTarget(first)
	for key, f := range findingsByTarget(again) {
		if f.Instance == "a" && !f.FirstSeen.Equal(was[key].FirstSeen) {
			t.Errorf("probe of a after a background cycle and a probe of b: %s FirstSeen %v, want %v", key, f.FirstSeen, was[key].FirstSeen)
		}
	}
}

// skippingDirectory is fakeDirectory that, while skip is set, runs out of
// time before instance a's SPNs: it leaves them out and says so.
type skippingDirectory struct {
	fakeDirectory
	skip *atomic.Bool
}

func (f skippingDirectory) Update(ctx context.Context, env *collector.Env, snap *facts.Snapshot) error {
	if err := f.fakeDirectory.Update(ctx, env, snap); err != nil || !f.skip.Load() {
		return err
	}
	n := len(snap.SPNs)
	snap.SPNs = slices.DeleteFunc(snap.SPNs, func(e facts.ExpectedSPN) bool { return e.Target == "a" })
	if skipped := n - len(snap.SPNs); skipped > 0 {
		return &collector.Incomplete{Skipped: skipped, Total: n, Items: "SPNs", Reason: facts.SkippedDeadline}
	}
	return nil
}

// fakeDCs reports one DC that refuses, or, while skip is set, one it ran
// out of time for.
type fakeDCs struct{ skip *atomic.Bool }

func (f fakeDCs) Update(_ context.Context, _ *collector.Env, snap *facts.Snapshot) error {
	if f.skip.Load() {
		snap.DCs = append(snap.DCs, facts.DomainController{Domain: "corp.test", Address: "dc1.corp.test", Skipped: facts.SkippedDeadline})
		return &collector.Incomplete{Skipped: 1, Total: 1, Items: "domain controllers", Reason: facts.SkippedDeadline}
	}
	snap.DCs = append(snap.DCs, facts.DomainController{Domain: "corp.test", Address: "dc1.corp.test", Error: "connection refused"})
	return nil
}

func (fakeDCs) Metrics(*facts.Snapshot, chan<- prometheus.Metric) {}

// A cycle that skipped items for lack of time did not check them: their
// findings, unseen, have not cleared, and come back with their first-seen
// time (an instance's SPNs, and the fleet-wide DCs).
func TestSkippedItemsKeepFirstSeen(t *testing.T) {
	var skip atomic.Bool
	ct := newCycleTest(t, cycleConfig("a", "b"), fakeSQL{})
	ct.runner.collectors = []collector.Named{
		{Name: "fakesql", Phase: collector.PhaseSQL, Collector: fakeSQL{}},
		{Name: "fakedir", Phase: collector.PhaseDirectory, Collector: skippingDirectory{fakeDirectory{&ct.mu, &ct.batches, &ct.targets}, &skip}},
		{Name: "fakedc", Phase: collector.PhaseDiscover, Collector: fakeDCs{&skip}},
	}
	ct.runner.progress = nil
	ct.runner.SetFirstSeen(firstseen.NewMemory(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	watched := []string{"spn_missing x/a up=true", "dc_unreachable dc1.corp.test"}

	first := findingsByTarget(ct.runner.RunOnce(ctx))
	skip.Store(true)
	skipped := ct.runner.RunOnce(ctx)
	if !skipped.Incomplete["a"] || !skipped.FleetIncomplete {
		t.Errorf("cycle that skipped a's SPNs and the DC: incomplete %v, fleet-wide incomplete %v, want a and the fleet", skipped.Incomplete, skipped.FleetIncomplete)
	}
	if st := skipped.Status["fakedc"]; !st.Success || st.Skipped != 1 {
		t.Errorf("fakedc status %+v: want a success that skipped 1 item", st)
	}
	during := findingsByTarget(skipped)
	skip.Store(false)
	after := findingsByTarget(ct.runner.RunOnce(ctx))
	for _, key := range watched {
		if _, ok := first[key]; !ok {
			t.Fatalf("first cycle: no %s finding; the test shows nothing", key)
		}
		if _, ok := during[key]; ok {
			t.Errorf("cycle that skipped it: %s still reported; the test shows nothing", key)
		}
		if !after[key].FirstSeen.Equal(first[key].FirstSeen) {
			t.Errorf("%s: FirstSeen %v after a cycle that skipped it, want %v", key, after[key].FirstSeen, first[key].FirstSeen)
		}
	}
}

// A probe cut short by its scrape's deadline judges nothing and adds
// nothing, as a background cycle cut short by shutdown.
func TestProbePastDeadlineObservesNothing(t *testing.T) {
	ct := newCycleTest(t, cycleConfig("a", "b"), fakeSQL{})
	ct.runner.progress = nil
	store := firstseen.NewMemory(slog.New(slog.DiscardHandler))
	ct.runner.SetFirstSeen(store)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := ct.runner.Probe(ctx, "a", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) == 0 {
		t.Fatal("the probe found nothing: the test shows nothing")
	}
	if f, c := store.Len(); f != 0 || c != 0 {
		t.Errorf("after a probe past its deadline: %d findings and %d causes remembered, want none", f, c)
	}
}
