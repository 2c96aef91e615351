package cycle

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// A SQL Server that accepts TCP and never answers (the stall stand-in,
// with a two-minute login timeout) must not hold the other instances'
// directory work: their expected SPNs are looked up in the real Samba DC
// while the stalled login is still waiting.
func TestWorldStalledInstanceDelaysOnlyItself(t *testing.T) {
	w := world.ForTest(t)
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	g := startStandIns(t, "sqlb", "sqld", "stall")

	cfg := standInConfig(t, w, g, []string{"sqlb", "stall", "sqld"}, "2m")
	cfg.Global.CollectionInterval = config.Duration(10 * time.Minute)
	cfg.Global.CollectorTimeout = config.Duration(5 * time.Minute)

	mine := []string{"sql", "linkedserver", "errorlog", "spn"}
	onlyCollectors(t, mine...)
	r := NewRunner(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	events := make(chan string, 100)
	r.progress = func(stage, instance string) { events <- stage + " " + instance }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Result)
	go func() { done <- r.RunOnce(ctx) }()
	waiting := map[string]bool{"directory sqlb": true, "directory sqld": true}
	guard := time.After(3 * time.Minute) // against hanging, not a speed check
	for len(waiting) > 0 {
		select {
		case ev := <-events:
			if ev == "sql stall" {
				t.Fatalf("the stalled login ended before the directory work of %v", waiting)
			}
			delete(waiting, ev)
		case <-guard:
			t.Fatalf("no %v", waiting)
		}
	}
	cancel() // the stalled login has made its point
	res := <-done

	for _, name := range []string{"sqlb", "sqld"} {
		if f := res.Snapshot.SQL[name]; f == nil || !f.Up {
			t.Errorf("%s: sql facts %+v, want up", name, f)
		}
	}
	holders := map[string][]string{}
	for _, e := range res.Snapshot.SPNs {
		if e.Target != "stall" && e.LookupError != "" {
			t.Errorf("%s %s: %s", e.Target, e.SPN, e.LookupError)
		}
		holders[e.Target+" "+e.SPN] = e.Holders
	}
	for key, want := range map[string][]string{
		"sqlb MSSQLSvc/sqlb.corp.test:1433": {`CORP\sqlsvc_b`},
		"sqld MSSQLSvc/sqld.corp.test:1433": {`CORP\wrongacct`},
	} {
		if got, ok := holders[key]; !ok || !slices.Equal(got, want) {
			t.Errorf("%s: holders %q (looked up: %v), want %q", key, got, ok, want)
		}
	}
	if f := res.Snapshot.SQL["stall"]; f == nil || f.Up {
		t.Errorf("stall: sql facts %+v, want down", f)
	}
}

// standInConfig watches the named stand-ins of g, logging in with SQL
// logins, in the world's domain; stall gets stallTimeout as its timeout.
func standInConfig(t testing.TB, w *world.World, g *tdsserver.Group, names []string, stallTimeout string) *config.Config {
	t.Helper()
	var in []world.Instance
	for _, name := range names {
		host, port, _ := net.SplitHostPort(g.Server(name).Addr())
		timeout := "10s"
		if name == "stall" {
			timeout = stallTimeout
		}
		in = append(in, world.Instance{Name: name, Address: host, Port: port, Timeout: timeout})
	}
	return w.Config(t, in, "")
}

// BenchmarkWorldCycle times whole collection cycles (every collector but
// kdc, which needs the exporter's own Kerberos identity) against the Samba
// DC and the SQL stand-ins sqla-sqld, without and with the stall stand-in
// (5 s login timeout). others-done-s is when the last of sqla-sqld had its
// directory facts: with a stalled instance it should stay near the cycle
// time without one. Figures, not assertions.
func BenchmarkWorldCycle(b *testing.B) {
	w := world.ForTest(b)
	b.Setenv(tdsserver.TestenvDirVar, w.Dir)
	g := startStandIns(b, "sqla", "sqlb", "sqlc", "sqld", "stall")
	for _, withStall := range []bool{false, true} {
		names := []string{"sqla", "sqlb", "sqlc", "sqld"}
		label := "stall=none"
		if withStall {
			names, label = append(names, "stall"), "stall=5s"
		}
		b.Run(label, func(b *testing.B) {
			cfg := standInConfig(b, w, g, names, "5s")
			r := NewRunner(cfg, slog.New(slog.DiscardHandler))
			var start time.Time
			var othersDone time.Duration
			r.progress = func(stage, instance string) {
				if stage == "directory" && instance != "stall" {
					othersDone = max(othersDone, time.Since(start))
				}
			}
			var total time.Duration
			for b.Loop() {
				start, othersDone = time.Now(), 0
				r.RunOnce(context.Background())
				total += othersDone
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "others-done-s")
		})
	}
}
