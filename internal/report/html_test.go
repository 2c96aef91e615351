package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

func page(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteHTML(&b, Page{MetricsPath: "/metrics", ProbePath: "/probe", RunbookURLPrefix: "/runbooks/"}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The page's style and script are exactly what LandingCSP allows by hash:
// html/template must not have changed a byte of them.
func TestLandingCSPAllowsThePage(t *testing.T) {
	s := page(t, sample())
	for _, tag := range []string{"style", "script"} {
		open, end := strings.Index(s, "<"+tag+">"), strings.Index(s, "</"+tag+">")
		if open < 0 || end < open {
			t.Fatalf("no <%s>", tag)
		}
		sum := sha256.Sum256([]byte(s[open+len(tag)+2 : end]))
		want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(LandingCSP, want) {
			t.Errorf("LandingCSP %q does not allow the page's %s (%s)", LandingCSP, tag, want)
		}
	}
}

func TestHTMLCausesFirst(t *testing.T) {
	r := sample()
	s := page(t, r)
	summary, causes, table := strings.Index(s, `id="summary"`), strings.Index(s, `id="causes"`), strings.Index(s, `id="instances-table"`)
	if summary < 0 || causes < summary || table < causes {
		t.Fatalf("order: summary at %d, causes at %d, table at %d", summary, causes, table)
	}
	// The causes in the diagnosis's order, each once, with its fix once.
	at := causes
	for i, c := range r.Causes {
		j := strings.Index(s[at:], `id="c`+strconv.Itoa(i+1)+`" data-cause="`+c.Cause+`" data-severity="`+string(c.Severity)+`"`)
		if j < 0 {
			t.Fatalf("cause %d (%s %s) missing or out of order", i+1, c.Cause, c.Subject)
		}
		at += j
	}
	// sqlc's missing SPN, its failed registration and the NTLM first hop
	// it explains are one cause on its account, with the one fix for it.
	if c := r.Causes[0]; c.Cause != "service_account_spns" || c.Subject != `CORP\sqlsvc_c` || len(c.Findings) != 3 {
		t.Errorf("first cause %s %s with %d findings, want sqlc's SPNs on CORP\\sqlsvc_c with 3", c.Cause, c.Subject, len(c.Findings))
	}
	if n := strings.Count(s, "Register the SPNs listed on CORP\\sqlsvc_c and remove them from other accounts"); n != 1 {
		t.Errorf("the fix is on the page %d times, want once (in its cause)", n)
	}
	// The instance table: worst first; sqlc's row names its causes.
	rows := s[table:]
	if i, j, k := strings.Index(rows, ">sqlc</a>"), strings.Index(rows, ">sqla</a>"), strings.Index(rows, ">crm <small>"); i < 0 || k < i || j < k {
		t.Errorf("rows not worst first: sqlc at %d, crm at %d, sqla at %d", i, k, j)
	}
	if !strings.Contains(rows, `<tr class="critical" data-rank="0" data-seen="0"><td><a href="/probe?target=sqlc&amp;debug=true">sqlc</a>`) {
		t.Error("sqlc's row is not a critical row linking to its probe's debug log")
	}
	for _, want := range []string{
		`<a class="tile critical" href="#instances" data-filter="critical"><b>2</b>with criticals</a>`, // sqlc and crm
		`<a class="tile" href="#instances" data-filter=""><b>4</b>instances and services</a>`,
		`<span class="c critical">3 critical</span>`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestHTMLFirstCycleNotice(t *testing.T) {
	r := sample()
	if strings.Contains(page(t, r), `id="first-cycle"`) {
		t.Error("a later cycle shows the first-cycle notice")
	}
	r.FirstCycle = true
	if s := page(t, r); !strings.Contains(s, `<div class="notice first" id="first-cycle"><strong>First collection since the exporter started</strong> — `) {
		t.Error("the first cycle is not marked as such")
	}
}

// A finding or cause first seen within the hour is new; an older one says
// since when; an unknown one says nothing.
func TestHTMLFirstSeen(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	cfg := &config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}, {Name: "sqlb"}, {Name: "sqlc"}}}
	findings := []diagnosis.Finding{
		{Check: "spn_missing", Severity: diagnosis.Critical, Target: "MSSQLSvc/sqla", Instance: "sqla", Summary: "recent", Fix: "a", FirstSeen: now.Add(-59 * time.Minute)},
		{Check: "spn_missing", Severity: diagnosis.Critical, Target: "MSSQLSvc/sqlb", Instance: "sqlb", Summary: "old", Fix: "b", FirstSeen: now.Add(-26 * time.Hour)},
		{Check: "spn_missing", Severity: diagnosis.Critical, Target: "MSSQLSvc/sqlc", Instance: "sqlc", Summary: "unknown", Fix: "c"},
	}
	r := New(cfg, findings, nil, now)
	for i := range r.Causes {
		r.Causes[i].FirstSeen = r.Causes[i].Findings[0].FirstSeen
	}
	s := page(t, r)
	for _, want := range []string{
		`<b>critical</b> <code>spn_missing</code> recent <a href="#c1">cause</a> <span class="new">new</span></li>`,
		`<b>critical</b> <code>spn_missing</code> old <a href="#c2">cause</a> <span class="since">since 2024-04-30 08:00 UTC</span></li>`,
		`<b>critical</b> <code>spn_missing</code> unknown <a href="#c3">cause</a></li>`,
		`data-seen="` + strconv.FormatInt(now.Add(-26*time.Hour).Unix(), 10) + `"`,
		`<span class="new">1 new in the last hour</span>`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// Names from AD and SQL Server reach the page as text: never as markup,
// never as a URL of their own, never as a raw control or bidi character.
func TestHTMLHostileNames(t *testing.T) {
	const inst = "x\"><img src=x onerror=alert(1)>\x1b[2J\u202e"
	const link = "</script><script>alert(2)</script>"
	cfg := &config.Config{SQLInstances: []config.SQLInstance{{Name: inst}}}
	findings := []diagnosis.Finding{{
		Check: "linked_server_hop_anonymous", Severity: diagnosis.Critical, Target: inst + "/" + link, Instance: inst,
		Summary: "hop " + link + " fails\u2028<b>bold</b>", Detail: "javascript:alert(3)", Fix: "fix <i>it</i>",
		Script: []string{"setspn -S 'MSSQLSvc/" + link + "' CORP\\x", "Remove-ADUser x; " + link},
	}}
	r := New(cfg, findings, []Collector{{Name: "sql", Error: "<svg onload=alert(4)>"}}, time.Unix(1e9, 0))
	r.Causes[0].Subject = "<u>" + inst + "</u>"
	s := page(t, r)
	for _, bad := range []string{"<img", "<svg", "<b>bold", "<i>it", "<u>", "alert(2)</script>", "\x1b", "\u202e", "\u2028"} {
		if strings.Contains(s, bad) {
			t.Errorf("hostile text reached the page raw: %q", bad)
		}
	}
	if strings.Count(s, "<script") != 1 {
		t.Errorf("%d script elements, want only the page's own", strings.Count(s, "<script"))
	}
	for i, r := range s {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			t.Errorf("raw %U at byte %d", r, i)
			break
		}
	}
	for _, want := range []string{
		`x&#34;&gt;&lt;img src=x onerror=alert(1)&gt;\x1b[2J\u202e`, // shown as text, escaped
		`href="/probe?target=x%22%3e%3cimg%20src%3dx%20onerror%3dalert%281%29%3e%1b%5b2J%e2%80%ae&amp;debug=true"`,
		"# REFUSED",           // the command that carried a ; is refused, not shown as code
		"&lt;svg onload=",     // the collector's error as text
		"hop &lt;/script&gt;", // the summary as text
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
