package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
)

var (
	reloadSuccessDesc = prometheus.NewDesc("kerberos_exporter_config_last_reload_successful",
		"Whether the last configuration reload succeeded (1) or was refused (0).", nil, nil)
	reloadTimeDesc = prometheus.NewDesc("kerberos_exporter_config_last_reload_success_timestamp_seconds",
		"When the configuration was last loaded successfully, as a Unix time.", nil, nil)
)

// reloader re-reads the configuration on SIGHUP and POST /-/reload. A bad
// new file is refused: the old configuration keeps running.
type reloader struct {
	file   string
	runner *cycle.Runner
	logger *slog.Logger

	mu          sync.Mutex
	ok          bool
	lastSuccess time.Time
}

func newReloader(file string, runner *cycle.Runner, logger *slog.Logger) *reloader {
	return &reloader{file: file, runner: runner, logger: logger, ok: true, lastSuccess: time.Now()}
}

func (r *reloader) reload() error {
	cfg, err := config.Load(r.file)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.ok = false
		problems := configProblems(err)
		for _, p := range problems {
			r.logger.Error("configuration problem", "problem", p)
		}
		r.logger.Error("configuration reload refused; the previous configuration stays in force", "file", r.file, "problems", len(problems))
		return err
	}
	r.ok = true
	r.lastSuccess = time.Now()
	r.runner.SetConfig(cfg)
	r.logger.Info("configuration reloaded", "file", r.file)
	logConfigWarnings(r.logger, cfg)
	return nil
}

func (r *reloader) watchSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = r.reload() // logged inside
		}
	}
}

func (r *reloader) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadSuccessDesc
	ch <- reloadTimeDesc
}

func (r *reloader) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := 0.0
	if r.ok {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(reloadSuccessDesc, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(reloadTimeDesc, prometheus.GaugeValue, float64(r.lastSuccess.Unix()))
}

// logConfigWarnings logs the settings that are allowed but weaken security.
func logConfigWarnings(logger *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		logger.Warn("insecure configuration", "warning", w)
	}
}
