package cycle

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// In fleet mode the background cycle does no instance's work (no SQL
// login, no directory run for an instance) but still the fleet's (the
// services' directory run); a probe does its instance's. In the default
// mode the cycle covers every instance, as before.
func TestBackgroundFleetLeavesInstancesToProbes(t *testing.T) {
	for _, mode := range []Background{BackgroundAll, BackgroundFleet} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := cycleConfig("a", "b")
			cfg.Services = []config.Service{{Name: "crm", Account: `CORP\crmweb`, SPNs: []string{"HTTP/crm.corp.test"}}}
			ct := newCycleTest(t, cfg, fakeSQL{})
			ct.runner.SetBackground(mode)
			res := ct.runner.RunOnce(context.Background())

			var sqlSeen []string
			for name := range res.Snapshot.SQL {
				sqlSeen = append(sqlSeen, name)
			}
			slices.Sort(sqlSeen)
			var targets []string
			for _, e := range res.Snapshot.SPNs {
				targets = append(targets, e.Target)
			}
			want, wantTargets := []string{"a", "b"}, []string{"a", "b", "crm"}
			if mode == BackgroundFleet {
				want, wantTargets = nil, []string{"crm"}
			}
			if !slices.Equal(sqlSeen, want) {
				t.Errorf("background cycle logged in to %v, want %v", sqlSeen, want)
			}
			if !slices.Equal(targets, wantTargets) {
				t.Errorf("background cycle's directory facts are about %v, want %v", targets, wantTargets)
			}
			if got := len(res.Config.SQLInstances); got != len(want) {
				t.Errorf("the background result lists %d instances, want %d", got, len(want))
			}
			// Whatever the mode, the instances stay known (for /sd and /probe)
			// and a probe does its instance's work.
			if n := len(ct.runner.Config().SQLInstances); n != 2 {
				t.Errorf("runner knows %d instances, want 2", n)
			}
			pr, err := ct.runner.Probe(context.Background(), "b", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if f := pr.Snapshot.SQL["b"]; f == nil || !f.Up {
				t.Errorf("probe of b: SQL facts %+v, want b up", f)
			}
		})
	}
}

// spnHolderFake writes one expected SPN per instance, held by its own
// account only, as the per-SPN lookup says.
type spnHolderFake struct{}

func (spnHolderFake) Update(_ context.Context, env *collector.Env, snap *facts.Snapshot) error {
	for _, inst := range env.Config.SQLInstances {
		acct := `CORP\svc_` + inst.Name
		snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: inst.Name, SPN: "MSSQLSvc/" + inst.Host + ":1433", ExpectedAccount: acct, Holders: []string{acct}})
	}
	return nil
}

func (spnHolderFake) Metrics(*facts.Snapshot, chan<- prometheus.Metric) {}

// A probe does not scan the forest but judges its instance's SPNs with the
// holders the last background scan saw (here a second holder the lookup
// missed), as the background cycle would, and reports nothing else of the
// scan: that is the fleet's, on /metrics.
func TestProbeJudgesItsSPNsWithTheLastScan(t *testing.T) {
	cfg := &config.Config{Global: config.Global{CollectorTimeout: config.Duration(time.Hour), MaxConcurrentInstances: 4}}
	cfg.SQLInstances = []config.SQLInstance{{Name: "a", Host: "a.corp.test"}}
	last := &facts.DuplicateSPNs{Scanned: true, Total: 2, Top: []facts.DuplicateSPN{
		{SPN: "MSSQLSvc/a.corp.test:1433", Accounts: []string{`CORP\intruder`, `CORP\svc_a`}},
		{SPN: "HTTP/elsewhere.corp.test", Accounts: []string{`CORP\x`, `CORP\y`}},
	}}
	r := NewRunner(cfg, slog.New(slog.DiscardHandler))
	r.collectors = []collector.Named{
		{Name: "fakedir", Phase: collector.PhaseDirectory, Collector: spnHolderFake{}},
		{Name: "spn", Phase: collector.PhaseDirectory, Collector: collector.NewSPNCollectorAfterScan(last)}, // no domains: does nothing itself
	}
	res, err := r.Probe(context.Background(), "a", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var dups []string
	for _, f := range res.Findings {
		if f.Check == "spn_duplicate" {
			dups = append(dups, f.Target)
		}
	}
	if !slices.Equal(dups, []string{"MSSQLSvc/a.corp.test:1433"}) {
		t.Errorf("probe's duplicate findings are about %q, want only a's SPN", dups)
	}
	if d := res.Snapshot.Duplicates; d == nil || d.Scanned || len(d.Top) != 1 {
		t.Errorf("probe's scan facts %+v: want a's entry only, not a scan result", d)
	}
}
