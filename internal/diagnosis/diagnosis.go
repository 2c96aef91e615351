// Package diagnosis is the judgement half of the exporter: it reads the facts
// one collection cycle gathered and returns findings, each with a plain
// explanation and the remediation that fixes it. It does no I/O, so every
// rule can be tested alone on a fact set.
package diagnosis

import (
	"sort"
	"strings"
	"time"

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

// Rank orders severities, most severe first.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 0
	case Warning:
		return 1
	default:
		return 2
	}
}

// Finding is one thing that is wrong, who it is about, and how to fix it.
type Finding struct {
	Check    string   `json:"check"`    // rule name, e.g. "spn_missing"
	Severity Severity `json:"severity"` //
	Target   string   `json:"target"`   // instance, "instance/linked server", account or SPN
	Instance string   `json:"instance"` // SQL instance (or service) it belongs to, "" for fleet-wide
	Summary  string   `json:"summary"`  // one line
	Detail   string   `json:"detail"`   // plain explanation: what happens because of it
	Fix      string   `json:"fix"`      // what to do, in words
	// Script holds reviewable commands (PowerShell/cmd) that would fix it;
	// the exporter never runs them.
	Script []string `json:"script,omitempty"`
	// Cause and Subject place it under its root cause (see Causes): the
	// kind of cause, one of CauseKinds ("" for the first kind that lists
	// its check), and the one thing that cause's fix changes, such as an
	// account, a DC, a host or a domain ("" for its target).
	Cause   string `json:"cause,omitempty"`
	Subject string `json:"subject,omitempty"`
	// CausedBy are the findings of the same snapshot that explain this one,
	// most telling first: it is shown under the cause of the first of them
	// that is present, and under its own cause when none is.
	CausedBy []FindingRef `json:"caused_by,omitempty"`
	// FirstSeen is when this (check, target) was first seen active, kept
	// across restarts in the state directory (zero when unknown).
	FirstSeen time.Time `json:"first_seen,omitzero"`
}

// FindingRef names a finding by its check and target.
type FindingRef struct {
	Check  string `json:"check"`
	Target string `json:"target"`
}

// Ref names the finding.
func (f Finding) Ref() FindingRef { return FindingRef{f.Check, f.Target} }

// rules run in this order; each reads only the facts and the configuration.
var rules = []func(*input) []Finding{
	spnFindings,
	registrationFindings,
	delegationFindings,
	userFindings,
	accountFindings,
	localAccountFindings,
	sqlFindings,
	linkedServerFindings,
	clockFindings,
	kdcFindings,
	rc4Findings,
	dnsFindings,
	cnameFindings,
	dcFindings,
}

// Evaluate runs every rule on the snapshot. The result is sorted (most
// severe first, then by check and target) and has at most one finding per
// (check, target), as the kerberos_finding metric requires.
func Evaluate(cfg *config.Config, snap *facts.Snapshot) []Finding {
	if cfg == nil || snap == nil {
		return nil
	}
	in := newInput(cfg, snap)
	var all []Finding
	for _, rule := range rules {
		all = append(all, rule(in)...)
	}
	return normalize(all)
}

// normalize sorts findings and keeps one per (check, target): rules are
// written so that keys do not collide, but the configuration may name one
// SPN or account for two targets; then the more severe finding stays and, if
// the two belonged to different instances, it becomes fleet-wide.
func normalize(fs []Finding) []Finding {
	SortFindings(fs)
	out := fs[:0]
	seen := map[string]int{}
	for _, f := range fs {
		key := f.Check + "\x00" + strings.ToLower(f.Target)
		if i, ok := seen[key]; ok {
			if out[i].Instance != f.Instance {
				out[i].Instance = ""
			}
			continue
		}
		seen[key] = len(out)
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// SortFindings orders findings most severe first, then by check, then by
// target ignoring case: the one order of findings everywhere they are shown.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() < b.Severity.Rank()
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return strings.ToLower(a.Target) < strings.ToLower(b.Target)
	})
}
