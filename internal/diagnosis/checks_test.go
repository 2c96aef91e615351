package diagnosis

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestChecksRegistry: names unique and sorted, every check with a meaning
// and severities, and only critical findings page.
func TestChecksRegistry(t *testing.T) {
	if !sort.SliceIsSorted(Checks, func(i, j int) bool { return Checks[i].Name < Checks[j].Name }) {
		t.Error("Checks is not sorted by name")
	}
	for i, c := range Checks {
		if i > 0 && Checks[i-1].Name == c.Name {
			t.Errorf("%s: registered twice", c.Name)
		}
		if got, ok := LookupCheck(c.Name); !ok || got.Name != c.Name {
			t.Errorf("%s: LookupCheck does not find it", c.Name)
		}
		if c.Meaning == "" || len(c.Severities) == 0 {
			t.Errorf("%s: no meaning or no severities", c.Name)
		}
		if len(c.Severities) > 1 && c.SeverityRule == "" {
			t.Errorf("%s: several severities, but no SeverityRule says when which", c.Name)
		}
		for s := range c.AlertBySeverity {
			if !c.Allows(s) {
				t.Errorf("%s: AlertBySeverity names severity %s, which it never reports", c.Name, s)
			}
		}
		if c.Pages && (len(c.Severities) != 1 || c.Severities[0] != Critical) {
			t.Errorf("%s: only a check that is always critical may page", c.Name)
		}
	}
	if _, ok := LookupCheck("no_such_check"); ok {
		t.Error("LookupCheck found an unregistered name")
	}
}

// TestChecksRegistered: every Check: "name" a rule reports is registered,
// and every registered check is reported somewhere, read from this
// package's syntax tree (the severities are checked on every finding the
// rule tests produce, in checkComplete).
func TestChecksRegistered(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	reported := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if key, ok := kv.Key.(*ast.Ident); !ok || key.Name != "Check" {
				return true
			}
			lit, ok := kv.Value.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: Check: is not a string literal, the registry test cannot follow it", fset.Position(kv.Pos()))
				return true
			}
			v, _ := strconv.Unquote(lit.Value)
			reported[v] = true
			if _, ok := LookupCheck(v); !ok {
				t.Errorf("%s: check %q is not in the registry (checks.go)", fset.Position(kv.Pos()), v)
			}
			return true
		})
	}
	for _, c := range Checks {
		if !reported[c.Name] {
			t.Errorf("%s: registered, but no rule reports it", c.Name)
		}
	}
}

func TestAlertFor(t *testing.T) {
	for _, tc := range []struct {
		check          string
		sev            Severity
		alert, alertSv string
	}{
		{"spn_missing", Warning, "KerberosSPNMissing", "warning"},
		{"spn_missing", Critical, "KerberosSPNMissing", "critical"},
		{"first_hop_ntlm", Critical, "KerberosSQLNTLMFallback", "page"},
		{"clock_skew_dc", Warning, "KerberosDCClockSkewWarning", "warning"},
		{"user_sensitive", Warning, "KerberosFindingWarning", "warning"},
		{"exporter_local", Info, "KerberosFindingInfo", "info"},
	} {
		c, _ := LookupCheck(tc.check)
		if a, s := c.AlertFor(tc.sev); a != tc.alert || s != tc.alertSv {
			t.Errorf("%s %s: alert %s (%s), want %s (%s)", tc.check, tc.sev, a, s, tc.alert, tc.alertSv)
		}
	}
	if ex := CatchAllExclusion(); strings.Contains(ex, "user_sensitive") || !strings.Contains(ex, "spn_missing") {
		t.Errorf("catch-all exclusion %q", ex)
	}
}
