package cycle

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// countingCollector counts how often its metrics are built.
type countingCollector struct{ builds *atomic.Int32 }

func (countingCollector) Update(context.Context, *collector.Env, *facts.Snapshot) error { return nil }
func (c countingCollector) Metrics(_ *facts.Snapshot, ch chan<- prometheus.Metric) {
	c.builds.Add(1)
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("kerberos_test_builds", "Test.", nil, nil), prometheus.GaugeValue, 1)
}

// testMetricsHandler serves *cur with the fleet's collectors plus a counting
// one, and live and runtime registries whose gauges change on every gather.
func testMetricsHandler(t *testing.T, cur *atomic.Pointer[Result]) (*MetricsHandler, *atomic.Int32, prometheus.Gatherer) {
	t.Helper()
	builds := &atomic.Int32{}
	collectors := append(collector.Enabled(), collector.Named{Name: "counting", Collector: countingCollector{builds}})
	live := prometheus.NewRegistry()
	var gathers atomic.Int32
	live.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_live_gathers", Help: "Test."}, func() float64 {
		return float64(gathers.Add(1))
	}))
	runtime := prometheus.NewRegistry()
	var runtimeGathers atomic.Int32
	runtime.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_runtime_gathers", Help: "Test."}, func() float64 {
		return float64(runtimeGathers.Add(1))
	}))
	h := newMetricsHandler(cur.Load, collectors, live, runtime, slog.New(slog.DiscardHandler))
	return h, builds, live
}

func withCounting(res *Result) *Result {
	res.Status["counting"] = Status{Success: true}
	return res
}

func scrape(t *testing.T, h http.Handler, accept string, gz bool) (body []byte, contentType string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body = rec.Body.Bytes()
	if got := rec.Header().Get("Content-Encoding"); (got == "gzip") != gz {
		t.Fatalf("Content-Encoding = %q, want gzip: %v", got, gz)
	}
	if gz {
		r, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
	return body, rec.Header().Get("Content-Type")
}

// registryBody is what promhttp serves for g, uncompressed.
func registryBody(t *testing.T, g prometheus.Gatherer, accept string) []byte {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(g, promhttp.HandlerOpts{DisableCompression: true}).ServeHTTP(rec, req)
	return rec.Body.Bytes()
}

func TestMetricsHandlerServesTheCycleEncodedOnce(t *testing.T) {
	var cur atomic.Pointer[Result]
	cur.Store(withCounting(fleetResult(3)))
	h, builds, _ := testMetricsHandler(t, &cur)

	cycleRegistry := func(res *Result) prometheus.Gatherer {
		reg := prometheus.NewRegistry()
		reg.MustRegister(&Exporter{last: func() *Result { return res }, collectors: h.collectors})
		return reg
	}

	shapes := []struct{ name, accept string }{
		{"text", ""},
		{"protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"},
	}
	for _, s := range shapes {
		for _, gz := range []bool{false, true} {
			t.Run(s.name+map[bool]string{false: "", true: "+gzip"}[gz], func(t *testing.T) {
				want := registryBody(t, cycleRegistry(cur.Load()), s.accept)
				before := builds.Load()
				for range 3 {
					got, ct := scrape(t, h, s.accept, gz)
					if !bytes.HasPrefix(got, want) {
						t.Fatalf("the body does not start with the registry's exposition of the cycle (%s)", ct)
					}
					if s.name == "text" && !strings.Contains(string(got[len(want):]), "test_live_gathers") {
						t.Fatalf("live metrics missing after the cycle's:\n%s", got[len(want):])
					}
				}
				if n := builds.Load() - before; n != 1 {
					t.Errorf("three scrapes built the cycle's metrics %d times, want once", n)
				}
			})
		}
	}

	// The whole text body parses as the cycle's and the live families together.
	body, _ := scrape(t, h, "", true)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the body does not parse as one exposition: %v", err)
	}
	mfs, err := prometheus.Gatherers{cycleRegistry(cur.Load()), h.live, h.runtime}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != len(mfs) {
		t.Errorf("parsed %d families, the registries have %d", len(parsed), len(mfs))
	}
	for _, mf := range mfs {
		p, ok := parsed[mf.GetName()]
		if !ok || len(p.Metric) != len(mf.Metric) {
			t.Errorf("family %s: served %v, registry has %d series", mf.GetName(), p, len(mf.Metric))
		}
	}

	// A new cycle replaces the bytes.
	if strings.Contains(string(body), `sql_instance="sql004"`) {
		t.Fatal("the 3-instance fleet already shows sql004")
	}
	next := withCounting(fleetResult(5))
	cur.Store(next)
	before := builds.Load()
	body, _ = scrape(t, h, "", false)
	if n := builds.Load() - before; n != 1 {
		t.Errorf("the new cycle's first scrape built its metrics %d times, want once", n)
	}
	if !bytes.HasPrefix(body, registryBody(t, cycleRegistry(next), "")) || !strings.Contains(string(body), `sql_instance="sql004"`) {
		t.Fatal("after a new cycle the body is not the new cycle's exposition")
	}
}

func TestMetricsHandlerConcurrentScrapesShareOneEncoding(t *testing.T) {
	var cur atomic.Pointer[Result]
	cur.Store(withCounting(fleetResult(50)))
	h, builds, _ := testMetricsHandler(t, &cur)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { scrape(t, h, "", true) })
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Errorf("20 concurrent scrapes built the cycle's metrics %d times, want 1", n)
	}
}

func TestMetricsHandlerBeforeTheFirstCycle(t *testing.T) {
	var cur atomic.Pointer[Result]
	h, _, _ := testMetricsHandler(t, &cur)
	body, _ := scrape(t, h, "", false)
	if !strings.HasPrefix(string(body), "# HELP test_live_gathers") || !strings.Contains(string(body), "test_runtime_gathers") {
		t.Errorf("before the first cycle only the live metrics are served, got:\n%s", body)
	}
}

func TestMetricsHandlerNameFilterUsesTheRegistry(t *testing.T) {
	var cur atomic.Pointer[Result]
	cur.Store(withCounting(fleetResult(2)))
	h, _, _ := testMetricsHandler(t, &cur)
	req := httptest.NewRequest("GET", "/metrics?name[]=kerberos_sql_up", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := rec.Body.String()
	if !strings.Contains(body, "kerberos_sql_up{") || strings.Contains(body, "test_live_gathers") || strings.Contains(body, "test_runtime_gathers") || strings.Contains(body, "kerberos_finding") {
		t.Errorf("name[]=kerberos_sql_up served:\n%s", body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                       false,
		"gzip":                   true,
		"deflate, gzip;q=0.5":    true,
		"gzip;q=0":               false,
		"identity":               false,
		"*":                      true,
		"zstd, GZIP ; q=1.0, br": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestMetricsHandlerGathersRuntimeMetricsOncePerSecond(t *testing.T) {
	var cur atomic.Pointer[Result]
	cur.Store(withCounting(fleetResult(1)))
	h, _, _ := testMetricsHandler(t, &cur)
	clock := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return clock }
	gathers := func() (live, runtime string) {
		body, _ := scrape(t, h, "", true)
		line := func(name string) string {
			i := strings.Index(string(body), "\n"+name+" ")
			if i < 0 {
				t.Fatalf("no %s in:\n%s", name, body)
			}
			l, _, _ := strings.Cut(string(body[i+1:]), "\n")
			return l
		}
		return line("test_live_gathers"), line("test_runtime_gathers")
	}
	live1, runtime1 := gathers()
	live2, runtime2 := gathers()
	if runtime2 != runtime1 {
		t.Errorf("within a second the runtime metrics were gathered again: %q then %q", runtime1, runtime2)
	}
	if live2 == live1 {
		t.Errorf("the exporter's own state was not gathered on the second scrape: still %q", live2)
	}
	clock = clock.Add(runtimeMaxAge)
	if _, runtime3 := gathers(); runtime3 == runtime1 {
		t.Errorf("a second later the runtime metrics were not gathered again: still %q", runtime3)
	}
}
