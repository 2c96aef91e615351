package report

import (
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Text from Active Directory and SQL Server (account names, SPNs, linked
// server names, host names, error text) is hostile: printed raw it could
// move the cursor or clear a terminal, and written raw into a script it
// could start a new command. Everything here makes such text inert.

// unsafeRune says whether r must never reach a terminal or a script line
// as itself: control characters (C0, DEL, C1 including NEL U+0085), the
// line and paragraph separators U+2028/U+2029, and the invisible format
// characters (bidi overrides, zero-width joiners, BOM) that make text read
// differently from what it is.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar
}

// Escape makes s printable on one line: every unsafe rune (and the
// backslash that introduces an escape) is written as Go's %q would write
// it (\n, \x1b, \u2028), the rest is left as it is.
func Escape(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == '\\' || unsafeRune(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			q := fmt.Sprintf("%+q", string(r)) // "\x1b", "\u2028"
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// EscapeText is Escape for prose, where backslashes are common
// (CORP\user) and harmless: only unsafe runes are escaped.
func EscapeText(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			q := fmt.Sprintf("%+q", string(r))
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// maxScriptLine bounds one line of the fix script: a longer one is not
// something a person reviews, so it is refused.
const maxScriptLine = 4096

// PowerShell's single-quote characters (about_Quoting_Rules and the
// language specification's single-quote-character): in a verbatim string
// any of them ends the string unless it is doubled.
func isSingleQuote(r rune) bool {
	switch r {
	case '\'', '\u2018', '\u2019', '\u201A', '\u201B':
		return true
	}
	return false
}

// scriptLine makes one line of a finding's remediation safe to put in the
// script. A comment stays a comment with every unsafe rune escaped. A
// command is kept only when it is one command on one line whose every
// outside value sits inside a well-formed single-quoted string or is a
// plain word; anything else (an unbalanced quote, a ; | & ` $( " outside a
// string, a line break or control character anywhere) is refused: the
// line becomes a comment that says why and shows it escaped.
func scriptLine(l string) string {
	if strings.HasPrefix(strings.TrimLeft(l, " \t"), "#") {
		return comment(strings.TrimPrefix(strings.TrimLeft(l, " \t"), "#"))
	}
	code, trailing, err := splitCommand(l)
	if err != nil {
		return "# REFUSED (" + err.Error() + "), fix by hand: " + Escape(truncate(l))
	}
	if trailing != "" {
		return code + comment(trailing)
	}
	return code
}

// comment writes a comment on exactly one line.
func comment(text string) string {
	return "#" + EscapeText(truncate(text))
}

func truncate(s string) string {
	if len(s) <= maxScriptLine {
		return s
	}
	cut := maxScriptLine
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(truncated)"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// splitCommand checks that l is a single PowerShell command made only of
// what the diagnosis package writes: a cmdlet or program name, -Parameters,
// plain words, single-quoted strings, $true/$false/$null, and the
// punctuation of @{'k'=v}, a,b lists and (Get-ADUser 'x').Property. It
// returns the code and the trailing comment (after " #"), if any.
func splitCommand(l string) (code, trailing string, err error) {
	if len(l) > maxScriptLine {
		return "", "", fmt.Errorf("longer than %d bytes", maxScriptLine)
	}
	if strings.ContainsFunc(l, unsafeRune) {
		return "", "", fmt.Errorf("holds a line break or control character")
	}
	rs := []rune(l)
	if len(rs) == 0 || !isWordRune(rs[0]) || rs[0] == '-' {
		return "", "", fmt.Errorf("does not start with a command name")
	}
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case isSingleQuote(r):
			j := i + 1
			for ; j < len(rs); j++ {
				if isSingleQuote(rs[j]) {
					if j+1 < len(rs) && isSingleQuote(rs[j+1]) {
						j++ // a doubled quote is one literal quote
						continue
					}
					break
				}
			}
			if j >= len(rs) {
				return "", "", fmt.Errorf("unterminated quoted string")
			}
			i = j
		case r == '#':
			if i == 0 || rs[i-1] != ' ' {
				return "", "", fmt.Errorf("# inside a word")
			}
			return string(rs[:i]), string(rs[i+1:]), nil
		case r == '$':
			word := readWord(rs[i+1:])
			switch strings.ToLower(word) {
			case "true", "false", "null":
				i += len([]rune(word))
			default:
				return "", "", fmt.Errorf("$ outside a quoted string")
			}
		case isWordRune(r), strings.ContainsRune(" ,=@{}().", r):
		default:
			return "", "", fmt.Errorf("%s outside a quoted string", Escape(fmt.Sprintf("%q", r)))
		}
	}
	return l, "", nil
}

// isWordRune: ASCII letters, digits and the characters of names, SPNs and
// paths. No non-ASCII rune is allowed outside quotes: PowerShell reads the
// typographic dashes as '-' and quotes as quotes.
func isWordRune(r rune) bool {
	return r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(`-_:/\`, r))
}

func readWord(rs []rune) string {
	n := 0
	for n < len(rs) && (rs[n] >= 'a' && rs[n] <= 'z' || rs[n] >= 'A' && rs[n] <= 'Z') {
		n++
	}
	return string(rs[:n])
}

// LogWriter is the server log's writer: slog's JSON handler leaves DEL, the
// C1 controls (NEL) and format characters (bidi overrides) raw, so each
// record is passed through the same escaping as the JSON report. The logfmt
// handler already quotes them; there this changes nothing.
func LogWriter(w io.Writer) io.Writer { return logWriter{w} }

type logWriter struct{ w io.Writer }

// Write escapes one record; slog writes each record with one call.
func (l logWriter) Write(p []byte) (int, error) {
	if _, err := l.w.Write(jsonTerminalSafe(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
