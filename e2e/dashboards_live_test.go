package e2e

import (
	"strings"
	"testing"
)

// dashboardVars are the values the live tests give the dashboards'
// variables: the job the test's Prometheus scrapes and an instance regex or
// name.
func dashboardVars(sqlInstance string) map[string]string {
	return map[string]string{"datasource": "prometheus", "job": "kerberos_exporter", "sql_instance": sqlInstance}
}

// TestDashboardQueriesParse sends every panel and variable expression, with
// the Grafana variables substituted, to a real Prometheus: a syntax error
// comes back as bad_data. Nothing needs to be scraped for that.
func TestDashboardQueriesParse(t *testing.T) {
	prom := startPrometheus(t, prometheusConfig{ExporterAddr: freeAddr(t)})
	queries := append(dashboardQueries(t), variableQueries(t)...)
	for _, q := range queries {
		expr := substitute(q.Expr, dashboardVars("sqla"))
		if m := labelValuesCall.FindStringSubmatch(expr); m != nil {
			expr = m[1] // label_values(selector, label) is Grafana's, not PromQL
		}
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a variable is left after substitution: %s", q, expr)
			continue
		}
		r, err := prom.query(expr)
		switch {
		case err != nil:
			t.Errorf("%s: %v", q, err)
		case r.Status != "success":
			t.Errorf("%s: Prometheus refuses it (%s: %s)\n%s", q, r.ErrorType, r.Error, expr)
		}
	}
	t.Logf("%d expressions parsed by %s", len(queries), prom.URL)
}
