package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// textWidth is where prose is wrapped in the text report.
const textWidth = 100

// WriteText writes the report for a terminal: a summary, failed
// collectors, the root causes to fix first (each with its one fix and what
// it affects), then each group's findings with why and how to fix them.
func (r *Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	if !r.Completed {
		fmt.Fprintln(b, "No collection has completed yet.")
		return b.Flush()
	}
	first := ""
	if r.FirstCycle {
		first = " (first collection since start)"
	}
	fmt.Fprintf(b, "kerberos_exporter check at %s%s\n", r.Generated.UTC().Format(time.RFC3339), first)
	fmt.Fprintf(b, "%d critical, %d warning, %d info\n", r.Counts.Critical, r.Counts.Warning, r.Counts.Info)
	if failed := r.FailedCollectors(); len(failed) > 0 {
		fmt.Fprintln(b, "\nCollectors that failed or did not finish (their checks are silent):")
		for _, c := range failed {
			if c.Incomplete != "" {
				fmt.Fprintf(b, "  %s: %s\n", EscapeText(c.Name), EscapeText(c.Incomplete))
			}
			if !c.Success {
				fmt.Fprintf(b, "  %s: %s\n", EscapeText(c.Name), EscapeText(c.Error))
			}
		}
	}
	if len(r.Causes) > 0 {
		fmt.Fprintf(b, "\n%d %s — fix %s first\n", len(r.Causes), plural(len(r.Causes), "cause", "causes"), plural(len(r.Causes), "this", "these"))
		for i, c := range r.Causes {
			writeTextCause(b, i+1, c)
		}
		fmt.Fprintf(b, "\n%d %s underneath, by instance:\n", r.Counts.Total(), plural(r.Counts.Total(), "finding", "findings"))
	}
	for _, g := range r.Groups {
		fmt.Fprintf(b, "\n== %s ==\n", EscapeText(g.Title()))
		if len(g.Findings) == 0 {
			fmt.Fprintln(b, "  no findings")
			continue
		}
		for i, f := range g.Findings {
			if i > 0 {
				fmt.Fprintln(b)
			}
			writeTextFinding(b, f)
		}
	}
	return b.Flush()
}

func writeTextFinding(b *bufio.Writer, f diagnosis.Finding) {
	// Every field may carry names from AD or SQL Server: control
	// characters are escaped so that none reaches the terminal.
	fmt.Fprintf(b, "  %-8s  %s  %s\n", EscapeText(strings.ToUpper(string(f.Severity))), EscapeText(f.Check), EscapeText(f.Target))
	fmt.Fprintf(b, "    %s\n", EscapeText(f.Summary))
	// A bufio.Writer keeps its first error; WriteText's Flush returns it.
	_, _ = b.WriteString(wrap("Why: "+EscapeText(f.Detail), "    ", "         ", textWidth))
	_, _ = b.WriteString(wrap("Fix: "+EscapeText(f.Fix), "    ", "         ", textWidth))
	if len(f.Script) > 0 {
		fmt.Fprintln(b, "    Script (review before running):")
		for _, l := range f.Script {
			fmt.Fprintf(b, "      %s\n", scriptLine(l))
		}
	}
}

// shownAffected is how many affected targets a cause lists before "and N
// more": a person at 3 a.m. needs the handful, the JSON has them all.
const shownAffected = 5

func writeTextCause(b *bufio.Writer, n int, c diagnosis.Cause) {
	fmt.Fprintf(b, "\n%2d. %-8s  %s  %s\n", n, EscapeText(strings.ToUpper(string(c.Severity))), EscapeText(c.Cause), EscapeText(c.Subject))
	_, _ = b.WriteString(wrap(EscapeText(c.Summary), "    ", "    ", textWidth))
	_, _ = b.WriteString(wrap(fmt.Sprintf("Affects %d: %s", len(c.Affected), EscapeText(shortList(c.Affected, shownAffected))), "    ", "         ", textWidth))
	_, _ = b.WriteString(wrap("Why: "+EscapeText(c.Detail), "    ", "         ", textWidth))
	_, _ = b.WriteString(wrap("Fix: "+EscapeText(c.Fix), "    ", "         ", textWidth))
	if len(c.Script) > 0 {
		fmt.Fprintln(b, "    Script (review before running):")
		for _, l := range c.Script {
			fmt.Fprintf(b, "      %s\n", scriptLine(l))
		}
	}
	if c.Runbook != "" {
		fmt.Fprintf(b, "    Runbook: %s\n", EscapeText(diagnosis.Runbook(c.Runbook)))
	}
	checks := map[string]int{}
	var order []string
	for _, f := range c.Findings {
		if checks[f.Check] == 0 {
			order = append(order, f.Check)
		}
		checks[f.Check]++
	}
	parts := make([]string, len(order))
	for i, name := range order {
		parts[i] = name
		if checks[name] > 1 {
			parts[i] += fmt.Sprintf(" ×%d", checks[name])
		}
	}
	_, _ = b.WriteString(wrap("Findings: "+EscapeText(strings.Join(parts, ", ")), "    ", "         ", textWidth))
}

// shortList joins the first n names and says how many more there are.
func shortList(names []string, n int) string {
	if len(names) <= n+1 { // "and 1 more" would save nothing
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// wrap breaks text into lines of at most width columns (words longer than
// that stay whole), the first line prefixed by first, the others by rest.
func wrap(text, first, rest string, width int) string {
	var out strings.Builder
	line, prefix := "", first
	for _, word := range strings.Fields(text) {
		if line != "" && len(prefix)+len(line)+1+len(word) > width {
			out.WriteString(prefix + line + "\n")
			line, prefix = "", rest
		}
		if line == "" {
			line = word
		} else {
			line += " " + word
		}
	}
	if line != "" {
		out.WriteString(prefix + line + "\n")
	}
	return out.String()
}

type jsonReport struct {
	Completed  bool            `json:"completed"`
	Generated  *time.Time      `json:"generated,omitempty"`
	FirstCycle bool            `json:"first_cycle"`
	Summary    Counts          `json:"summary"`
	Collectors []jsonCollector `json:"collectors"`
	Causes     []jsonCause     `json:"causes"`
	Groups     []jsonGroup     `json:"groups"`
}

// jsonCause is a root cause; its findings are named by check and target,
// and are found in full in the groups (docs/check-json.md).
type jsonCause struct {
	Cause         string                 `json:"cause"`
	Severity      diagnosis.Severity     `json:"severity"`
	Subject       string                 `json:"subject"`
	Summary       string                 `json:"summary"`
	Detail        string                 `json:"detail"`
	Fix           string                 `json:"fix"`
	Script        []string               `json:"script"`
	Runbook       string                 `json:"runbook,omitempty"`
	AffectedCount int                    `json:"affected_count"`
	Affected      []string               `json:"affected"`
	Instances     []string               `json:"instances"`
	Findings      []diagnosis.FindingRef `json:"findings"`
	FirstSeen     *time.Time             `json:"first_seen,omitempty"`
}

func newJSONCause(c diagnosis.Cause) jsonCause {
	out := jsonCause{
		Cause: c.Cause, Severity: c.Severity, Subject: c.Subject, Summary: c.Summary, Detail: c.Detail, Fix: c.Fix,
		Script: nonNil(c.Script), Runbook: c.Runbook, AffectedCount: len(c.Affected), Affected: nonNil(c.Affected),
		Instances: nonNil(c.Instances), Findings: make([]diagnosis.FindingRef, 0, len(c.Findings)),
	}
	for _, f := range c.Findings {
		out.Findings = append(out.Findings, f.Ref())
	}
	if !c.FirstSeen.IsZero() {
		t := c.FirstSeen.UTC()
		out.FirstSeen = &t
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type jsonCollector struct {
	Name            string  `json:"name"`
	Success         bool    `json:"success"`
	Error           string  `json:"error,omitempty"`
	Incomplete      string  `json:"incomplete,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
}

type jsonGroup struct {
	Name     string              `json:"name"`
	Kind     string              `json:"kind"`
	Summary  Counts              `json:"summary"`
	Findings []diagnosis.Finding `json:"findings"`
}

// WriteJSON writes the report as one JSON document (docs/check-json.md,
// docs/check-report.schema.json): causes and groups in the same order as
// the text report.
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{Completed: r.Completed, FirstCycle: r.FirstCycle, Summary: r.Counts, Collectors: []jsonCollector{}, Causes: []jsonCause{}, Groups: []jsonGroup{}}
	if r.Completed {
		t := r.Generated.UTC()
		out.Generated = &t
	}
	for _, c := range r.Collectors {
		out.Collectors = append(out.Collectors, jsonCollector{Name: c.Name, Success: c.Success, Error: c.Error, Incomplete: c.Incomplete, DurationSeconds: c.Duration.Seconds()})
	}
	for _, c := range r.Causes {
		out.Causes = append(out.Causes, newJSONCause(c))
	}
	for _, g := range r.Groups {
		fs := g.Findings
		if fs == nil {
			fs = []diagnosis.Finding{}
		}
		out.Groups = append(out.Groups, jsonGroup{Name: g.Name, Kind: g.Kind, Summary: g.Counts, Findings: fs})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := w.Write(jsonTerminalSafe(buf.Bytes()))
	return err
}

// jsonTerminalSafe writes the runes that encoding/json leaves raw but a
// terminal would act on (DEL, the C1 controls such as NEL, bidi and other
// format characters) as \uXXXX escapes. Outside strings the encoder writes
// only ASCII punctuation, spaces and newlines, so every such rune is inside
// a string, where the escape means the same character.
func jsonTerminalSafe(b []byte) []byte {
	s := string(b)
	if !strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && unsafeRune(r) }) {
		return b
	}
	var out strings.Builder
	for _, r := range s {
		if r != '\n' && unsafeRune(r) {
			if r > 0xFFFF {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
				continue
			}
			fmt.Fprintf(&out, `\u%04x`, r)
			continue
		}
		out.WriteRune(r)
	}
	return []byte(out.String())
}
