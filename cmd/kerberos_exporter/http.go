package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/report"
)

const (
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 10 * time.Second
)

func newMux(runner *collector.Runner, rl *reloader, reg *prometheus.Registry, metricsPath string, logger *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError), ErrorHandling: promhttp.ContinueOnError}))
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
	mux.HandleFunc("/probe", func(w http.ResponseWriter, r *http.Request) { probeHandler(w, r, runner, logger) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		renderLanding(w, runner, metricsPath)
	})
	return mux
}

// probeHandler runs one collection for one SQL instance into a fresh
// registry, as blackbox_exporter does; debug=true shows what it did.
func probeHandler(w http.ResponseWriter, r *http.Request, runner *collector.Runner, logger *slog.Logger) {
	target := r.URL.Query().Get("target")
	if target == "" {
		http.Error(w, "target parameter is missing: give the name of a configured sql instance", http.StatusBadRequest)
		return
	}
	var logBuf bytes.Buffer
	probeLogger := promslog.New(&promslog.Config{Writer: &logBuf, Level: debugLevel()})
	res, err := runner.Probe(r.Context(), target, probeLogger)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.NewResultExporter(runner, res))
	if r.URL.Query().Get("debug") == "true" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Probe of %s\n\nLogs:\n%s\nMetrics:\n", target, logBuf.String())
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				fmt.Fprintf(w, "%s %v\n", mf.GetName(), m.String())
			}
		}
		return
	}
	logger.Debug("probe done", "target", target)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func debugLevel() *promslog.Level {
	l := promslog.NewLevel()
	_ = l.Set("debug")
	return l
}

// renderLanding serves the findings of the last completed cycle, per
// instance, as a self-contained HTML page.
func renderLanding(w http.ResponseWriter, runner *collector.Runner, metricsPath string) {
	writeLanding(w, runner.Last(), runner.Config(), metricsPath)
}

// writeLanding renders one result (nil before the first cycle completes);
// the page's template lives in internal/report.
func writeLanding(w http.ResponseWriter, res *collector.Result, cfg *config.Config, metricsPath string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = resultReport(res, cfg).WriteHTML(w, report.Page{MetricsPath: metricsPath, ProbePath: "/probe"})
}
