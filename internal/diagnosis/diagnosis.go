// Package diagnosis is the judgement half of the exporter: it reads the facts
// one collection cycle gathered and returns findings, each with a plain
// explanation and the remediation that fixes it. It does no I/O, so every
// rule can be tested alone on a fact set.
package diagnosis

import (
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// Severity of a finding.
type Severity string

const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Finding is one thing that is wrong, who it is about, and how to fix it.
type Finding struct {
	Check    string   // rule name, e.g. "spn_missing"
	Severity Severity //
	Target   string   // instance, "instance/linked server", account or SPN
	Instance string   // SQL instance it belongs to, "" for fleet-wide
	Summary  string   // one line
	Detail   string   // plain explanation: what happens because of it
	Fix      string   // what to do, in words
	// Script holds reviewable commands (PowerShell/cmd) that would fix it;
	// the exporter never runs them.
	Script []string
}

// Evaluate runs every rule on the snapshot. The result is sorted and has at
// most one finding per (check, target).
func Evaluate(cfg *config.Config, snap *facts.Snapshot) []Finding {
	return nil
}
