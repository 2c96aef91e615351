package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// textWidth is where prose is wrapped in the text report.
const textWidth = 100

// WriteText writes the report for a terminal: a summary, failed
// collectors, then each group's findings with why and how to fix them.
func (r *Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	if !r.Completed {
		fmt.Fprintln(b, "No collection has completed yet.")
		return b.Flush()
	}
	fmt.Fprintf(b, "kerberos_exporter check at %s\n", r.Generated.UTC().Format(time.RFC3339))
	fmt.Fprintf(b, "%d critical, %d warning, %d info\n", r.Counts.Critical, r.Counts.Warning, r.Counts.Info)
	if failed := r.FailedCollectors(); len(failed) > 0 {
		fmt.Fprintln(b, "\nCollectors that failed (their checks are silent):")
		for _, c := range failed {
			fmt.Fprintf(b, "  %s: %s\n", c.Name, c.Error)
		}
	}
	for _, g := range r.Groups {
		fmt.Fprintf(b, "\n== %s ==\n", g.Title())
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
	fmt.Fprintf(b, "  %-8s  %s  %s\n", strings.ToUpper(string(f.Severity)), f.Check, f.Target)
	fmt.Fprintf(b, "    %s\n", f.Summary)
	b.WriteString(wrap("Why: "+f.Detail, "    ", "         ", textWidth))
	b.WriteString(wrap("Fix: "+f.Fix, "    ", "         ", textWidth))
	if len(f.Script) > 0 {
		fmt.Fprintln(b, "    Script (review before running):")
		for _, l := range f.Script {
			fmt.Fprintf(b, "      %s\n", l)
		}
	}
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
	Summary    Counts          `json:"summary"`
	Collectors []jsonCollector `json:"collectors"`
	Groups     []jsonGroup     `json:"groups"`
}

type jsonCollector struct {
	Name            string  `json:"name"`
	Success         bool    `json:"success"`
	Error           string  `json:"error,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
}

type jsonGroup struct {
	Name     string              `json:"name"`
	Kind     string              `json:"kind"`
	Summary  Counts              `json:"summary"`
	Findings []diagnosis.Finding `json:"findings"`
}

// WriteJSON writes the report as one JSON document, groups in the same
// order as the text report.
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{Completed: r.Completed, Summary: r.Counts, Collectors: []jsonCollector{}, Groups: []jsonGroup{}}
	if r.Completed {
		t := r.Generated.UTC()
		out.Generated = &t
	}
	for _, c := range r.Collectors {
		out.Collectors = append(out.Collectors, jsonCollector{Name: c.Name, Success: c.Success, Error: c.Error, DurationSeconds: c.Duration.Seconds()})
	}
	for _, g := range r.Groups {
		fs := g.Findings
		if fs == nil {
			fs = []diagnosis.Finding{}
		}
		out.Groups = append(out.Groups, jsonGroup{Name: g.Name, Kind: g.Kind, Summary: g.Counts, Findings: fs})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
