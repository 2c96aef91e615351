package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
	"github.com/kerberos-exporter/kerberos_exporter/docs"
	"github.com/kerberos-exporter/kerberos_exporter/internal/report"
)

const (
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 10 * time.Second
)

// serverTimeouts bound every connection: a client that sends slowly, reads
// slowly or holds an idle keep-alive connection open is cut off. Requests
// carry no body worth waiting for; a response may take as long as the
// longest probe (maxProbeTimeout) and a little more to write.
type serverTimeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

var defaultServerTimeouts = serverTimeouts{
	ReadHeader: readHeaderTimeout,
	Read:       30 * time.Second,
	Write:      maxProbeTimeout + 15*time.Second,
	Idle:       30 * time.Second,
}

func newHTTPServer(h http.Handler, t serverTimeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
}

// newMux serves the runner's last cycle on metricsPath, encoded once per
// cycle, followed by the metrics of reg (the exporter's own state) and of
// the Go runtime and the process.
func newMux(runner *cycle.Runner, rl *reloader, reg *prometheus.Registry, metricsPath string, logger *slog.Logger, probeOpts probeOptions, landing landingOptions) *http.ServeMux {
	runtime := prometheus.NewRegistry()
	runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle(metricsPath, cycle.NewMetricsHandler(runner, reg, runtime, logger))
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "use POST to reload the configuration", http.StatusMethodNotAllowed)
			return
		}
		if err := rl.reload(); err != nil {
			http.Error(w, "configuration refused, the previous one stays in force:\n"+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "configuration reloaded")
	})
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	mux.Handle("/probe", newProber(runner, logger, probeOpts))
	mux.HandleFunc("/sd", sdHandler(runner.Config))
	mux.Handle("/runbooks/", runbookHandler())
	last := landing.last
	if last == nil {
		last = runner.Last
	}
	var pages landingCache
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		page, err := pages.get(last(), runner.Config(), metricsPath, landing.RunbookURLPrefix)
		if err != nil {
			http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		page.write(w, r)
	})
	return mux
}

// landingCache keeps the last rendered page: it changes once a cycle (or
// a reload), while a person may reload it, or leave it open, far more
// often.
type landingCache struct {
	mu   sync.Mutex
	res  *cycle.Result
	cfg  *config.Config
	page *landingPage
}

func (c *landingCache) get(res *cycle.Result, cfg *config.Config, metricsPath, runbookURLPrefix string) (*landingPage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.page != nil && c.res == res && c.cfg == cfg {
		return c.page, nil
	}
	page, err := renderLanding(res, cfg, metricsPath, runbookURLPrefix)
	if err != nil {
		return nil, err
	}
	c.res, c.cfg, c.page = res, cfg, page
	return page, nil
}

// defaultRunbookURLPrefix links the landing page's causes to the runbooks
// the exporter itself serves (runbookHandler).
const defaultRunbookURLPrefix = "/runbooks/"

// landingOptions shape the landing page.
type landingOptions struct {
	// RunbookURLPrefix is put before "<alert>.md" to link a cause to its
	// runbook; empty means no runbook links.
	RunbookURLPrefix string
	// last, when set, replaces the runner's last result (tests).
	last func() *cycle.Result
}

func defaultLandingOptions() landingOptions {
	return landingOptions{RunbookURLPrefix: defaultRunbookURLPrefix}
}

// landingPage is the triage page of one result, plain and gzipped.
type landingPage struct{ plain, gzipped []byte }

// renderLanding renders one result (nil before the first cycle completes)
// as the triage page (internal/report).
func renderLanding(res *cycle.Result, cfg *config.Config, metricsPath, runbookURLPrefix string) (*landingPage, error) {
	var page, zipped bytes.Buffer
	if err := resultReport(res, cfg).WriteHTML(&page, report.Page{MetricsPath: metricsPath, ProbePath: "/probe", RunbookURLPrefix: runbookURLPrefix}); err != nil {
		return nil, err
	}
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(page.Bytes())
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &landingPage{plain: page.Bytes(), gzipped: zipped.Bytes()}, nil
}

// write serves the page, compressed when the client takes gzip. The page
// runs only its own inline style and script (report.LandingCSP).
func (p *landingPage) write(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", report.LandingCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Encoding")
	if !acceptsGzip(r) {
		_, _ = w.Write(p.plain)
		return
	}
	h.Set("Content-Encoding", "gzip")
	_, _ = w.Write(p.gzipped)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// runbookName is what a runbook's file is called: the alert's name.
var runbookName = regexp.MustCompile(`^[A-Za-z0-9_-]+\.md$`)

// runbookHandler serves the runbooks built into the exporter as plain
// text, so that the page's links work where the repository cannot be
// reached, and match the running version.
func runbookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/runbooks/")
		if !runbookName.MatchString(name) {
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(docs.Runbooks, "runbooks/"+name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b)
	})
}
