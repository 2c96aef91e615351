package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// sample is a small fleet with findings of every severity, one in a
// service, one fleet-wide, one for an instance no longer configured, and
// a failed collector.
func sample() *Report {
	cfg := &config.Config{
		SQLInstances: []config.SQLInstance{{Name: "sqla"}, {Name: "sqlc"}},
		Services:     []config.Service{{Name: "crm"}},
	}
	findings := []diagnosis.Finding{
		{
			Check: "spn_registration_failed", Severity: diagnosis.Warning, Target: "sqlc", Instance: "sqlc", Subject: `CORP\sqlsvc_c`,
			Summary: "SQL Server could not register MSSQLSvc/sqlc.corp.test:1433 at start-up and it is missing",
			Detail:  "At its last start-up SQL Server could not register MSSQLSvc/sqlc.corp.test:1433 (error 26067, Windows return code 0x2098).",
			Fix:     "Grant CORP\\sqlsvc_c \"Validated write to service principal name\" on its own account object, then restart SQL Server.",
			Script: []string{
				"dsacls 'CN=sqlsvc_c,CN=Users,DC=corp,DC=test' /G 'SELF:WS;Validated write to service principal name'",
				"# then restart the SQL Server service of sqlc so that it registers its SPNs",
			},
		},
		{
			Check: "spn_missing", Severity: diagnosis.Critical, Target: "MSSQLSvc/sqlc.corp.test:1433", Instance: "sqlc", Subject: `CORP\sqlsvc_c`,
			Summary: "SPN MSSQLSvc/sqlc.corp.test:1433 is not registered on any account",
			Detail:  "No account in the forest holds MSSQLSvc/sqlc.corp.test:1433. A client asking the KDC for a ticket to it gets KDC_ERR_S_PRINCIPAL_UNKNOWN (error 7) and Windows silently falls back to NTLM: a linked server that uses the caller's credentials fails with \"Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'\" (error 18456).",
			Fix:     "Register the SPN on CORP\\sqlsvc_c, the account the service runs as, with setspn -S.",
			Script:  []string{"setspn -S MSSQLSvc/sqlc.corp.test:1433 CORP\\sqlsvc_c"},
		},
		{
			Check: "first_hop_ntlm", Severity: diagnosis.Critical, Target: "sqlc", Instance: "sqlc",
			CausedBy: []diagnosis.FindingRef{{Check: "spn_missing", Target: "MSSQLSvc/sqlc.corp.test:1433"}},
			Summary:  "Connections to sqlc use NTLM where Kerberos is expected",
			Detail:   "The exporter connected to sqlc from another host over TCP and was authenticated with NTLM.",
			Fix:      "Fix the causes named here.",
		},
		{
			Check: "user_sensitive", Severity: diagnosis.Warning, Target: "CORP\\alice",
			Summary: "CORP\\alice is marked \"Account is sensitive and cannot be delegated\"",
			Detail:  "Her tickets are not forwardable.",
			Fix:     "Clear the flag if she does not need it.",
			Script:  []string{"Set-ADAccountControl -AccountNotDelegated $false -Identity 'alice'"},
		},
		{
			Check: "spn_missing", Severity: diagnosis.Critical, Target: "HTTP/crm.corp.test", Instance: "crm", Subject: `CORP\crmweb`,
			Summary: "SPN HTTP/crm.corp.test is not registered on any account",
			Detail:  "No account in the forest holds HTTP/crm.corp.test.",
			Fix:     "Register it on CORP\\crmweb.",
			Script:  []string{"setspn -S HTTP/crm.corp.test CORP\\crmweb"},
		},
		{
			Check: "exporter_local", Severity: diagnosis.Info, Target: "sqlold", Instance: "sqlold",
			Summary: "The exporter runs on sqlold's host, so its auth scheme measurement is void",
			Detail:  "Local connections always use NTLM.",
			Fix:     "Run the exporter on another host.",
		},
	}
	collectors := []Collector{
		{Name: "sql", Success: true, Duration: 1200 * time.Millisecond},
		{Name: "dns", Success: false, Error: "lookup sqla.corp.test on 127.0.0.1:53: i/o timeout", Duration: 5 * time.Second},
		{Name: "kdc", Success: true, Incomplete: "120 of 300 SPNs not checked this cycle (deadline)", Duration: 30 * time.Second},
	}
	return New(cfg, findings, collectors, time.Date(2024, 5, 1, 10, 0, 2, 0, time.UTC))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", name, got)
	}
}

func TestGrouping(t *testing.T) {
	r := sample()
	var order []string
	for _, g := range r.Groups {
		order = append(order, g.Kind+":"+g.Name)
	}
	want := "sql_instance:sqla sql_instance:sqlc service:crm sql_instance:sqlold fleet:"
	if strings.Join(order, " ") != want {
		t.Fatalf("groups %q, want %q", strings.Join(order, " "), want)
	}
	sqlc := r.Groups[1]
	if len(sqlc.Findings) != 3 || sqlc.Findings[0].Check != "first_hop_ntlm" || sqlc.Findings[2].Severity != diagnosis.Warning {
		t.Errorf("sqlc findings not sorted by severity then check: %+v", sqlc.Findings)
	}
	if (r.Counts != Counts{Critical: 3, Warning: 2, Info: 1}) || (sqlc.Counts != Counts{Critical: 2, Warning: 1}) {
		t.Errorf("counts %+v, sqlc %+v", r.Counts, sqlc.Counts)
	}
	if !r.HasCritical() {
		t.Error("HasCritical is false")
	}
	if f := r.FailedCollectors(); len(f) != 2 || f[0].Name != "dns" || f[1].Name != "kdc" {
		t.Errorf("failed collectors %+v", f)
	}
}

func TestTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", b.Bytes())
	for _, line := range strings.Split(b.String(), "\n") {
		if len(line) > textWidth && !strings.HasPrefix(line, "      ") {
			t.Errorf("prose line longer than %d columns: %q", textWidth, line)
		}
	}
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", b.Bytes())
	var back struct {
		Summary Counts `json:"summary"`
		Groups  []struct {
			Name     string              `json:"name"`
			Findings []diagnosis.Finding `json:"findings"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Summary.Critical != 3 || back.Groups[0].Findings == nil || back.Groups[1].Findings[1].Script[0] != `setspn -S MSSQLSvc/sqlc.corp.test:1433 CORP\sqlsvc_c` {
		t.Errorf("JSON does not round-trip: %+v", back)
	}
}

// The first cycle since the exporter started is said to be so, in the text
// header and as first_cycle in JSON (false otherwise).
func TestFirstCycleIsMarked(t *testing.T) {
	for _, first := range []bool{false, true} {
		r := sample()
		r.FirstCycle = first
		var text, js bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		header, _, _ := strings.Cut(text.String(), "\n")
		if got := strings.HasSuffix(header, "(first collection since start)"); got != first {
			t.Errorf("first=%v: text header %q", first, header)
		}
		var back struct {
			FirstCycle *bool `json:"first_cycle"`
		}
		if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.FirstCycle == nil || *back.FirstCycle != first {
			t.Errorf("first=%v: JSON first_cycle %v (err %v)", first, back.FirstCycle, err)
		}
	}
}

func TestFixScriptGolden(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteFixScript(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "fix.ps1", b.Bytes())
	s := b.String()
	for _, want := range []string{
		"Generated by", "2024-05-01T10:00:02Z", "REVIEW", "never runs anything against AD",
		"throw 'Review this script first",
		"# --- fixes service_account_spns CORP\\sqlsvc_c (critical)\n# The SPNs of CORP\\sqlsvc_c are missing or misplaced (2 affected)\n# affects 2: MSSQLSvc/sqlc.corp.test:1433, sqlc\nsetspn -S MSSQLSvc/sqlc.corp.test:1433 CORP\\sqlsvc_c\n",
		"# --- fixes delegated_user CORP\\alice (warning)",
		"# exporter_placement sqlold (info): Run the exporter on another host.",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("fix script lacks %q", want)
		}
	}
	// Every command follows the header of the cause it fixes.
	lastHeader := ""
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "# --- fixes "):
			lastHeader = line
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "throw ") || strings.HasPrefix(line, "$ErrorActionPreference"):
		case lastHeader == "":
			t.Errorf("command %q has no finding header", line)
		}
	}
}

func TestFixScriptKeepsEachCommandOnOneLine(t *testing.T) {
	r := New(nil, []diagnosis.Finding{{
		Check: "dns_reverse_mismatch", Severity: diagnosis.Warning, Target: "sqlm.corp.test",
		Summary: "two\nlines", Fix: "x",
		Script: []string{"Add-DnsServerResourceRecordPtr -Name '19'  # stale name\nRemove-ADUser x"},
	}}, nil, time.Unix(0, 0))
	var b bytes.Buffer
	if err := r.WriteFixScript(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "Remove-ADUser") || line == "lines" {
			t.Fatalf("a line break in a name started a new line: %q", b.String())
		}
	}
}

func TestFixScriptWithNothingToFix(t *testing.T) {
	var b bytes.Buffer
	if err := New(nil, nil, nil, time.Unix(0, 0)).WriteFixScript(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "# Nothing to fix with a command.") {
		t.Errorf("empty fix script:\n%s", b.String())
	}
}

func TestPending(t *testing.T) {
	var text, js, page bytes.Buffer
	r := Pending(&config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}}})
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(&page, Page{MetricsPath: "/metrics", ProbePath: "/probe"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "No collection has completed yet") ||
		!strings.Contains(js.String(), `"completed": false`) ||
		!strings.Contains(page.String(), "No collection has completed yet") ||
		!strings.Contains(page.String(), `href="/probe?target=sqla&amp;debug=true"`) || strings.Contains(page.String(), "No findings") {
		t.Errorf("pending report:\n%s\n%s\n%s", text.String(), js.String(), page.String())
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteHTML(&b, Page{MetricsPath: "/metrics", ProbePath: "/probe", RunbookURLPrefix: "/runbooks/"}); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, bad := range []string{"<link", "src=", "http://", "https://", "@import", "url(", "<img", "<iframe", "style="} {
		if strings.Contains(s, bad) {
			t.Errorf("page refers to an external asset or has inline handlers or styles: %q", bad)
		}
	}
	if handler := regexp.MustCompile(`<[^>]*\son[a-z]+=`).FindString(s); handler != "" {
		t.Errorf("page has an inline event handler: %q", handler)
	}
	if strings.Count(s, "<script") != 1 || strings.Count(s, "<style") != 1 {
		t.Error("the page should have exactly its own style and script")
	}
	for _, want := range []string{
		`<a href="/metrics">Metrics</a>`, `href="/probe?target=sqla&amp;debug=true"`, `href="/probe?target=sqlc&amp;debug=true"`,
		// a service is a row without a probe link
		`<td>crm <small>service</small></td>`,
		`id="fleet"`, `data-cause="service_account_spns" data-severity="critical"`, `href="/runbooks/KerberosSPNMissing.md"`,
		"lookup sqla.corp.test on 127.0.0.1:53: i/o timeout",
		"setspn -S MSSQLSvc/sqlc.corp.test:1433 CORP\\sqlsvc_c",
		"The SPNs of CORP\\sqlsvc_c are missing or misplaced",
		"sqlold&#39;s host", "&#34;Account is sensitive and cannot be delegated&#34;",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestHTMLNoFindings(t *testing.T) {
	var b bytes.Buffer
	r := New(&config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}}}, nil, []Collector{{Name: "sql", Success: true}}, time.Unix(0, 0))
	if err := r.WriteHTML(&b, Page{MetricsPath: "/metrics", ProbePath: "/probe"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `id="no-findings"`) || !strings.Contains(b.String(), `id="no-causes"`) || strings.Contains(b.String(), "<article") {
		t.Errorf("empty state missing:\n%s", b.String())
	}
}

// TestFindingOrderIsTheDiagnosis: the report shows findings in the
// diagnosis's order, where case does not decide (SPNs and hosts are
// case-insensitive).
func TestFindingOrderIsTheDiagnosis(t *testing.T) {
	findings := []diagnosis.Finding{
		{Check: "spn_missing", Severity: diagnosis.Warning, Target: "MSSQLSvc/sqlc.corp.test", Instance: "sqlc"},
		{Check: "spn_missing", Severity: diagnosis.Warning, Target: "MSSQLSvc/SQLD", Instance: "sqlc"},
		{Check: "spn_missing", Severity: diagnosis.Warning, Target: "MSSQLSvc/SQLC", Instance: "sqlc"},
	}
	want := append([]diagnosis.Finding(nil), findings...)
	diagnosis.SortFindings(want)
	r := New(&config.Config{SQLInstances: []config.SQLInstance{{Name: "sqlc"}}}, findings, nil, time.Now())
	var got, exp []string
	for _, f := range r.Groups[0].Findings {
		got = append(got, f.Target)
	}
	for _, f := range want {
		exp = append(exp, f.Target)
	}
	if strings.Join(got, " ") != strings.Join(exp, " ") || exp[0] != "MSSQLSvc/SQLC" || exp[2] != "MSSQLSvc/SQLD" {
		t.Errorf("report order %v, diagnosis order %v (want SQLC, sqlc.corp.test, SQLD)", got, exp)
	}
}

// TestFixScriptWritesEachCommandOnce: findings of one cause, and causes,
// that call for the same command (two front ends running as one account,
// each with a linked server to one back end) get it once in the file.
func TestFixScriptWritesEachCommandOnce(t *testing.T) {
	line := "Set-ADUser 'sqlsvc_fe' -Add @{'msDS-AllowedToDelegateTo'='MSSQLSvc/sqlb.corp.test:1433'}"
	alt := "# or, instead, resource-based constrained delegation on the back end: Set-ADUser 'sqlsvc_b' -PrincipalsAllowedToDelegateToAccount (Get-ADUser 'sqlsvc_fe')"
	var findings []diagnosis.Finding
	for _, fe := range []string{"fe1", "fe2"} {
		findings = append(findings, diagnosis.Finding{
			Check: "delegation_missing", Severity: diagnosis.Critical, Target: fe + "/SQLB", Instance: fe, Subject: `CORP\sqlsvc_fe`,
			Summary: "CORP\\sqlsvc_fe may not delegate", Fix: "Trust it for delegation to sqlb's SPNs.", Script: []string{line, alt},
		})
	}
	// Another cause calling for the same command (the unconstrained
	// delegation's replacement) does not repeat it either.
	findings = append(findings, diagnosis.Finding{
		Check: "delegation_unconstrained", Severity: diagnosis.Warning, Target: `CORP\sqlsvc_fe`, Subject: `CORP\sqlsvc_fe`,
		Summary: "unconstrained", Fix: "Replace it.", Script: []string{line, "Set-ADAccountControl -TrustedForDelegation $false -Identity 'sqlsvc_fe'"},
	})
	r := New(nil, findings, nil, time.Unix(0, 0))
	if len(r.Causes) != 2 || len(r.Causes[0].Affected) != 2 {
		t.Fatalf("causes %+v", r.Causes)
	}
	var b bytes.Buffer
	if err := r.WriteFixScript(&b); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), line); n != 1 {
		t.Errorf("the delegation line is written %d times:\n%s", n, b.String())
	}
	if n := strings.Count(b.String(), alt); n != 1 {
		t.Errorf("the alternative is written %d times:\n%s", n, b.String())
	}
	if !strings.Contains(b.String(), "# and 1 command already written above for another cause") {
		t.Errorf("the repeated command is not accounted for:\n%s", b.String())
	}
}

// TestFixScriptWritesSharedAlternativesOnce: two front-end accounts (two
// causes) that may not delegate to one back end share its one
// resource-based delegation line, a commented alternative, and its note:
// the file has each once, the second block says so. A comment that
// introduces the lines after it (ending in ":") stays with each block.
func TestFixScriptWritesSharedAlternativesOnce(t *testing.T) {
	alt := "# or, instead, resource-based constrained delegation on the back end: Set-ADUser 'sqlsvc_b' -PrincipalsAllowedToDelegateToAccount 'websvc',(Get-ADUser 'sqlsvc_a'),(Get-ADUser 'sqlsvc_c')"
	note := `# -PrincipalsAllowedToDelegateToAccount replaces the whole list of CORP\sqlsvc_b: the line keeps the 1 it allows today (CORP\websvc) and adds CORP\sqlsvc_a, CORP\sqlsvc_c`
	intro := "# keep MSSQLSvc/sqlb.corp.test:1433 on the account the service runs as; delete it from the others:"
	var findings []diagnosis.Finding
	for _, fe := range []string{"a", "c"} {
		findings = append(findings, diagnosis.Finding{
			Check: "delegation_missing", Severity: diagnosis.Critical, Target: "sql" + fe + "/SQLB", Instance: "sql" + fe, Subject: `CORP\sqlsvc_` + fe,
			Summary: `CORP\sqlsvc_` + fe + " may not delegate users' credentials to sqlb (linked server SQLB)", Fix: "Trust it for delegation to sqlb's SPNs.",
			Script: []string{"Set-ADUser 'sqlsvc_" + fe + "' -Add @{'msDS-AllowedToDelegateTo'='MSSQLSvc/sqlb.corp.test:1433'}", alt, note},
		}, diagnosis.Finding{
			Check: "spn_duplicate", Severity: diagnosis.Warning, Target: "dup" + fe, Subject: `CORP\sqlsvc_` + fe + "x",
			Summary: "duplicate", Fix: "Delete it from the others.",
			Script: []string{intro, "# setspn -D MSSQLSvc/sqlb.corp.test:1433 CORP\\sqlsvc_" + fe},
		})
	}
	r := New(nil, findings, nil, time.Date(2024, 5, 1, 10, 0, 2, 0, time.UTC))
	var b bytes.Buffer
	if err := r.WriteFixScript(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "fix-shared.ps1", b.Bytes())
	s := b.String()
	for line, want := range map[string]int{alt: 1, note: 1, intro: 2, "# and 2 commented lines already written above for another cause": 1} {
		if n := strings.Count(s, line+"\n"); n != want {
			t.Errorf("%q is written %d times, want %d:\n%s", line, n, want, s)
		}
	}
}

// TestTextLeadsWithCauses: the text report starts with the causes, most
// urgent first, and shortens a long list of what a cause affects.
func TestTextLeadsWithCauses(t *testing.T) {
	var findings []diagnosis.Finding
	for i := 1; i <= 40; i++ {
		findings = append(findings, diagnosis.Finding{
			Check: "delegation_missing", Severity: diagnosis.Critical, Target: fmt.Sprintf("fe%02d/SQLB", i), Subject: `CORP\sqlsvc_fe`,
			Summary: "x", Fix: "Trust CORP\\sqlsvc_fe for delegation.",
		})
	}
	findings = append(findings, diagnosis.Finding{Check: "user_sensitive", Severity: diagnosis.Warning, Target: `CORP\alice`, Summary: "y", Fix: "z"})
	var b bytes.Buffer
	if err := New(nil, findings, nil, time.Unix(0, 0)).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	causes, first, second, findingsAt := strings.Index(s, "2 causes — fix these first"), strings.Index(s, " 1. CRITICAL  service_account_cannot_delegate  CORP\\sqlsvc_fe"), strings.Index(s, " 2. WARNING   delegated_user  CORP\\alice"), strings.Index(s, "41 findings underneath")
	if causes < 0 || first < causes || second < first || findingsAt < second {
		t.Errorf("causes do not lead in order:\n%s", s)
	}
	if !strings.Contains(s, "Affects 40: fe01/SQLB, fe02/SQLB, fe03/SQLB, fe04/SQLB, fe05/SQLB and 35 more") {
		t.Errorf("the affected list is not shortened:\n%s", s)
	}
}
