// Package report renders diagnosis findings for people: a text report and
// JSON for `kerberos_exporter check`, the HTML landing page, and the
// remediations as a reviewable PowerShell script. It only formats; the
// findings are judged in the diagnosis package.
package report

import (
	"sort"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// Collector is how one collector fared in the reported cycle.
type Collector struct {
	Name     string
	Success  bool
	Error    string
	Duration time.Duration
	// Incomplete says what the collector had no time to check, e.g. "120
	// of 300 hosts not checked this cycle (deadline)"; "" when nothing.
	Incomplete string
}

// Group kinds.
const (
	KindSQLInstance = "sql_instance"
	KindService     = "service"
	KindFleet       = "fleet"
)

// Group is the findings about one SQL instance, one service, or the fleet.
type Group struct {
	Name     string // instance or service name; "" for fleet-wide
	Kind     string
	Findings []diagnosis.Finding
	Counts   Counts
}

// Title is the group's heading.
func (g Group) Title() string {
	switch g.Kind {
	case KindSQLInstance:
		return "SQL instance " + g.Name
	case KindService:
		return "Service " + g.Name
	case KindFleet:
		return "Fleet-wide (directory, domain controllers, accounts, users)"
	}
	return g.Name
}

// Counts are findings by severity.
type Counts struct {
	Critical int `json:"critical"`
	Warning  int `json:"warning"`
	Info     int `json:"info"`
}

func (c *Counts) add(s diagnosis.Severity) {
	switch s {
	case diagnosis.Critical:
		c.Critical++
	case diagnosis.Warning:
		c.Warning++
	default:
		c.Info++
	}
}

// Total is the number of findings.
func (c Counts) Total() int { return c.Critical + c.Warning + c.Info }

// Report is one collection cycle's findings, grouped for reading.
type Report struct {
	// Completed is false before the first collection cycle has finished;
	// then there is nothing else to show.
	Completed bool
	// FirstCycle marks the report of the exporter's first cycle since it
	// started: it may have run while a target was still starting, and
	// nothing is known yet of how long a finding has been there.
	FirstCycle bool
	Generated  time.Time
	Collectors []Collector
	Groups     []Group
	Counts     Counts
	// Causes are the findings grouped by root cause, most urgent first:
	// what a person reads first.
	Causes []diagnosis.Cause
}

// Pending is the report before any collection has completed: the
// configured groups, nothing in them.
func Pending(cfg *config.Config) *Report {
	r := New(cfg, nil, nil, time.Time{})
	r.Completed = false
	return r
}

// New groups findings by the instance or service they belong to: every
// configured instance and service in configuration order (with no findings
// when healthy), then any other named group, then the fleet-wide group.
func New(cfg *config.Config, findings []diagnosis.Finding, collectors []Collector, generated time.Time) *Report {
	r := &Report{Completed: true, Generated: generated, Collectors: append([]Collector(nil), collectors...)}
	sort.Slice(r.Collectors, func(i, j int) bool { return r.Collectors[i].Name < r.Collectors[j].Name })

	index := map[string]int{}
	addGroup := func(name, kind string) {
		if _, ok := index[name]; !ok {
			index[name] = len(r.Groups)
			r.Groups = append(r.Groups, Group{Name: name, Kind: kind})
		}
	}
	if cfg != nil {
		for _, inst := range cfg.SQLInstances {
			addGroup(inst.Name, KindSQLInstance)
		}
		for _, s := range cfg.Services {
			addGroup(s.Name, KindService)
		}
	}
	var others []string
	for _, f := range findings {
		if _, ok := index[f.Instance]; !ok && f.Instance != "" {
			others = append(others, f.Instance)
		}
	}
	sort.Strings(others)
	for _, name := range others {
		addGroup(name, KindSQLInstance)
	}
	addGroup("", KindFleet)

	r.Causes = diagnosis.Causes(findings)
	sorted := append([]diagnosis.Finding(nil), findings...)
	diagnosis.SortFindings(sorted)
	for _, f := range sorted {
		g := &r.Groups[index[f.Instance]]
		g.Findings = append(g.Findings, f)
		g.Counts.add(f.Severity)
		r.Counts.add(f.Severity)
	}
	return r
}

// HasCritical says whether any finding is critical.
func (r *Report) HasCritical() bool { return r.Counts.Critical > 0 }

// FailedCollectors are the collectors whose checks are silent, wholly or
// in part, this cycle: failed or incomplete.
func (r *Report) FailedCollectors() []Collector {
	var out []Collector
	for _, c := range r.Collectors {
		if !c.Success || c.Incomplete != "" {
			out = append(out, c)
		}
	}
	return out
}
