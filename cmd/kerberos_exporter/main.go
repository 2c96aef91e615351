// Command kerberos_exporter watches whether Kerberos really works for SQL
// Server and the services around it, and says why when it does not.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
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
	"github.com/kerberos-exporter/kerberos_exporter/internal/firstseen"
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
	stateDir := app.Flag("state.directory", "Directory where the exporter keeps state across restarts (when each finding and root cause was first seen). Default: $STATE_DIRECTORY, which systemd sets from StateDirectory=; without either, first-seen times are kept in memory only. The check command reads it but never writes to it.").
		PlaceHolder("DIR").String()
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
		printConfigProblems(stderr, *configFile, err)
		return checkConfigInvalid
	}
	logConfigWarnings(logger, cfg)
	if *configCheck {
		fmt.Fprintf(stdout, "%s: configuration is valid\n", *configFile)
		return checkOK
	}

	if *stateDir == "" {
		*stateDir = stateDirectoryFromSystemd()
	}
	switch cmd {
	case checkCmd.FullCommand():
		return runCheck(cfg, logger, stdout, *checkOutput, *fixScript, *stateDir)
	default:
		store, err := openFirstSeen(*stateDir, logger)
		if err != nil {
			logger.Error("state directory is unusable", "err", err)
			fmt.Fprintf(stderr, "%s: %v (set --state.directory to a directory the exporter may write to)\n", exporterName, err)
			return 1
		}
		if err := serve(cfg, *configFile, logger, webCfg, *metricsPath, probeOpts, landing, cycle.Background(*background), store); err != nil {
			logger.Error("serving failed", "err", err)
			return 1
		}
		return 0
	}
}

// stateDirectoryFromSystemd is the first directory of $STATE_DIRECTORY,
// which systemd sets (colon-separated) for StateDirectory=.
func stateDirectoryFromSystemd() string {
	dir, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":")
	return dir
}

// openFirstSeen checks the state directory and loads the first-seen times
// kept in it; without one they are kept in memory, and the log says so once.
func openFirstSeen(dir string, logger *slog.Logger) (*firstseen.Store, error) {
	if dir == "" {
		logger.Info("no state directory (--state.directory): first-seen times of findings are kept in memory and start afresh at each restart")
		return firstseen.NewMemory(logger), nil
	}
	if err := firstseen.PrepareDir(dir); err != nil {
		return nil, err
	}
	return firstseen.Open(dir, logger), nil
}

// printConfigProblems writes each defect of an invalid configuration once,
// one a line (file:line: field: what is wrong), then how many there are.
func printConfigProblems(w io.Writer, file string, err error) {
	problems := configProblems(err)
	for _, p := range problems {
		fmt.Fprintln(w, report.EscapeText(p))
	}
	fmt.Fprintf(w, "%s in %s\n", countProblems(len(problems)), report.EscapeText(file))
}

// configProblems splits a configuration error into its defects.
func configProblems(err error) []string {
	var errs config.Errors
	if errors.As(err, &errs) {
		out := make([]string, len(errs))
		for i, e := range errs {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

func serve(cfg *config.Config, configFile string, logger *slog.Logger, webCfg *web.FlagConfig, metricsPath string, probeOpts probeOptions, landing landingOptions, background cycle.Background, firstSeen *firstseen.Store) error {
	logger.Info("starting "+exporterName, "version", version.Info(), "config", configFile, "background", background)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	runner := cycle.NewRunner(cfg, logger)
	runner.SetBackground(background)
	runner.SetFirstSeen(firstSeen)
	reloader := newReloader(configFile, runner, logger)

	// The cycle's own metrics are not registered here: /metrics encodes
	// them once per cycle (cycle.MetricsHandler); reg holds the
	// exporter's own state, and newMux adds the runtime's.
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		reloader,
		versioncollector.NewCollector(exporterName),
	)

	loopDone := make(chan struct{})
	go func() { runner.Loop(ctx); close(loopDone) }()
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
		err := srv.Shutdown(shutdownCtx)
		// The loop's last act is saving the first-seen times.
		select {
		case <-loopDone:
		case <-shutdownCtx.Done():
			logger.Warn("the collection loop did not stop in time; first-seen times since the last cycle are not saved")
		}
		return err
	}
}
