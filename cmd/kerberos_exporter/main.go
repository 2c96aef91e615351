// Command kerberos_exporter watches whether Kerberos really works for SQL
// Server and the services around it, and says why when it does not.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
	"github.com/kerberos-exporter/kerberos_exporter/internal/report"
)

const exporterName = "kerberos_exporter"

// defaultListenAddress: 9100-9999 is fully allocated on Prometheus' default
// port list; 19088 (88 for Kerberos) stays clear of it and of the sequential
// allocations that continue from 10000.
const defaultListenAddress = ":19088"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr *os.File) int {
	app := kingpin.New(exporterName, "Prometheus exporter that watches whether Kerberos works for SQL Server (SPNs, delegation, clock skew, DNS, linked-server hops) and says why when it does not.")
	app.HelpFlag.Short('h')
	app.Version(version.Print(exporterName))
	configFile := app.Flag("config.file", "Path to the configuration file.").Default("kerberos_exporter.yml").String()
	configCheck := app.Flag("config.check", "Validate the configuration file (and resolve its secrets), then exit: 0 if valid, 3 if not.").Bool()
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)
	collector.AddFlags(app)

	serveCmd := app.Command("serve", "Serve metrics, the findings report and /probe (the default).").Default()
	webCfg := webflag.AddFlags(serveCmd, defaultListenAddress)
	metricsPath := serveCmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
	probeOpts := defaultProbeOptions()
	addProbeFlags(serveCmd, &probeOpts)
	landing := defaultLandingOptions()
	serveCmd.Flag("web.runbook-url-prefix", "Where the landing page links each cause's runbook: this prefix, then <alert>.md. The default is the runbooks built into the exporter, served under /runbooks/; point it at your own copy (a wiki, the repository's docs/runbooks/), or set it empty for no links.").
		Default(landing.RunbookURLPrefix).StringVar(&landing.RunbookURLPrefix)
	background := serveCmd.Flag("collection.background", "What the background loop collects for /metrics: all (every SQL instance and the fleet-wide work) or fleet (only the fleet-wide work: DC clocks, delegated users, the services (DNS, SPNs), the forest-wide SPN scan; each instance is collected by its /probe alone, for replicas sharded by hashmod).").
		Default(string(cycle.BackgroundAll)).Enum(string(cycle.BackgroundAll), string(cycle.BackgroundFleet))

	checkCmd := app.Command("check", "Run one collection, print the findings. Exit 0: nothing critical; 1: a critical finding; 2: a collector failed; 3: invalid configuration.")
	checkOutput := checkCmd.Flag("output", "Report format: text or json.").Default("text").Enum("text", "json")
	fixScript := checkCmd.Flag("fix-script", "Also write the remediations as a reviewable PowerShell script to this file.").String()

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", exporterName, err)
		return checkConfigInvalid
	}
	// Names from AD and SQL Server reach the log: escape what a terminal would act on.
	logCfg.Writer = report.LogWriter(stderr)
	logger := promslog.New(logCfg)

	cfg, err := config.Load(*configFile)
	if err != nil {
		logger.Error("configuration is invalid", "file", *configFile, "err", err)
		fmt.Fprintf(stderr, "%v\n", err)
		return checkConfigInvalid
	}
	logConfigWarnings(logger, cfg)
	if *configCheck {
		fmt.Fprintf(stdout, "%s: configuration is valid\n", *configFile)
		return checkOK
	}

	switch cmd {
	case checkCmd.FullCommand():
		return runCheck(cfg, logger, stdout, *checkOutput, *fixScript)
	default:
		if err := serve(cfg, *configFile, logger, webCfg, *metricsPath, probeOpts, landing, cycle.Background(*background)); err != nil {
			logger.Error("serving failed", "err", err)
			return 1
		}
		return 0
	}
}

func serve(cfg *config.Config, configFile string, logger *slog.Logger, webCfg *web.FlagConfig, metricsPath string, probeOpts probeOptions, landing landingOptions, background cycle.Background) error {
	logger.Info("starting "+exporterName, "version", version.Info(), "config", configFile, "background", background)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	runner := cycle.NewRunner(cfg, logger)
	runner.SetBackground(background)
	reloader := newReloader(configFile, runner, logger)

	// The cycle's own metrics are not registered here: /metrics encodes
	// them once per cycle (cycle.MetricsHandler); reg holds the
	// exporter's own state, and newMux adds the runtime's.
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		reloader,
		versioncollector.NewCollector(exporterName),
	)

	go runner.Loop(ctx)
	go reloader.watchSIGHUP(ctx)

	mux := newMux(runner, reloader, reg, metricsPath, logger, probeOpts, landing)
	srv := newHTTPServer(mux, defaultServerTimeouts)
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, webCfg, logger) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		logger.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}
