package report

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// Page is what the landing page links to.
type Page struct {
	MetricsPath string
	ProbePath   string
	// RunbookURLPrefix is prepended to "<alert>.md" to link a cause to its
	// runbook; empty means no runbook links.
	RunbookURLPrefix string
}

// newWithin is how recent a first sighting is for the page to call it new.
const newWithin = time.Hour

// expandFindingsUpTo: with at most this many findings the page shows each
// instance's findings open; above it (a fleet) they are collapsed, so that
// the causes stay the first thing read and the page stays small.
const expandFindingsUpTo = 30

// instanceLinksShown is how many of a cause's instances are linked inline;
// the rest sit in a collapsed list.
const instanceLinksShown = 6

// WriteHTML writes the landing page as a fleet triage view: summary counts,
// then the root causes (critical first, then by blast radius), then every
// instance and service in a table that its script sorts and filters, with
// each one's findings underneath. It has no external assets: the CSS and
// the script are inline and allowed by LandingCSP.
func (r *Report) WriteHTML(w io.Writer, p Page) error {
	return landingTmpl.Execute(w, newLandingView(r, p))
}

// LandingCSP is the Content-Security-Policy the landing page is served
// with: nothing but its own inline style and script, by hash.
var LandingCSP = "default-src 'none'; style-src " + cspHash(landingCSS) + "; script-src " + cspHash(landingJS) +
	"; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// landingView is what the template reads; every string in it that may
// come from AD or SQL Server has its unsafe runes escaped (EscapeText),
// except the raw names that only go into URLs, which html/template
// escapes as URL parts.
type landingView struct {
	Page
	Completed  bool
	FirstCycle bool
	When       string // RFC 3339, UTC
	WhenUnix   int64
	Failed     []Collector
	Summary    summaryView
	Causes     []causeView
	Rows       []rowView
	Services   bool // whether any row is a service
	Fleet      []findingView
	Expand     bool // show each instance's findings open
	CSS        template.CSS
	JS         template.JS
}

type summaryView struct {
	Total, Critical, Warning, Healthy, Unreachable int
	Causes, Findings                               Counts
	NewCauses                                      int
}

type seenView struct {
	Known bool
	New   bool
	Since string // "2024-05-01 09:12 UTC"
	Unix  int64
}

type linkView struct {
	Name      string // escaped, shown
	Target    string // raw, for the probe URL
	Probe     bool   // a SQL instance, which /probe knows
	ProbePath string
}

type causeView struct {
	ID        string
	Cause     string
	Severity  diagnosis.Severity
	Subject   string
	Summary   string
	Detail    string
	Fix       string
	Script    []string // raw: rendered through scriptLine
	Runbook   string
	Affected  []string
	Shown     []linkView // the first instanceLinksShown instances
	More      []linkView // the rest
	Instances int
	Findings  int
	Seen      seenView
}

type causeRef struct{ ID, Label string }

type rowView struct {
	Name        string
	Target      string
	Kind        string
	Probe       bool
	ProbePath   string
	Status      string // critical, warning, info, ok or pending
	Rank        int
	Unreachable bool
	Counts      Counts
	Causes      []causeRef
	Findings    []findingView
	Seen        seenView
}

type findingView struct {
	Check    string
	Severity diagnosis.Severity
	Target   string
	Summary  string
	Cause    causeRef
	Seen     seenView
}

// unreachableCheck is the finding that says the exporter cannot log in to
// an instance: the page counts those instances as unreachable.
const unreachableCheck = "sql_unreachable"

func findingKey(f diagnosis.Finding) string {
	return f.Check + "\x00" + f.Target + "\x00" + f.Instance
}

func newLandingView(r *Report, p Page) *landingView {
	v := &landingView{
		Page: p, Completed: r.Completed, FirstCycle: r.FirstCycle,
		When: r.Generated.UTC().Format(time.RFC3339), WhenUnix: r.Generated.Unix(),
		CSS: template.CSS(landingCSS), JS: template.JS(landingJS), //nolint:gosec // constants of this package, hashed into LandingCSP
	}
	for _, c := range r.FailedCollectors() {
		v.Failed = append(v.Failed, Collector{Name: EscapeText(c.Name), Success: c.Success, Error: EscapeText(c.Error), Incomplete: EscapeText(c.Incomplete)})
	}
	seen := func(t time.Time) seenView {
		if t.IsZero() || !r.Completed {
			return seenView{}
		}
		return seenView{Known: true, New: r.Generated.Sub(t) < newWithin, Since: t.UTC().Format("2006-01-02 15:04 UTC"), Unix: t.Unix()}
	}

	sqlInstances := map[string]bool{}
	for _, g := range r.Groups {
		if g.Kind == KindSQLInstance {
			sqlInstances[g.Name] = true
		}
	}
	link := func(name string) linkView {
		return linkView{Name: EscapeText(name), Target: name, Probe: sqlInstances[name], ProbePath: p.ProbePath}
	}

	causeOf := map[string]causeRef{}
	causesOf := map[string][]causeRef{}
	for i, c := range r.Causes {
		id := "c" + strconv.Itoa(i+1)
		ref := causeRef{ID: id, Label: EscapeText(c.Cause)}
		cv := causeView{
			ID: id, Cause: EscapeText(c.Cause), Severity: c.Severity, Subject: EscapeText(c.Subject),
			Summary: EscapeText(c.Summary), Detail: EscapeText(c.Detail), Fix: EscapeText(c.Fix),
			Script: c.Script, Runbook: c.Runbook, Instances: len(c.Instances), Findings: len(c.Findings),
			Seen: seen(c.FirstSeen),
		}
		for _, a := range c.Affected {
			cv.Affected = append(cv.Affected, EscapeText(a))
		}
		for j, inst := range c.Instances {
			if j < instanceLinksShown {
				cv.Shown = append(cv.Shown, link(inst))
			} else {
				cv.More = append(cv.More, link(inst))
			}
			causesOf[inst] = append(causesOf[inst], ref)
		}
		for _, f := range c.Findings {
			causeOf[findingKey(f)] = ref
		}
		v.Causes = append(v.Causes, cv)
		v.Summary.Causes.add(c.Severity)
		if cv.Seen.New {
			v.Summary.NewCauses++
		}
	}
	v.Summary.Findings = r.Counts

	finding := func(f diagnosis.Finding) findingView {
		return findingView{
			Check: EscapeText(f.Check), Severity: f.Severity, Target: EscapeText(f.Target),
			Summary: EscapeText(f.Summary), Cause: causeOf[findingKey(f)], Seen: seen(f.FirstSeen),
		}
	}
	total := 0
	for _, g := range r.Groups {
		total += len(g.Findings)
		if g.Kind == KindFleet {
			for _, f := range g.Findings {
				v.Fleet = append(v.Fleet, finding(f))
			}
			continue
		}
		row := rowView{Name: EscapeText(g.Name), Target: g.Name, Kind: g.Kind, Probe: g.Kind == KindSQLInstance, ProbePath: p.ProbePath, Counts: g.Counts, Causes: causesOf[g.Name]}
		var first time.Time
		for _, f := range g.Findings {
			row.Findings = append(row.Findings, finding(f))
			row.Unreachable = row.Unreachable || f.Check == unreachableCheck
			if !f.FirstSeen.IsZero() && (first.IsZero() || f.FirstSeen.Before(first)) {
				first = f.FirstSeen
			}
		}
		row.Seen = seen(first)
		switch {
		case !r.Completed:
			row.Status, row.Rank = "pending", 4
		case g.Counts.Critical > 0:
			row.Status, row.Rank = "critical", 0
			v.Summary.Critical++
		case g.Counts.Warning > 0:
			row.Status, row.Rank = "warning", 1
			v.Summary.Warning++
		case g.Counts.Info > 0:
			row.Status, row.Rank = "info", 2
			v.Summary.Healthy++
		default:
			row.Status, row.Rank = "ok", 3
			v.Summary.Healthy++
		}
		if row.Unreachable {
			v.Summary.Unreachable++
		}
		v.Services = v.Services || g.Kind == KindService
		v.Rows = append(v.Rows, row)
	}
	v.Summary.Total = len(v.Rows)
	v.Expand = total <= expandFindingsUpTo
	// Worst first, so that what needs a person is above the fold even
	// before the script runs.
	sort.SliceStable(v.Rows, func(i, j int) bool {
		a, b := v.Rows[i], v.Rows[j]
		if a.Rank != b.Rank {
			return a.Rank < b.Rank
		}
		if a.Counts.Critical != b.Counts.Critical {
			return a.Counts.Critical > b.Counts.Critical
		}
		if a.Counts.Warning != b.Counts.Warning {
			return a.Counts.Warning > b.Counts.Warning
		}
		return strings.ToLower(a.Name) < strings.ToLower(b.Name)
	})
	return v
}

// counted is "1 cause", "3 causes": the page's plural, with its number.
func counted(n int, one, many string) string {
	return strconv.Itoa(n) + " " + plural(n, one, many)
}

var landingTmpl = template.Must(template.New("landing").Funcs(template.FuncMap{
	"scriptLine": scriptLine,
	"plural":     counted,
}).Parse(landingHTML))
