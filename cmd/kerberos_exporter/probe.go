package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/kerberos-exporter/kerberos_exporter/cycle"
)

// probeOptions bound /probe, with blackbox_exporter's names where it has them.
type probeOptions struct {
	// MaxConcurrent probes run at once; each holds LDAP and SQL connections.
	MaxConcurrent int
	// MaxQueued probes may wait for a slot; beyond that the answer is 503.
	MaxQueued int
	// TimeoutOffset is taken off Prometheus' scrape timeout
	// (X-Prometheus-Scrape-Timeout-Seconds), so that the answer arrives
	// before Prometheus gives up.
	TimeoutOffset time.Duration
	// DefaultTimeout is the probe's deadline when the header is absent.
	DefaultTimeout time.Duration
}

// maxProbeTimeout caps a probe's deadline (and is its deadline without the
// header), so that it always fits in the server's write timeout.
const maxProbeTimeout = 120 * time.Second

func defaultProbeOptions() probeOptions {
	return probeOptions{MaxConcurrent: 4, MaxQueued: 8, TimeoutOffset: 500 * time.Millisecond, DefaultTimeout: maxProbeTimeout}
}

func addProbeFlags(cmd *kingpin.CmdClause, o *probeOptions) {
	cmd.Flag("probe.max-concurrent", "How many /probe collections may run at once; each holds connections to the DCs and the SQL Server. Probes of the same target share one run.").
		Default(strconv.Itoa(o.MaxConcurrent)).IntVar(&o.MaxConcurrent)
	cmd.Flag("probe.max-queued", "How many /probe requests may wait for a free slot; beyond that they are answered 503.").
		Default(strconv.Itoa(o.MaxQueued)).IntVar(&o.MaxQueued)
	cmd.Flag("probe.timeout-offset", "Time taken off X-Prometheus-Scrape-Timeout-Seconds to make the whole probe's deadline.").
		Default(o.TimeoutOffset.String()).DurationVar(&o.TimeoutOffset)
}

// prober serves /probe: one collection for one SQL instance into a fresh
// registry, as blackbox_exporter does, bounded in number, in time, and
// shared by concurrent requests for the same target.
type prober struct {
	runner *cycle.Runner
	logger *slog.Logger
	opts   probeOptions
	slots  chan struct{}

	mu       sync.Mutex
	queued   int
	inflight map[probeKey]*probeRun
	runs     int // probe runs started, for tests
}

// probeRun is one collection shared by every request for its target that
// arrives while it runs.
type probeRun struct {
	done   chan struct{}
	res    *cycle.Result
	err    error
	status int // HTTP status for err
	// logs is written by the run's collectors, some of which may still
	// log after the run's deadline (a dial that returns late), so it is
	// read under its lock too.
	logs     lockedWriter
	duration time.Duration
}

func newProber(runner *cycle.Runner, logger *slog.Logger, opts probeOptions) *prober {
	opts.MaxConcurrent = max(opts.MaxConcurrent, 1)
	opts.MaxQueued = max(opts.MaxQueued, 0)
	return &prober{runner: runner, logger: logger, opts: opts, slots: make(chan struct{}, opts.MaxConcurrent), inflight: map[probeKey]*probeRun{}}
}

// timeout is the whole probe's deadline: Prometheus' scrape timeout minus
// the offset (blackbox_exporter's rule), or the default without the header.
func (p *prober) timeout(r *http.Request) (time.Duration, error) {
	h := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if h == "" {
		return p.opts.DefaultTimeout, nil
	}
	secs, err := strconv.ParseFloat(h, 64)
	if err != nil || secs <= 0 {
		return 0, fmt.Errorf("X-Prometheus-Scrape-Timeout-Seconds %q is not a positive number of seconds", h)
	}
	t := min(time.Duration(secs*float64(time.Second)), maxProbeTimeout)
	if t > p.opts.TimeoutOffset {
		t -= p.opts.TimeoutOffset
	}
	return t, nil
}

func (p *prober) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("target")
	if target == "" {
		http.Error(w, "target parameter is missing: give the name of a configured sql instance", http.StatusBadRequest)
		return
	}
	if !p.known(target) {
		http.Error(w, fmt.Sprintf("unknown target %q: not a configured sql instance", target), http.StatusBadRequest)
		return
	}
	timeout, err := p.timeout(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The run's deadline is the probe's; collectors honour it and the
	// run returns its (failed) facts just after. The request waits out the
	// offset as well, which is the margin it was made for, then gives up on
	// a run that did not stop.
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	wait, cancelWait := context.WithTimeout(r.Context(), timeout+p.opts.TimeoutOffset)
	defer cancelWait()

	run := p.join(ctx, probeKey{target, timeout})
	select {
	case <-run.done:
	case <-wait.Done():
		http.Error(w, fmt.Sprintf("probe of %s: no answer within the deadline of %s", target, timeout), http.StatusServiceUnavailable)
		return
	}
	if run.err != nil {
		http.Error(w, run.err.Error(), run.status)
		return
	}

	reg := prometheus.NewRegistry()
	// Success as blackbox_exporter means it: the target answered (the
	// exporter logged in to the instance) and every collector ran.
	success := 0.0
	if inst := run.res.Snapshot.SQL[target]; inst != nil && inst.Up {
		success = 1
	}
	for _, st := range run.res.Status {
		if !st.Success {
			success = 0
		}
	}
	probeSuccess := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_success", Help: "Whether the probe succeeded: the exporter logged in to the instance and every collector ran."})
	probeDuration := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_duration_seconds", Help: "How long the probe's collection took, in seconds."})
	probeSuccess.Set(success)
	probeDuration.Set(run.duration.Seconds())
	reg.MustRegister(cycle.NewResultExporter(p.runner, run.res), probeSuccess, probeDuration)

	if r.URL.Query().Get("debug") == "true" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Probe of %s\n\nLogs:\n%s\nMetrics:\n", target, run.logs.String())
		mfs, err := reg.Gather()
		if err != nil {
			fmt.Fprintf(w, "# gathering: %v\n", err)
		}
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			_ = enc.Encode(mf)
		}
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (p *prober) known(target string) bool {
	for _, inst := range p.runner.Config().SQLInstances {
		if inst.Name == target {
			return true
		}
	}
	return false
}

// probeKey is what concurrent probes must agree on to share a run: the
// target and the probe's timeout. A probe with a shorter timeout than the
// run in flight would otherwise wait past its own deadline (503, a failed
// scrape) and one with a longer timeout would get a result cut short.
type probeKey struct {
	target  string
	timeout time.Duration
}

// join returns the run in flight for key, or starts one. A started run
// waits for a slot (503 when too many already wait) and keeps its first
// request's deadline even if that request goes away, since others share it.
func (p *prober) join(ctx context.Context, key probeKey) *probeRun {
	target := key.target
	p.mu.Lock()
	if run, ok := p.inflight[key]; ok {
		p.mu.Unlock()
		return run
	}
	run := &probeRun{done: make(chan struct{})}
	p.inflight[key] = run
	p.mu.Unlock()

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if dl, ok := ctx.Deadline(); ok {
		runCtx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
	}
	go func() {
		defer cancel()
		defer func() {
			p.mu.Lock()
			delete(p.inflight, key)
			p.mu.Unlock()
			close(run.done)
		}()
		if !p.acquire(runCtx, run) {
			return
		}
		defer func() { <-p.slots }()
		p.mu.Lock()
		p.runs++
		p.mu.Unlock()
		logger := p.probeLogger(&run.logs, target)
		start := time.Now()
		run.res, run.err = p.runner.Probe(runCtx, target, logger)
		run.duration = time.Since(start)
		if run.err != nil {
			run.status = http.StatusBadRequest
		}
	}()
	return run
}

// acquire takes a slot, waiting in the queue if there is room in it.
func (p *prober) acquire(ctx context.Context, run *probeRun) bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
	}
	p.mu.Lock()
	if p.queued >= p.opts.MaxQueued {
		p.mu.Unlock()
		run.err = fmt.Errorf("too many probes: %d running and %d waiting (--probe.max-concurrent, --probe.max-queued); try again later or probe less often", p.opts.MaxConcurrent, p.opts.MaxQueued)
		run.status = http.StatusServiceUnavailable
		return false
	}
	p.queued++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.queued--
		p.mu.Unlock()
	}()
	select {
	case p.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		run.err = fmt.Errorf("no probe slot came free before the deadline: %d probes running (--probe.max-concurrent)", p.opts.MaxConcurrent)
		run.status = http.StatusServiceUnavailable
		return false
	}
}

// probeLogger writes everything to the probe's own buffer (shown by
// debug=true) and passes every record to the server log at debug level.
func (p *prober) probeLogger(buf *lockedWriter, target string) *slog.Logger {
	lvl := promslog.NewLevel()
	_ = lvl.Set("debug")
	own := promslog.New(&promslog.Config{Writer: buf, Level: lvl})
	return slog.New(teeHandler{own: own.Handler(), server: p.logger.Handler().WithAttrs([]slog.Attr{slog.String("probe_target", target)})})
}

// teeHandler sends a record to the probe's own log as it is, and to the
// server's log demoted to debug, so that probes never flood the server log
// but --log.level=debug shows them.
type teeHandler struct{ own, server slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.own.Enabled(ctx, l) || t.server.Enabled(ctx, slog.LevelDebug)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if t.own.Enabled(ctx, r.Level) {
		_ = t.own.Handle(ctx, r.Clone())
	}
	if t.server.Enabled(ctx, slog.LevelDebug) {
		d := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
		d.AddAttrs(slog.String("probe_level", r.Level.String()))
		r.Attrs(func(a slog.Attr) bool { d.AddAttrs(a); return true })
		return t.server.Handle(ctx, d)
	}
	return nil
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{own: t.own.WithAttrs(as), server: t.server.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{own: t.own.WithGroup(name), server: t.server.WithGroup(name)}
}

// lockedWriter: collectors log concurrently into one probe's buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// String is what was written so far.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
