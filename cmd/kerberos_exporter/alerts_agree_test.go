package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// Labels Prometheus adds when it scrapes the exporter.
const (
	scrapeJob      = "kerberos_exporter"
	scrapeInstance = "exporter:19088"
)

// checkAlertsAgree is the generated alert/finding agreement test: the
// exporter's real /metrics become the input series of a `promtool test rules`
// file, held steady for an hour (longer than any for:), and the alerts firing
// then must be exactly one per kerberos_finding sample of the same /metrics:
// the alert and severity the registry of checks (internal/diagnosis) names
// for the finding's check and severity, with the finding's check and target.
// An alert that fires for no finding, a finding that raises none or two, or
// a severity that differs from the finding's fails it.
func checkAlertsAgree(t *testing.T, body string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (make test installs it)")
	}
	rules, err := filepath.Abs(filepath.Join("..", "..", "alerts", "kerberos_exporter.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	series, want := alertAgreementInput(t, body)
	if len(want) == 0 {
		t.Fatal("no kerberos_finding in /metrics: the world should have findings")
	}
	type sample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	var expected []sample
	for _, w := range want {
		expected = append(expected, sample{Labels: w, Value: 1})
	}
	type inputSeries struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	var input []inputSeries
	for _, s := range series {
		input = append(input, inputSeries{Series: s.name, Values: s.values})
	}
	test := map[string]any{
		"rule_files":          []string{rules},
		"evaluation_interval": "1m",
		"tests": []map[string]any{{
			"interval":     "1m",
			"input_series": input,
			"promql_expr_test": []map[string]any{{
				// check and target are the finding's own labels: every
				// finding-driven alert is built on kerberos_finding.
				"expr":        `count by (alertname, severity, check, target) (ALERTS{alertstate="firing"})`,
				"eval_time":   "60m",
				"exp_samples": expected,
			}},
		}},
	}
	data, err := yaml.Marshal(test)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "agreement.test.yml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput()
	if err != nil {
		t.Errorf("the alerts do not follow the findings (exp: one alert per finding, as the registry says; got: what fired):\n%s", out)
		return
	}
	t.Logf("%d findings, each raising exactly its one alert:\n%s", len(want), strings.Join(want, "\n"))
}

type promSeries struct{ name, values string }

// alertAgreementInput turns an exposition into promtool input series (with
// the job and instance labels a scrape adds, and up = 1) and lists the
// alerts the findings in it must raise, as label sets of
// count by (alertname, severity, check, target).
func alertAgreementInput(t *testing.T, body string) (series []promSeries, want []string) {
	t.Helper()
	families := parseFamilies(t, body)
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	sort.Strings(names)
	const steady = "x70" // 71 samples a minute apart: past every for: of the rules
	series = append(series, promSeries{fmt.Sprintf(`up{job=%q,instance=%q}`, scrapeJob, scrapeInstance), "1" + steady})
	seen := map[string]bool{}
	for _, name := range names {
		mf := families[name]
		if mf.GetType() != dto.MetricType_GAUGE && mf.GetType() != dto.MetricType_COUNTER && mf.GetType() != dto.MetricType_UNTYPED {
			continue // no rule reads a histogram or summary
		}
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			labels := map[string]string{"job": scrapeJob, "instance": scrapeInstance}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			series = append(series, promSeries{name + labelSet(labels), strconv.FormatFloat(v, 'f', -1, 64) + steady})
			if name != "kerberos_finding" || v != 1 {
				continue
			}
			check, sev := labels["check"], diagnosis.Severity(labels["severity"])
			c, ok := diagnosis.LookupCheck(check)
			if !ok || !c.Allows(sev) {
				t.Errorf("kerberos_finding{check=%q,severity=%q}: not declared in the registry of checks", check, sev)
				continue
			}
			alert, alertSeverity := c.AlertFor(sev)
			w := labelSet(map[string]string{"alertname": alert, "severity": alertSeverity, "check": check, "target": labels["target"]})
			if seen[w] {
				t.Errorf("two findings make the same alert %s", w)
			}
			seen[w] = true
			want = append(want, w)
		}
	}
	sort.Strings(want)
	return series, want
}

// labelSet renders {a="x",b="y"} in name order, escaped as PromQL reads it.
func labelSet(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(labels[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}
