package diagnosis

import (
	"sort"
	"strings"
	"time"
)

// Cause is one root cause: the findings that share one thing to fix (one
// account, one missing delegation, one DC clock, one enc-type setting, one
// SPN form policy) and the one fix for it. A person reads causes first;
// the findings stay available underneath.
type Cause struct {
	// Cause is the kind of cause (label cause of kerberos_root_cause),
	// e.g. "service_account_cannot_delegate".
	Cause    string   `json:"cause"`
	Severity Severity `json:"severity"` // the worst of its findings
	// Subject is the one thing the fix changes: an account, a DC, a
	// domain, a host (label subject).
	Subject string `json:"subject"`
	Summary string `json:"summary"` // one line
	Detail  string `json:"detail"`  // why it matters
	Fix     string `json:"fix"`     // what to do, in words, once
	// Script is the fix's reviewable commands, each once.
	Script []string `json:"script,omitempty"`
	// Runbook is the alert whose runbook applies (docs/runbooks/NAME.md).
	Runbook string `json:"runbook,omitempty"`
	// Affected are the distinct targets of its findings; Instances the
	// distinct instances they belong to ("" excluded), both sorted.
	Affected  []string `json:"affected"`
	Instances []string `json:"instances"`
	// Findings are the findings it explains, in SortFindings order.
	Findings []Finding `json:"findings"`
	// FirstSeen is when the cause was first seen (zero when unknown).
	FirstSeen time.Time `json:"first_seen,omitzero"`
}

// Key identifies a cause across cycles: its kind and subject.
func (c Cause) Key() string { return c.Cause + "\x00" + strings.ToLower(c.Subject) }

// Causes groups findings into root causes, ordered by severity, then by
// blast radius (more affected first), then by cause and subject.
//
// Placeholder grouping: one cause per (check, fix). The grouping rules
// replace it.
func Causes(findings []Finding) []Cause {
	index := map[string]int{}
	var out []Cause
	for _, f := range findings {
		key := f.Check + "\x00" + f.Fix
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, Cause{Cause: f.Check, Severity: f.Severity, Subject: f.Target, Summary: f.Summary, Detail: f.Detail, Fix: f.Fix, Script: f.Script, Runbook: runbookOf(f)})
		}
		c := &out[i]
		if f.Severity.Rank() < c.Severity.Rank() {
			c.Severity = f.Severity
		}
		c.Findings = append(c.Findings, f)
	}
	for i := range out {
		finishCause(&out[i])
	}
	SortCauses(out)
	return out
}

// finishCause fills Affected and Instances from the findings.
func finishCause(c *Cause) {
	SortFindings(c.Findings)
	targets, instances := map[string]bool{}, map[string]bool{}
	c.Affected, c.Instances = nil, nil
	for _, f := range c.Findings {
		if !targets[strings.ToLower(f.Target)] {
			targets[strings.ToLower(f.Target)] = true
			c.Affected = append(c.Affected, f.Target)
		}
		if f.Instance != "" && !instances[f.Instance] {
			instances[f.Instance] = true
			c.Instances = append(c.Instances, f.Instance)
		}
	}
	sort.Strings(c.Affected)
	sort.Strings(c.Instances)
}

// runbookOf is the alert whose runbook covers a finding.
func runbookOf(f Finding) string {
	c, ok := LookupCheck(f.Check)
	if !ok {
		return ""
	}
	if a := c.AlertBySeverity[f.Severity]; a != "" {
		return a
	}
	if c.Alert != "" {
		return c.Alert
	}
	switch f.Severity {
	case Critical:
		return "KerberosFindingCritical"
	case Warning:
		return "KerberosFindingWarning"
	}
	return "KerberosFindingInfo"
}

// SortCauses orders causes most severe first, then by blast radius, then
// by cause and subject: the one order of causes everywhere they are shown.
func SortCauses(cs []Cause) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() < b.Severity.Rank()
		}
		if len(a.Affected) != len(b.Affected) {
			return len(a.Affected) > len(b.Affected)
		}
		if a.Cause != b.Cause {
			return a.Cause < b.Cause
		}
		return strings.ToLower(a.Subject) < strings.ToLower(b.Subject)
	})
}
