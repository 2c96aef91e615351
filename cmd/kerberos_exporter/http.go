package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
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
func newMux(runner *cycle.Runner, rl *reloader, reg *prometheus.Registry, metricsPath string, logger *slog.Logger, probeOpts probeOptions) *http.ServeMux {
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
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		renderLanding(w, runner, metricsPath)
	})
	return mux
}

// renderLanding serves the findings of the last completed cycle, per
// instance, as a self-contained HTML page.
func renderLanding(w http.ResponseWriter, runner *cycle.Runner, metricsPath string) {
	writeLanding(w, runner.Last(), runner.Config(), metricsPath)
}

// writeLanding renders one result (nil before the first cycle completes);
// the page's template lives in internal/report.
func writeLanding(w http.ResponseWriter, res *cycle.Result, cfg *config.Config, metricsPath string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = resultReport(res, cfg).WriteHTML(w, report.Page{MetricsPath: metricsPath, ProbePath: "/probe"})
}
