package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Description   string  `json:"description"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []templateVar `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int                      `json:"id"`
	Type        string                   `json:"type"`
	Title       string                   `json:"title"`
	Description string                   `json:"description"`
	Datasource  *datasourceRef           `json:"datasource"`
	GridPos     struct{ H, W, X, Y int } `json:"gridPos"`
	Targets     []struct {
		Datasource *datasourceRef `json:"datasource"`
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type templateVar struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// panelQuery is one PromQL expression of a dashboard, with where it is.
type panelQuery struct {
	Dashboard, Panel, RefID, Expr string
}

func (q panelQuery) String() string {
	return q.Dashboard + ` / "` + q.Panel + `" ` + q.RefID
}

func dashboardPaths(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot(t), "dashboards", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards/*.json (err %v)", err)
	}
	return paths
}

func loadDashboards(t testing.TB) map[string]dashboard {
	t.Helper()
	out := map[string]dashboard{}
	for _, p := range dashboardPaths(t) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(strings.NewReader(string(data)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[filepath.Base(p)] = d
	}
	return out
}

// allPanels flattens rows, collapsed or not.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// dashboardQueries returns every panel expression of every dashboard.
func dashboardQueries(t testing.TB) []panelQuery {
	var out []panelQuery
	for file, d := range loadDashboards(t) {
		for _, p := range allPanels(d.Panels) {
			for _, tg := range p.Targets {
				out = append(out, panelQuery{Dashboard: file, Panel: p.Title, RefID: tg.RefID, Expr: tg.Expr})
			}
		}
	}
	return out
}

// variableQueries returns the PromQL inside each query variable's
// label_values(...) (or the query itself when it is plain PromQL).
func variableQueries(t testing.TB) []panelQuery {
	var out []panelQuery
	for file, d := range loadDashboards(t) {
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q := variableQueryText(v)
			out = append(out, panelQuery{Dashboard: file, Panel: "variable " + v.Name, RefID: "query", Expr: q})
		}
	}
	return out
}

func variableQueryText(v templateVar) string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var obj struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &obj)
	return obj.Query
}

// labelValuesCall is Grafana's label_values(selector, label).
var labelValuesCall = regexp.MustCompile(`^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// grafanaVariable matches $name, ${name} and ${name:format}.
var grafanaVariable = regexp.MustCompile(`\$\{([a-zA-Z0-9_]+)(?::[a-z]+)?\}|\$([a-zA-Z0-9_]+)`)

// substitute replaces Grafana's variables by values Prometheus accepts:
// vars for the dashboard's own, durations for the built-in intervals. An
// unknown variable is left in place, so the query fails to parse and the
// test names it.
func substitute(expr string, vars map[string]string) string {
	builtin := map[string]string{
		"__rate_interval": "1m", "__interval": "15s", "__interval_ms": "15000",
		"__range": "1h", "__range_s": "3600", "__range_ms": "3600000",
	}
	return grafanaVariable.ReplaceAllStringFunc(expr, func(m string) string {
		g := grafanaVariable.FindStringSubmatch(m)
		name := g[1] + g[2]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := builtin[name]; ok {
			return v
		}
		return m
	})
}

// metricLabels reads docs/metrics.md's label column for each metric.
func metricLabels(t testing.TB) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	row := regexp.MustCompile("^\\|\\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\\s*\\|([^|]*)\\|")
	for _, line := range strings.Split(string(data), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" && l != "—" && l != "…" {
				out[m[1]] = append(out[m[1]], l)
			}
		}
	}
	return out
}

func TestDashboardsStructure(t *testing.T) {
	uids := map[string]bool{}
	for file, d := range loadDashboards(t) {
		if d.UID == "" || uids[d.UID] {
			t.Errorf("%s: uid %q empty or not unique", file, d.UID)
		}
		uids[d.UID] = true
		if d.Title == "" || d.Description == "" {
			t.Errorf("%s: needs a title and a description", file)
		}
		if d.SchemaVersion < 36 {
			t.Errorf("%s: schemaVersion %d: Grafana 10/11 dashboards are 36 or later", file, d.SchemaVersion)
		}
		vars := map[string]templateVar{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || string(v.Query) != `"prometheus"` {
			t.Errorf("%s: needs a datasource variable of type prometheus, got %+v", file, v)
		}
		for _, name := range []string{"job", "sql_instance"} {
			v, ok := vars[name]
			if !ok || v.Type != "query" {
				t.Errorf("%s: needs a query variable %s", file, name)
				continue
			}
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("%s: variable %s must query ${datasource}", file, name)
			}
			if !labelValuesCall.MatchString(variableQueryText(v)) {
				t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", file, name, variableQueryText(v))
			}
			if v.IncludeAll && v.AllValue != ".*" {
				t.Errorf("%s: variable %s includes All: allValue must be .* for the =~ matchers", file, name)
			}
		}
		ids := map[int]bool{}
		for _, p := range allPanels(d.Panels) {
			where := file + ` / "` + p.Title + `"`
			if ids[p.ID] {
				t.Errorf("%s: panel id %d is used twice", where, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
				t.Errorf("%s: gridPos %+v outside the 24-column grid", where, p.GridPos)
			}
			if p.Type == "row" {
				continue // rows carry a title only
			}
			if strings.TrimSpace(p.Description) == "" {
				t.Errorf("%s: no description", where)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel datasource must be ${datasource}", where)
			}
			if p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: no unit", where)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
					t.Errorf("%s %s: target datasource must be ${datasource}", where, tg.RefID)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s %s: empty expression", where, tg.RefID)
				}
			}
		}
	}
}

// TestDashboardsUseVariables: every query is restricted to $job, and every
// query on a metric that has an sql_instance label (or an SPN target) to
// $sql_instance, so the variables mean what they say.
func TestDashboardsUseVariables(t *testing.T) {
	labels := metricLabels(t)
	for _, q := range dashboardQueries(t) {
		if !strings.Contains(q.Expr, `job=~"$job"`) {
			t.Errorf("%s: not restricted to job=~\"$job\": %s", q, q.Expr)
		}
		for _, m := range metricNames(q.Expr) {
			for _, l := range labels[m] {
				if l == "sql_instance" && !strings.Contains(q.Expr, "$sql_instance") {
					t.Errorf("%s: %s has an sql_instance label but the query ignores $sql_instance", q, m)
				}
			}
		}
	}
}

// TestDashboardMetricNamesDocumented: every metric a panel or a variable
// selects is in docs/metrics.md. A typo fails here.
func TestDashboardMetricNamesDocumented(t *testing.T) {
	docs := documented(t)
	queries := append(dashboardQueries(t), variableQueries(t)...)
	if len(queries) < 20 {
		t.Fatalf("only %d dashboard queries found", len(queries))
	}
	for _, q := range queries {
		expr := q.Expr
		if m := labelValuesCall.FindStringSubmatch(expr); m != nil {
			expr = m[1]
		}
		names := metricNames(substitute(expr, map[string]string{"job": "j", "sql_instance": "i", "datasource": "d"}))
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", q, q.Expr)
		}
		for _, n := range names {
			if !docs[n] {
				t.Errorf("%s: metric %s is not in docs/metrics.md", q, n)
			}
		}
	}
}

func TestSubstitute(t *testing.T) {
	got := substitute(`rate(x{job=~"$job",i="${sql_instance}",k="${sql_instance:regex}"}[$__rate_interval]) > $unknown`,
		map[string]string{"job": "kerberos_exporter", "sql_instance": "sqla"})
	want := `rate(x{job=~"kerberos_exporter",i="sqla",k="sqla"}[1m]) > $unknown`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
