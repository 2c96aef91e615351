package e2e

import (
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// promqlKeywords are identifiers that are not metric names when they are not
// followed by an opening parenthesis.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
	"ignoring": true, "group_left": true, "group_right": true, "offset": true, "bool": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true, "atan2": true, "start": true, "end": true,
}

// groupingClause is a label list after by/without/on/ignoring/group_left/group_right.
var groupingClause = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)

// metricNames returns the metric names a PromQL expression selects. The
// Prometheus parser is not a dependency of this module, so this is a small
// scanner: it drops string literals, label matchers, ranges and grouping
// label lists, then keeps the identifiers that are neither keywords nor
// function or aggregation names (followed by "("). Names inside label
// matchers ({__name__="x"}) are not seen; the rules and dashboards do not use them.
func metricNames(expr string) []string {
	s := stripStrings(expr)
	s = stripBlocks(s, '{', '}')
	s = stripBlocks(s, '[', ']')
	for {
		next := groupingClause.ReplaceAllString(s, " ")
		if next == s {
			break
		}
		s = next
	}
	seen := map[string]bool{}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// a number or a duration (5m, 1.5e3, 0x1f): one token
			j := i + 1
			for j < len(s) && (isIdentChar(s[j]) || s[j] == '.' || (s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && (isIdentChar(s[j]) || s[j] == ':') {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
				k++
			}
			isCall := k < len(s) && s[k] == '('
			if !isCall && !promqlKeywords[word] {
				seen[word] = true
			}
			i = j
		default:
			i++
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// stripStrings replaces PromQL string literals (double-quoted, single-quoted
// and raw) by a space.
func stripStrings(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		q := s[i]
		if q != '"' && q != '\'' && q != '`' {
			b.WriteByte(q)
			continue
		}
		j := i + 1
		for j < len(s) && s[j] != q {
			if s[j] == '\\' && q != '`' {
				j++
			}
			j++
		}
		b.WriteByte(' ')
		i = j
	}
	return b.String()
}

// stripBlocks removes open...close blocks (not nested in practice).
func stripBlocks(s string, open, close byte) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == open:
			depth++
		case s[i] == close && depth > 0:
			depth--
			if depth == 0 {
				b.WriteByte(' ')
			}
		case depth == 0:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// templateQuery finds `query "..."` and `query (printf "..." ...)` in an
// alert annotation template, the PromQL an annotation runs.
var templateQuery = regexp.MustCompile(`query\s+\(?\s*(?:printf\s+)?("(?:[^"\\]|\\.)*")`)

// templateQueries returns the PromQL expressions an annotation template runs,
// with printf verbs replaced by a plain value.
func templateQueries(tmpl string) []string {
	var out []string
	for _, m := range templateQuery.FindAllStringSubmatch(tmpl, -1) {
		q, err := strconv.Unquote(m[1])
		if err != nil {
			q = m[1]
		}
		out = append(out, strings.NewReplacer("%q", `"x"`, "%s", "x", "%v", "x", "%d", "1").Replace(q))
	}
	return out
}

func TestMetricNamesScanner(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`up{job="kerberos_exporter"} == 0`, []string{"up"}},
		{`max by (job, instance, sql_instance) (kerberos_sql_connection_auth_scheme{auth_scheme="NTLM"} == 1 or kerberos_sql_connection_ntlm_fallback == 1)
		  and on (job, instance, sql_instance) (kerberos_sql_expect_kerberos == 1)
		  unless on(job, instance, sql_instance) (kerberos_sql_exporter_is_local == 1)`,
			[]string{"kerberos_sql_connection_auth_scheme", "kerberos_sql_connection_ntlm_fallback", "kerberos_sql_expect_kerberos", "kerberos_sql_exporter_is_local"}},
		{`sum(rate(kerberos_x_total{a="b(c)"}[5m] offset 1h)) by (le) / 1.5e3 > bool 0x1f`, []string{"kerberos_x_total"}},
		{`time() - kerberos_exporter_collector_last_success_timestamp_seconds > 900`, []string{"kerberos_exporter_collector_last_success_timestamp_seconds"}},
		{`min_over_time(sql_instance:kerberos_sql_ntlm_tcp_connections:sum[1h] offset 15m)`, []string{"sql_instance:kerberos_sql_ntlm_tcp_connections:sum"}},
		{`sum without (source) (kerberos_dc_clock_skew_seconds) * on (job) group_left (version) kerberos_exporter_build_info`, []string{"kerberos_dc_clock_skew_seconds", "kerberos_exporter_build_info"}},
		{`label_replace(kerberos_spn_present, "t", "$1", "target", "(.*)")`, []string{"kerberos_spn_present"}},
		// a typo is a name, and so is a misspelt function without parentheses
		{`kerberos_sql_conection_auth_scheme == 1`, []string{"kerberos_sql_conection_auth_scheme"}}, //nolint:misspell // a typo on purpose
	}
	for _, c := range cases {
		if got := metricNames(c.expr); !reflect.DeepEqual(got, c.want) {
			t.Errorf("metricNames(%q)\n got %v\nwant %v", c.expr, got, c.want)
		}
	}
	q := templateQueries(`held by {{ range query (printf "kerberos_spn_holder_info{job=%q,spn=%q}" $labels.job $labels.spn) }}x{{ end }} {{ with query "up == 0" }}{{ end }}`)
	if want := []string{`kerberos_spn_holder_info{job="x",spn="x"}`, `up == 0`}; !reflect.DeepEqual(q, want) {
		t.Errorf("templateQueries: got %q, want %q", q, want)
	}
}
