package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// diagnosisChecks returns the check names internal/diagnosis can report,
// read from its source (Check: "name" in its Finding literals).
func diagnosisChecks(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "internal", "diagnosis", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	checkLit := regexp.MustCompile(`Check:\s+"([a-z0-9_]+)"`)
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range checkLit.FindAllStringSubmatch(string(data), -1) {
			out[m[1]] = true
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d checks in internal/diagnosis; has the Finding literal changed?", len(out))
	}
	return out
}

// TestFindingAlertsFollowDiagnosis: the checks the catch-all findings alerts
// leave to dedicated alerts exist in internal/diagnosis (a renamed check
// would otherwise page twice), both alerts leave out the same ones, and
// every other check is explained in both runbooks.
func TestFindingAlertsFollowDiagnosis(t *testing.T) {
	checks := diagnosisChecks(t)
	exclusion := regexp.MustCompile(`check!~"([^"]*)"`)
	var lists []string
	for _, r := range alertRules(t) {
		if r.Alert != "KerberosFindingCritical" && r.Alert != "KerberosFindingWarning" {
			continue
		}
		m := exclusion.FindStringSubmatch(r.Expr)
		if m == nil {
			t.Fatalf("%s: no check!~\"...\" exclusion in %q", r.Alert, r.Expr)
		}
		lists = append(lists, m[1])
	}
	if len(lists) != 2 {
		t.Fatalf("want KerberosFindingCritical and KerberosFindingWarning, found %d", len(lists))
	}
	if lists[0] != lists[1] {
		t.Errorf("the two findings alerts exclude different checks:\n%s\n%s", lists[0], lists[1])
	}
	covered := map[string]bool{}
	for _, c := range strings.Split(lists[0], "|") {
		covered[c] = true
		if !checks[c] {
			t.Errorf("the findings alerts exclude %q, which internal/diagnosis does not report", c)
		}
	}
	for _, name := range []string{"KerberosFindingCritical", "KerberosFindingWarning"} {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "runbooks", name+".md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range sortedKeys(checks) {
			if !covered[c] && !strings.Contains(string(data), "| `"+c+"` |") {
				t.Errorf("docs/runbooks/%s.md: no table row for check %s", name, c)
			}
		}
	}
}
