package cycle

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
)

// MetricsHandler serves /metrics from an exposition encoded once per
// completed cycle. The cycle's metrics (thousands of series for a large
// fleet) only change when a cycle completes, so they are encoded the first
// time a format is asked for after that, and every other scrape copies the
// bytes. The exporter's own state (build info, reloads: a few series) is
// gathered on every scrape, so a reload shows at once. The Go runtime and
// process metrics (about a hundred series) are gathered at most once per
// second per representation: gathering them costs about a millisecond of
// CPU, most of a scrape, and no scrape interval is short enough to see a
// value a second old. When they are due, one scrape gathers them while
// concurrent ones serve the previous bytes.
//
// The body is the cycle's families, in the order a registry would give
// them, then the state's, then the runtime's. Text parsers only need each
// family's lines to be together, which holds: the sets never share a name.
// A gzipped body is one gzip member per part, which every gzip reader
// (Prometheus' too) reads as one stream.
type MetricsHandler struct {
	last       func() *Result
	collectors []collector.Named
	live       prometheus.Gatherer
	runtime    prometheus.Gatherer
	// full serves requests the cache does not cover (name[] filters) from
	// a registry holding both sets.
	full   http.Handler
	logger *slog.Logger

	mu      sync.Mutex
	encoded *cycleEncodings

	runtimeMaxAge time.Duration
	now           func() time.Time
	runtimeMu     sync.Mutex
	runtimeByRep  map[exposition]*runtimeEncoding
}

// runtimeMaxAge is how long the runtime metrics' encoding is served before
// they are gathered again.
const runtimeMaxAge = time.Second

// runtimeEncoding is the runtime metrics in one representation; refresh is
// held by the scrape that gathers them again.
type runtimeEncoding struct {
	refresh sync.Mutex
	current atomic.Pointer[liveBytes]
}

type liveBytes struct {
	body []byte
	at   time.Time
}

// cycleEncodings are one cycle's exposition in every representation asked
// for so far; a new cycle replaces the whole set.
type cycleEncodings struct {
	res     *Result
	mu      sync.Mutex
	byShape map[exposition]*encodedCycle
}

// exposition is one representation: a content type (with its escaping
// scheme) and whether the body is gzipped.
type exposition struct {
	format expfmt.Format
	gzip   bool
}

type encodedCycle struct {
	once sync.Once
	body []byte
}

// NewMetricsHandler serves the runner's last completed cycle, the metrics
// of live (gathered per scrape: the exporter's own state) and those of
// runtime (gathered at most once a second: Go runtime and process). Neither
// may hold the cycle's collector.
func NewMetricsHandler(r *Runner, live, runtime prometheus.Gatherer, logger *slog.Logger) *MetricsHandler {
	return newMetricsHandler(r.Last, r.collectors, live, runtime, logger)
}

func newMetricsHandler(last func() *Result, collectors []collector.Named, live, runtime prometheus.Gatherer, logger *slog.Logger) *MetricsHandler {
	h := &MetricsHandler{last: last, collectors: collectors, live: live, runtime: runtime, logger: logger,
		runtimeMaxAge: runtimeMaxAge, now: time.Now, runtimeByRep: map[exposition]*runtimeEncoding{}}
	h.full = h.fullHandler()
	return h
}

func (h *MetricsHandler) fullHandler() http.Handler {
	cycle := prometheus.NewRegistry()
	cycle.MustRegister(&Exporter{last: h.last, collectors: h.collectors})
	return promhttp.HandlerFor(prometheus.Gatherers{cycle, h.live, h.runtime}, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(h.logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

func (h *MetricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL != nil && len(r.URL.Query()["name[]"]) > 0 {
		h.full.ServeHTTP(w, r)
		return
	}
	shape := exposition{
		format: expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...),
		gzip:   acceptsGzip(r.Header.Get("Accept-Encoding")),
	}
	cycle := h.cycleBody(shape)
	live := h.encode(h.live, shape)
	runtime := h.runtimeBody(shape)

	hdr := w.Header()
	hdr.Add("Vary", "Accept")
	hdr.Add("Vary", "Accept-Encoding")
	hdr.Set("Content-Type", string(shape.format))
	if shape.gzip {
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(cycle)+len(live)+len(runtime)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(cycle)
	_, _ = w.Write(live)
	_, _ = w.Write(runtime)
}

// cycleBody is the last cycle's families in the given representation,
// encoded by the first scrape that asks for it after the cycle completed;
// concurrent scrapes wait for that one encoding instead of repeating it.
func (h *MetricsHandler) cycleBody(shape exposition) []byte {
	res := h.last()
	if res == nil {
		return nil
	}
	h.mu.Lock()
	if h.encoded == nil || h.encoded.res != res {
		h.encoded = &cycleEncodings{res: res, byShape: map[exposition]*encodedCycle{}}
	}
	encs := h.encoded
	h.mu.Unlock()

	encs.mu.Lock()
	e, ok := encs.byShape[shape]
	if !ok {
		e = &encodedCycle{}
		encs.byShape[shape] = e
	}
	encs.mu.Unlock()
	e.once.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(&Exporter{last: func() *Result { return res }, collectors: h.collectors})
		e.body = h.encode(reg, shape)
	})
	return e.body
}

// runtimeBody is the runtime metrics in one representation, gathered again
// when the last gathering is older than runtimeMaxAge.
func (h *MetricsHandler) runtimeBody(shape exposition) []byte {
	h.runtimeMu.Lock()
	l, ok := h.runtimeByRep[shape]
	if !ok {
		l = &runtimeEncoding{}
		h.runtimeByRep[shape] = l
	}
	h.runtimeMu.Unlock()

	fresh := func(b *liveBytes) bool { return b != nil && h.now().Sub(b.at) < h.runtimeMaxAge }
	cur := l.current.Load()
	if fresh(cur) {
		return cur.body
	}
	if cur != nil && !l.refresh.TryLock() {
		return cur.body // another scrape is gathering them
	} else if cur == nil {
		l.refresh.Lock()
	}
	defer l.refresh.Unlock()
	if cur = l.current.Load(); fresh(cur) {
		return cur.body
	}
	at := h.now()
	body := h.encode(h.runtime, shape)
	l.current.Store(&liveBytes{body: body, at: at})
	return body
}

// encode gathers g and writes its families in one representation. As with
// promhttp's ContinueOnError, a gathering error is logged and whatever was
// gathered is still served.
func (h *MetricsHandler) encode(g prometheus.Gatherer, shape exposition) []byte {
	mfs, err := g.Gather()
	if err != nil {
		h.logger.Error("error gathering metrics", "err", err)
	}
	var buf bytes.Buffer
	var out interface {
		Write([]byte) (int, error)
	} = &buf
	var gz *gzip.Writer
	if shape.gzip {
		// A gzip writer's compressor state is most of a megabyte: reuse it.
		gz = gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(gz)
		gz.Reset(&buf)
		out = gz
	}
	enc := expfmt.NewEncoder(out, shape.format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			h.logger.Error("error encoding metric family", "family", mf.GetName(), "err", err)
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		_ = closer.Close()
	}
	if gz != nil {
		_ = gz.Close()
	}
	return buf.Bytes()
}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// acceptsGzip reports whether an Accept-Encoding header allows gzip, i.e.
// names it (or *) without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}
