package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
	"github.com/kerberos-exporter/kerberos_exporter/internal/firstseen"
	"github.com/kerberos-exporter/kerberos_exporter/internal/report"
)

// Exit codes of the check subcommand (and of --config.check: 0 or 3).
// A script can tell "Kerberos is broken" (1) from "the exporter could not
// tell" (2) and "the exporter was set up wrong" (3).
const (
	checkOK            = 0 // every collector ran, no finding is critical
	checkCritical      = 1 // some finding is critical
	checkFailed        = 2 // a collector failed (the report is incomplete), or the report or fix script could not be written
	checkConfigInvalid = 3 // the configuration file or the command line is invalid
)

// runCheck runs one collection, prints its findings grouped by instance
// (text or JSON) and, when asked, writes the remediations as a PowerShell
// script for review. It exits 1 when a finding is critical, else 2 when a
// collector failed.
//
// With a state directory, the findings the server has seen before carry its
// first-seen times (new ones this run's time); the check never writes it.
func runCheck(cfg *config.Config, logger *slog.Logger, stdout *os.File, output, fixScript, stateDir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runner := cycle.NewRunner(cfg, logger)
	if stateDir != "" {
		runner.SetFirstSeen(firstseen.OpenReadOnly(stateDir, logger))
	}
	res := runner.RunOnce(ctx)
	// check is one collection by design: "first since start" would say nothing.
	res.FirstCycle = false
	code, err := writeCheck(stdout, resultReport(res, cfg), output, fixScript)
	if err != nil {
		logger.Error("check failed", "err", err)
		return checkFailed
	}
	if fixScript != "" {
		logger.Info("fix script written; review it before running any of it", "file", fixScript)
	}
	return code
}

// writeCheck writes the fix script (if a file is given) and the report.
func writeCheck(w io.Writer, rep *report.Report, output, fixScript string) (int, error) {
	if fixScript != "" {
		var script bytes.Buffer
		if err := rep.WriteFixScript(&script); err != nil {
			return checkFailed, err
		}
		if err := os.WriteFile(fixScript, script.Bytes(), 0o600); err != nil {
			return checkFailed, fmt.Errorf("writing the fix script: %w", err)
		}
	}
	var err error
	if output == "json" {
		err = rep.WriteJSON(w)
	} else {
		err = rep.WriteText(w)
	}
	if err != nil {
		return checkFailed, fmt.Errorf("writing the report: %w", err)
	}
	if rep.HasCritical() {
		return checkCritical, nil
	}
	if !rep.Completed || len(rep.FailedCollectors()) > 0 {
		return checkFailed, nil
	}
	return checkOK, nil
}

// resultReport is the report of a completed cycle; before the first one
// (res nil) it is pending, with cfg's instances.
func resultReport(res *cycle.Result, cfg *config.Config) *report.Report {
	if res == nil {
		return report.Pending(cfg)
	}
	collectors := make([]report.Collector, 0, len(res.Status))
	for name, st := range res.Status {
		collectors = append(collectors, report.Collector{Name: name, Success: st.Success, Error: st.Error, Duration: st.Duration, Incomplete: st.Incomplete()})
	}
	rep := report.New(res.Config, res.Findings, collectors, res.Snapshot.Finished)
	rep.FirstCycle = res.FirstCycle
	// The cycle's own causes: the same grouping, stamped with their
	// first-seen times by the runner's store.
	if res.Causes != nil {
		rep.Causes = res.Causes
	}
	return rep
}
