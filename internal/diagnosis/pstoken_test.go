package diagnosis_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
)

// Debian has no PowerShell, so the fix script is checked with this small
// tokenizer, written from the PowerShell language specification (chapter 2,
// lexical structure) for the parts that decide where a value ends and code
// begins:
//   - new-line-character: CR, LF (CRLF) end a statement;
//   - whitespace: space, tab, VT, FF, and the Zs, Zl, Zp classes;
//   - a comment starts with # at the start of a token and runs to the line's end;
//   - single-quote-character: U+0027, U+2018, U+2019, U+201A, U+201B; in a
//     verbatim string two of them in a row are one literal quote;
//   - double-quote-character: U+0022, U+201C, U+201D, U+201E; such a string
//     expands $variables and $(subexpressions), ` escapes;
//   - ` outside a string escapes the next character (or continues the line);
//   - $ starts a variable, $( a subexpression;
//   - ; | & separate statements or pipelines.
// Tokens of the last four kinds are reported as such for the check to refuse.

type psToken struct {
	kind string // word string expandable variable subexpression backtick separator punct comment newline
	text string
}

func (t psToken) String() string { return t.kind + ":" + fmt.Sprintf("%q", t.text) }

func isPSSingleQuote(r rune) bool {
	return r == '\'' || r == '\u2018' || r == '\u2019' || r == '\u201A' || r == '\u201B'
}

func isPSDoubleQuote(r rune) bool {
	return r == '"' || r == '\u201C' || r == '\u201D' || r == '\u201E'
}

func isPSSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\v' || r == '\f' || unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

func psTokenize(src string) ([]psToken, error) {
	rs := []rune(src)
	var out []psToken
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == '\r' || r == '\n':
			out = append(out, psToken{"newline", string(r)})
			i++
		case isPSSpace(r):
			i++
		case r == '#':
			j := i
			for j < len(rs) && rs[j] != '\r' && rs[j] != '\n' {
				j++
			}
			out = append(out, psToken{"comment", string(rs[i:j])})
			i = j
		case isPSSingleQuote(r):
			var b strings.Builder
			j := i + 1
			for ; j < len(rs); j++ {
				if isPSSingleQuote(rs[j]) {
					if j+1 < len(rs) && isPSSingleQuote(rs[j+1]) {
						b.WriteRune(rs[j])
						j++
						continue
					}
					break
				}
				b.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unterminated verbatim string at rune %d", i)
			}
			out = append(out, psToken{"string", b.String()})
			i = j + 1
		case isPSDoubleQuote(r):
			j := i + 1
			for ; j < len(rs) && !isPSDoubleQuote(rs[j]); j++ {
				if rs[j] == '`' {
					j++
				}
			}
			out = append(out, psToken{"expandable", string(rs[i:min(j+1, len(rs))])})
			i = j + 1
		case r == '`':
			out = append(out, psToken{"backtick", string(rs[i:min(i+2, len(rs))])})
			i += 2
		case r == '$':
			if i+1 < len(rs) && rs[i+1] == '(' {
				out = append(out, psToken{"subexpression", "$("})
				i += 2
				continue
			}
			j := i + 1
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || rs[j] == '_' || rs[j] == ':') {
				j++
			}
			out = append(out, psToken{"variable", string(rs[i+1 : j])})
			i = j
		case r == ';' || r == '|' || r == '&':
			out = append(out, psToken{"separator", string(r)})
			i++
		case strings.ContainsRune("(){},=@.", r):
			out = append(out, psToken{"punct", string(r)})
			i++
		default:
			j := i
			for j < len(rs) && !isPSSpace(rs[j]) && !strings.ContainsRune("\r\n;|&(){},=`$", rs[j]) &&
				!isPSSingleQuote(rs[j]) && !isPSDoubleQuote(rs[j]) {
				j++
			}
			out = append(out, psToken{"word", string(rs[i:j])})
			i = j
		}
	}
	return out, nil
}

// The tokenizer itself, on the cases that matter.
func TestPSTokenize(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"setspn -S 'a''b' x", `[word:"setspn" word:"-S" string:"a'b" word:"x"]`},
		{"Set-ADUser 'O\u2019\u2019Brien'", `[word:"Set-ADUser" string:"O’Brien"]`},
		{"Set-ADUser 'O\u2019Brien'", `unterminated`},
		{"x 'a' # c 'd\nStart-Process calc", `[word:"x" string:"a" comment:"# c 'd" newline:"\n" word:"Start-Process" word:"calc"]`},
		{"x a$(y)", `[word:"x" word:"a" subexpression:"$(" word:"y" punct:")"]`},
		{"x -Confirm:$false; y", `[word:"x" word:"-Confirm:" variable:"false" separator:";" word:"y"]`},
		{"x \u201c$y\u201d", `[word:"x" expandable:"“$y”"]`},
	} {
		got, err := psTokenize(tc.src)
		s := fmt.Sprint(got)
		if err != nil {
			s = err.Error()
		}
		if !strings.Contains(s, tc.want) {
			t.Errorf("psTokenize(%q) = %s, want %s", tc.src, s, tc.want)
		}
	}
}
