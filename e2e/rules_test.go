package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// promtoolTestFile is the part of a promtool unit test file the tests read.
type promtoolTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTests []struct {
			EvalTime  string           `yaml:"eval_time"`
			AlertName string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

var severities = map[string]bool{"page": true, "critical": true, "warning": true, "info": true}

func ruleFilePaths(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot(t), "alerts", "*.rules.yml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no alerts/*.rules.yml (err %v)", err)
	}
	return paths
}

// loadRules returns every rule of alerts/*.rules.yml.
func loadRules(t testing.TB) []rule {
	t.Helper()
	var all []rule
	for _, p := range ruleFilePaths(t) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(data, &rf); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, g := range rf.Groups {
			all = append(all, g.Rules...)
		}
	}
	return all
}

func alertRules(t testing.TB) []rule {
	var out []rule
	for _, r := range loadRules(t) {
		if r.Alert != "" {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Fatal("no alerting rules found")
	}
	return out
}

func TestRulesPromtoolCheck(t *testing.T) {
	promtool := requireTool(t, "promtool")
	logVersion(t, promtool)
	args := append([]string{"check", "rules"}, ruleFilePaths(t)...)
	out, err := exec.Command(promtool, args...).CombinedOutput()
	t.Logf("promtool %s\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("promtool check rules failed: %v", err)
	}
}

func TestRulesPromtoolUnitTests(t *testing.T) {
	promtool := requireTool(t, "promtool")
	dir := filepath.Join(repoRoot(t), "alerts", "tests")
	files, err := filepath.Glob(filepath.Join(dir, "*.test.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no alerts/tests/*.test.yml (err %v)", err)
	}
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	cmd := exec.Command(promtool, append([]string{"test", "rules"}, files...)...)
	cmd.Dir = dir // rule_files in the tests are relative to their directory
	out, err := cmd.CombinedOutput()
	t.Logf("promtool test rules %s\n%s", strings.Join(files, " "), out)
	if err != nil {
		t.Fatalf("promtool test rules failed: %v", err)
	}
}

func logVersion(t *testing.T, tool string) {
	t.Helper()
	out, _ := exec.Command(tool, "--version").CombinedOutput()
	t.Logf("%s", firstLine(string(out)))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

var alertName = regexp.MustCompile(`^Kerberos[A-Z][A-Za-z0-9]+$`)

// TestRulesConventions: a severity from the documented set, a summary and a
// description that use the alert's labels, and a runbook that exists.
func TestRulesConventions(t *testing.T) {
	root := repoRoot(t)
	seen := map[string]bool{}
	for _, r := range alertRules(t) {
		name := r.Alert
		if seen[name] {
			t.Errorf("%s: defined twice", name)
		}
		seen[name] = true
		if !alertName.MatchString(name) {
			t.Errorf("%s: alert names are Kerberos<CamelCase>", name)
		}
		// No label: the alert carries its finding's severity (TestRegistryAlertsExist).
		if sev := r.Labels["severity"]; sev != "" && !severities[sev] {
			t.Errorf("%s: severity %q, want one of page, critical, warning, info", name, sev)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: annotation %s is missing", name, a)
			}
		}
		if len(r.Annotations) != 3 {
			t.Errorf("%s: annotations %v, want exactly summary, description, runbook_url", name, sortedKeys(keysOf(r.Annotations)))
		}
		if want := "docs/runbooks/" + name + ".md"; r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", name, r.Annotations["runbook_url"], want)
		} else if _, err := os.Stat(filepath.Join(root, want)); err != nil {
			t.Errorf("%s: runbook %s: %v", name, want, err)
		}
		// Templated with the alert's own labels, so a page says which instance.
		if !strings.Contains(r.Annotations["summary"], "{{") {
			t.Errorf("%s: summary is not templated with the alert's labels", name)
		}
		if r.For == "" && r.Labels["severity"] != "info" {
			t.Errorf("%s: no for: duration; a single odd scrape would page", name)
		}
	}
}

func keysOf(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// TestRulesAreUnitTested: every alert has a promtool case where it fires and
// one where it does not. The alerts the registry of checks names for
// findings have them generated by TestRegistryAlertsPromtool; a hand-written
// case is still needed for every other alert.
func TestRulesAreUnitTested(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "alerts", "tests", "*.test.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no alerts/tests/*.test.yml (err %v)", err)
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf promtoolTestFile
		if err := yaml.Unmarshal(data, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTests {
				if len(a.ExpAlerts) > 0 {
					firing[a.AlertName] = true
				} else {
					silent[a.AlertName] = true
				}
			}
		}
	}
	for _, c := range diagnosis.Checks {
		for _, s := range c.Severities {
			alert, _ := c.AlertFor(s)
			firing[alert], silent[alert] = true, true
		}
	}
	defined := map[string]bool{}
	for _, r := range alertRules(t) {
		defined[r.Alert] = true
		if !firing[r.Alert] {
			t.Errorf("%s: no promtool test where it fires", r.Alert)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no promtool test where it does not fire", r.Alert)
		}
	}
	for name := range firing {
		if !defined[name] {
			t.Errorf("promtool tests name %s, which no rule defines", name)
		}
	}
}

// TestRulesMetricNamesDocumented: every metric a rule or an annotation query
// selects is in docs/metrics.md, a recording rule of these files, or up.
// A typo fails here.
func TestRulesMetricNamesDocumented(t *testing.T) {
	docs := documented(t)
	rules := loadRules(t)
	recorded := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			recorded[r.Record] = true
		}
	}
	for _, r := range rules {
		name := r.Alert + r.Record
		exprs := []string{r.Expr}
		for _, a := range r.Annotations {
			exprs = append(exprs, templateQueries(a)...)
		}
		for _, e := range exprs {
			names := metricNames(e)
			if len(names) == 0 {
				t.Errorf("%s: no metric name found in %q", name, e)
			}
			for _, m := range names {
				if !docs[m] && !recorded[m] && !prometheusOwnMetrics[m] {
					t.Errorf("%s: metric %s is not in docs/metrics.md (nor a recording rule)", name, m)
				}
			}
		}
	}
}

// TestRunbooks: one runbook per alert and no other, each titled with its
// alert, stating its severity, and with the diagnosis and fix sections.
func TestRunbooks(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "docs", "runbooks")
	bySeverity := map[string]string{}
	for _, r := range alertRules(t) {
		bySeverity[r.Alert] = alertSeverityText(t, r.Alert)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".md")
		sev, ok := bySeverity[name]
		if !ok {
			t.Errorf("docs/runbooks/%s.md: no alert of that name", name)
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if !strings.HasPrefix(text, "# "+name+"\n") {
			t.Errorf("%s.md: does not start with '# %s'", name, name)
		}
		if want := fmt.Sprintf("**Severity:** %s.", sev); !strings.Contains(text, want) {
			t.Errorf("%s.md: does not say %q (the rule's severity)", name, want)
		}
		for _, section := range []string{"## What it means", "## Diagnose", "## Fix"} {
			if !strings.Contains(text, "\n"+section) {
				t.Errorf("%s.md: no %q section", name, section)
			}
		}
		// Runbooks cite the metrics they rely on; those must exist too.
		for _, m := range regexp.MustCompile("`(kerberos_[a-z0-9_:]+)[`{]").FindAllStringSubmatch(text, -1) {
			if !documented(t)[m[1]] && !strings.Contains(m[1], ":") && m[1] != "kerberos_exporter" { // the program and job name
				t.Errorf("%s.md: cites metric %s, which docs/metrics.md does not have", name, m[1])
			}
		}
	}
}

// TestRulesReadmeListsEveryAlert keeps alerts/README.md's table honest.
func TestRulesReadmeListsEveryAlert(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "alerts", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alertRules(t) {
		row := regexp.MustCompile(`(?m)^\| ` + r.Alert + ` \| ([a-z][a-z ]*) \|`).FindStringSubmatch(string(data))
		switch want := alertSeverityText(t, r.Alert); {
		case row == nil:
			t.Errorf("alerts/README.md has no table row for %s", r.Alert)
		case row[1] != want:
			t.Errorf("alerts/README.md says %s is %s; the rules and the registry say %s", r.Alert, row[1], want)
		}
	}
}
