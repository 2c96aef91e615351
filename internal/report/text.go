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
	Incomplete      string  `json:"incomplete,omitempty"`
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
		out.Collectors = append(out.Collectors, jsonCollector{Name: c.Name, Success: c.Success, Error: c.Error, Incomplete: c.Incomplete, DurationSeconds: c.Duration.Seconds()})
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
