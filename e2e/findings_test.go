package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// catchAlls are the alerts for findings whose check has no dedicated alert.
var catchAlls = map[string]diagnosis.Severity{
	diagnosis.CatchAllAlert(diagnosis.Critical): diagnosis.Critical,
	diagnosis.CatchAllAlert(diagnosis.Warning):  diagnosis.Warning,
	diagnosis.CatchAllAlert(diagnosis.Info):     diagnosis.Info,
}

// TestFindingAlertsFollowRegistry: every catch-all alert excludes exactly the
// checks the registry gives a dedicated alert (a renamed check would
// otherwise page twice, or not at all), selects its own severity, and its
// runbook has a table row for exactly the checks it covers.
func TestFindingAlertsFollowRegistry(t *testing.T) {
	want := diagnosis.CatchAllExclusion()
	exclusion := regexp.MustCompile(`check!~"([^"]*)"`)
	found := map[string]bool{}
	for _, r := range alertRules(t) {
		sev, ok := catchAlls[r.Alert]
		if !ok {
			continue
		}
		found[r.Alert] = true
		m := exclusion.FindStringSubmatch(r.Expr)
		switch {
		case m == nil:
			t.Errorf("%s: no check!~\"...\" exclusion in %q", r.Alert, r.Expr)
		case m[1] != want:
			t.Errorf("%s: excludes\n%s\nthe registry of checks (internal/diagnosis/checks.go) wants\n%s", r.Alert, m[1], want)
		}
		if !strings.Contains(r.Expr, fmt.Sprintf(`severity=%q`, sev)) {
			t.Errorf("%s: does not select severity=%q", r.Alert, sev)
		}
		data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "runbooks", r.Alert+".md"))
		if err != nil {
			t.Fatal(err)
		}
		rows := map[string]bool{}
		for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\|").FindAllStringSubmatch(string(data), -1) {
			rows[m[1]] = true
		}
		for _, c := range diagnosis.Checks {
			covers := !c.Dedicated() && c.Allows(sev)
			if covers && !rows[c.Name] {
				t.Errorf("docs/runbooks/%s.md: no table row for check %s", r.Alert, c.Name)
			}
			if !covers && rows[c.Name] {
				t.Errorf("docs/runbooks/%s.md: a row for check %s, which this alert never carries", r.Alert, c.Name)
			}
			delete(rows, c.Name)
		}
		for name := range rows {
			t.Errorf("docs/runbooks/%s.md: a row for %s, which is not a registered check", r.Alert, name)
		}
	}
	if len(found) != len(catchAlls) {
		t.Errorf("catch-all alerts found: %v, want %d", sortedKeys(found), len(catchAlls))
	}
}

// TestRegistryAlertsPromtool runs the rules on one kerberos_finding sample
// per check and severity the registry declares, through promtool: nothing
// fires before the for: durations, and an hour later exactly the alert the
// registry names fires for each, with its severity. Together with the
// end-to-end agreement test (cmd/kerberos_exporter), which does the same on
// the real /metrics of the test world, this is what keeps the alerts and the
// diagnosis in step.
func TestRegistryAlertsPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool")
	type sample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	type series struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	var input []series
	var want []sample
	for _, c := range diagnosis.Checks {
		for _, s := range c.Severities {
			target := "target-of-" + c.Name + "-" + string(s)
			input = append(input, series{
				Series: fmt.Sprintf(`kerberos_finding{job="kerberos_exporter",instance="mon:19088",check=%q,severity=%q,target=%q}`, c.Name, s, target),
				Values: "1x70",
			})
			alert, alertSeverity := c.AlertFor(s)
			want = append(want, sample{Labels: fmt.Sprintf(`{alertname=%q,check=%q,severity=%q,target=%q}`, alert, c.Name, alertSeverity, target), Value: 1})
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Labels < want[j].Labels })
	const firing = `count by (alertname, severity, check, target) (ALERTS{alertstate="firing"})`
	test := map[string]any{
		"rule_files":          ruleFilePaths(t),
		"evaluation_interval": "1m",
		"tests": []map[string]any{{
			"interval":     "1m",
			"input_series": input,
			"promql_expr_test": []map[string]any{
				{"expr": firing, "eval_time": "1m", "exp_samples": []sample{}},
				{"expr": firing, "eval_time": "60m", "exp_samples": want},
			},
		}},
	}
	data, err := yaml.Marshal(test)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "registry.test.yml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("the rules do not raise the registry's alert for every check and severity:\n%s", out)
	}
}

// TestRegistryAlertsExist: every alert the registry names is a rule with
// the severities the registry says (a static label, or none to carry the
// finding's), and every rule is either named by the registry or listed
// among its other alerts.
func TestRegistryAlertsExist(t *testing.T) {
	want := diagnosis.AlertSeverities()
	defined := map[string]bool{}
	for _, r := range alertRules(t) {
		defined[r.Alert] = true
		sevs, ok := want[r.Alert]
		if !ok {
			t.Errorf("%s: neither a check of the registry (internal/diagnosis/checks.go) nor one of its OtherAlerts", r.Alert)
			continue
		}
		if got := r.Labels["severity"]; got != "" {
			if len(sevs) != 1 || sevs[0] != got {
				t.Errorf("%s: severity %s, the registry says %v", r.Alert, got, sevs)
			}
			continue
		}
		// No severity label: the alert carries the finding's, so it must be
		// built on kerberos_finding alone.
		if !strings.HasPrefix(strings.TrimSpace(r.Expr), "kerberos_finding{") {
			t.Errorf("%s: no severity label, yet not built on kerberos_finding (whose severity it would carry)", r.Alert)
		}
	}
	for name := range want {
		if !defined[name] {
			t.Errorf("the registry names alert %s, which no rule defines", name)
		}
	}
}

// TestRegistryTablesInReadmes: docs/checks.md's table of checks,
// alerts/README.md's table of finding → alert and docs/causes.md's table of
// kinds of causes are the registries'.
func TestRegistryTablesInReadmes(t *testing.T) {
	for file, table := range map[string]string{
		"docs/checks.md":   diagnosis.CheckTable(),
		"alerts/README.md": diagnosis.AlertTable(),
		"docs/causes.md":   diagnosis.CauseTable(),
	} {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), table) {
			t.Errorf("%s does not contain the registry's table (internal/diagnosis/checks.go); it should read:\n%s", file, table)
		}
	}
}

// alertSeverityText is how a runbook and alerts/README.md state an alert's
// severity: "critical", or "critical or warning" for one that carries the
// finding's.
func alertSeverityText(t testing.TB, alert string) string {
	t.Helper()
	sevs, ok := diagnosis.AlertSeverities()[alert]
	if !ok {
		t.Errorf("%s: not in the registry of checks", alert)
		return "?"
	}
	return strings.Join(sevs, " or ")
}
