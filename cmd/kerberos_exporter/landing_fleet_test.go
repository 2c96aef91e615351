package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/report"
)

// landingPageBudget is the landing page's size goal at 500 instances.
const landingPageBudget = 300 << 10

// fleetResult is a completed cycle over n SQL instances with what a large
// estate realistically shows: a few shared causes with a wide blast radius
// (a service account without delegation, SPNs missing on one team's
// servers, SPN registration refused for one account, an unreadable error
// log on many instances, one DC's clock), NTLM where Kerberos is expected,
// a handful of unreachable instances, and most of the fleet healthy. Findings
// of one cause share its fix, as the diagnosis writes them.
func fleetResult(n int) *cycle.Result {
	sites := []string{"ams", "ber", "cph", "dub", "fra", "lon", "mad", "par"}
	cfg := &config.Config{}
	name := func(i int) string { return fmt.Sprintf("sql-%s-%03d", sites[i%len(sites)], i) }
	for i := 0; i < n; i++ {
		cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: name(i), Host: name(i) + ".corp.example.com", Port: 1433})
	}
	finished := time.Date(2025, 3, 14, 3, 7, 0, 0, time.UTC)
	snap := facts.New(finished.Add(-40 * time.Second))
	snap.Finished = finished
	old, recent := finished.Add(-26*time.Hour), finished.Add(-20*time.Minute)
	var fs []diagnosis.Finding
	add := func(i int, f diagnosis.Finding) {
		f.Instance = name(i)
		host := name(i) + ".corp.example.com"
		r := strings.NewReplacer("{i}", name(i), "{host}", host)
		f.Target, f.Summary, f.Detail = r.Replace(f.Target), r.Replace(f.Summary), r.Replace(f.Detail)
		script := make([]string, len(f.Script))
		for j, l := range f.Script {
			script[j] = r.Replace(l)
		}
		f.Script = script
		fs = append(fs, f)
	}
	for i := 0; i < n; i++ {
		switch {
		case i%25 == 3: // the pool account's linked servers: delegation missing, hop anonymous
			add(i, diagnosis.Finding{
				Check: "delegation_missing", Severity: diagnosis.Critical, Target: "{i}/REPORTING", FirstSeen: recent,
				Summary: "{i} cannot delegate to the linked server REPORTING: CORP\\svc_sql_pool3 is not trusted for delegation to MSSQLSvc/rpt01.corp.example.com:1433",
				Detail:  "A self-mapped linked server passes the caller's identity on; without constrained delegation the second hop arrives as ANONYMOUS LOGON.",
				Fix:     "Allow CORP\\svc_sql_pool3 to delegate to MSSQLSvc/rpt01.corp.example.com:1433 (constrained, Kerberos only).",
				Script:  []string{"Set-ADUser 'svc_sql_pool3' -Add @{'msDS-AllowedToDelegateTo'='MSSQLSvc/rpt01.corp.example.com:1433','MSSQLSvc/rpt01.corp.example.com'}"},
			})
			add(i, diagnosis.Finding{
				Check: "linked_server_hop_anonymous", Severity: diagnosis.Critical, Target: "{i}/REPORTING", FirstSeen: recent,
				Summary: "The linked server REPORTING on {i} fails with ANONYMOUS LOGON",
				Detail:  "Queries through REPORTING fail with Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON' (error 18456).",
				Fix:     "Allow CORP\\svc_sql_pool3 to delegate to MSSQLSvc/rpt01.corp.example.com:1433 (constrained, Kerberos only).",
			})
		case i%40 == 7: // one team's servers: SPNs missing, clients on NTLM
			add(i, diagnosis.Finding{
				Check: "spn_missing", Severity: diagnosis.Critical, Target: "MSSQLSvc/{host}:1433", FirstSeen: old,
				Summary: "SPN MSSQLSvc/{host}:1433 is not registered on any account",
				Detail:  "Clients asking for a ticket get KDC_ERR_S_PRINCIPAL_UNKNOWN and fall back to NTLM.",
				Fix:     "Register the instances' SPNs on CORP\\svc_sql_fin, the account they run as, with setspn -S.",
				Script:  []string{"setspn -S MSSQLSvc/{host}:1433 CORP\\svc_sql_fin"},
			})
			add(i, diagnosis.Finding{
				Check: "first_hop_ntlm", Severity: diagnosis.Critical, Target: "{i}", FirstSeen: old,
				Summary: "Connections to {i} use NTLM where Kerberos is expected",
				Detail:  "The exporter connected over TCP from another host and was authenticated with NTLM.",
				Fix:     "Register the instances' SPNs on CORP\\svc_sql_fin, the account they run as, with setspn -S.",
			})
		case i%9 == 2: // registration refused at start-up for one account
			add(i, diagnosis.Finding{
				Check: "spn_registration_failed", Severity: diagnosis.Warning, Target: "{i}", FirstSeen: old,
				Summary: "SQL Server could not register its SPNs at start-up on {i}",
				Detail:  "Error 26067 at the last start-up: the service account may not write its own servicePrincipalName.",
				Fix:     "Grant CORP\\svc_sql_std \"Validated write to service principal name\" on its own account object, then restart SQL Server.",
				Script:  []string{"dsacls 'CN=svc_sql_std,OU=Service Accounts,DC=corp,DC=example,DC=com' /G 'SELF:WS;Validated write to service principal name'"},
			})
		case i%50 == 11: // unreachable
			add(i, diagnosis.Finding{
				Check: "sql_unreachable", Severity: diagnosis.Warning, Target: "{i}", FirstSeen: recent,
				Summary: "The exporter cannot log in to {i}: connection refused",
				Detail:  "Nothing about Kerberos on {i} is known while the exporter cannot connect.",
				Fix:     "Check that SQL Server runs and listens on TCP 1433, and that the exporter's host may reach it.",
			})
		case i%5 == 4: // the error log is unreadable
			add(i, diagnosis.Finding{
				Check: "spn_registration_unknown", Severity: diagnosis.Info, Target: "{i}",
				Summary: "SPN registration at start-up is unknown on {i}: the exporter may not read the error log",
				Detail:  "Without the error log the exporter cannot tell whether SQL Server registered its SPNs.",
				Fix:     "Grant the exporter's login VIEW ANY ERROR LOG (SQL Server 2022) or membership of securityadmin.",
				Script:  []string{"# in SQL Server: GRANT VIEW ANY ERROR LOG TO [CORP\\krbmon]"},
			})
		}
	}
	fs = append(fs, diagnosis.Finding{
		Check: "clock_skew_dc", Severity: diagnosis.Warning, Target: "dc2.corp.example.com", FirstSeen: recent,
		Summary: "dc2.corp.example.com's clock is 2m10s ahead of the exporter's",
		Detail:  "Kerberos refuses tickets whose time differs by more than 5 minutes; at 2 minutes the DC is drifting.",
		Fix:     "Resynchronise dc2.corp.example.com with the domain time hierarchy.",
		Script:  []string{"w32tm /resync /rediscover  # on dc2.corp.example.com"},
	})
	return &cycle.Result{
		Config: cfg, Snapshot: snap, Findings: fs,
		Status: map[string]cycle.Status{
			"sql": {Success: true, Duration: 30 * time.Second}, "directory": {Success: true, Duration: 4 * time.Second},
			"dns": {Success: true, Duration: 2 * time.Second}, "clock": {Success: true, Duration: time.Second},
		},
	}
}

// TestLandingPage500InChromium serves the page for 500 configured
// instances through the exporter's mux and HTTP server on a loopback port,
// measures its size and time to first byte, loads it in headless Chromium,
// measures its render, and drives its sorting and filtering there. It
// prints the figures; only the size, which is deterministic, is asserted.
func TestLandingPage500InChromium(t *testing.T) {
	bin := chromiumBinary(t)
	const n = 500
	res := fleetResult(n)
	base := landingServer(t, res, res.Config)
	url := base + "/"
	rep := resultReport(res, res.Config)
	critical, warning, unreachable := 0, 0, 0
	for _, g := range rep.Groups {
		if g.Kind != report.KindSQLInstance {
			continue
		}
		switch {
		case g.Counts.Critical > 0:
			critical++
		case g.Counts.Warning > 0:
			warning++
		}
		for _, f := range g.Findings {
			if f.Check == "sql_unreachable" {
				unreachable++
			}
		}
	}

	// The server renders the page once a cycle; requests are served from it.
	renderStart := time.Now()
	if _, err := renderLanding(res, res.Config, "/metrics", defaultRunbookURLPrefix); err != nil {
		t.Fatal(err)
	}
	render := time.Since(renderStart)

	// Bytes and time to first byte, in Go, plain and gzipped: the median of 7.
	var size, zipped int
	var ttfbs, totals []time.Duration
	for i := 0; i < 7; i++ {
		for _, gz := range []bool{false, true} {
			b, ttfb, total := timedGet(t, url, gz)
			if gz {
				zipped = b
				continue
			}
			size = b
			ttfbs, totals = append(ttfbs, ttfb), append(totals, total)
		}
	}
	if size >= landingPageBudget {
		t.Errorf("the page for %d instances is %d bytes, over the %d-byte budget", n, size, landingPageBudget)
	}

	b := startBrowser(t, bin, 1280, 900)
	type timing struct {
		ResponseStart, DOMContentLoaded, Load, FirstContentfulPaint, Bytes float64
	}
	var loads []timing
	for i := 0; i < 3; i++ {
		b.navigate(url)
		var tm timing
		// The first contentful paint may be recorded a little after load.
		b.eval(`new Promise(r => {
			const done = () => {
				const n = performance.getEntriesByType("navigation")[0];
				const p = performance.getEntriesByName("first-contentful-paint")[0];
				r({ResponseStart: n.responseStart, DOMContentLoaded: n.domContentLoadedEventEnd, Load: n.loadEventEnd,
				   FirstContentfulPaint: p ? p.startTime : -1, Bytes: n.decodedBodySize});
			};
			if (performance.getEntriesByName("first-contentful-paint").length) { return done(); }
			new PerformanceObserver((_, o) => { o.disconnect(); done(); }).observe({type: "paint", buffered: true});
			setTimeout(done, 3000);
		})`, &tm)
		loads = append(loads, tm)
	}

	// What the page shows: the summary, the causes first (critical first),
	// then the table; the script ran (the styles and the script are
	// allowed by the page's CSP).
	var page struct {
		Sections        []string
		CauseSeverities []string
		Rows            int
		FirstRowClass   string
		Tiles           []string
		Shown           string
		HeaderColour    string
		RunbookLinks    []string
		ProbeLinks      []string
		Scripts         int
	}
	b.eval(`({
		Sections: Array.from(document.querySelectorAll("main > section")).map(s => s.id),
		CauseSeverities: Array.from(document.querySelectorAll("article.cause")).map(a => a.dataset.severity),
		Rows: document.querySelectorAll("#instances-table tbody tr").length,
		FirstRowClass: document.querySelector("#instances-table tbody tr").className,
		Tiles: Array.from(document.querySelectorAll(".tile b")).map(b => b.textContent),
		Shown: document.getElementById("shown").textContent,
		HeaderColour: getComputedStyle(document.querySelector("header.page")).backgroundColor,
		RunbookLinks: Array.from(document.querySelectorAll("a.runbook")).map(a => a.getAttribute("href")),
		ProbeLinks: Array.from(document.querySelectorAll("article.cause .links a:not(.runbook)")).map(a => a.getAttribute("href")),
		Scripts: document.scripts.length,
	})`, &page)
	if strings.Join(page.Sections, " ") != "summary causes instances fleet" {
		t.Errorf("sections %v, want the summary, the causes, the instances, the fleet-wide findings", page.Sections)
	}
	for i := 1; i < len(page.CauseSeverities); i++ {
		if diagnosis.Severity(page.CauseSeverities[i]).Rank() < diagnosis.Severity(page.CauseSeverities[i-1]).Rank() {
			t.Errorf("cause %d (%s) comes after a less severe one: %v", i, page.CauseSeverities[i], page.CauseSeverities)
		}
	}
	if len(page.CauseSeverities) == 0 || page.CauseSeverities[0] != "critical" {
		t.Errorf("the first cause is not critical: %v", page.CauseSeverities)
	}
	if page.Rows != n || page.FirstRowClass != "critical" || page.Shown != fmt.Sprintf("%d of %d shown", n, n) {
		t.Errorf("table: %d rows, first %q, %q", page.Rows, page.FirstRowClass, page.Shown)
	}
	if want := []string{fmt.Sprint(n), fmt.Sprint(critical), fmt.Sprint(warning), fmt.Sprint(n - critical - warning), fmt.Sprint(unreachable)}; strings.Join(page.Tiles, " ") != strings.Join(want, " ") {
		t.Errorf("summary tiles %v, want %v", page.Tiles, want)
	}
	if page.HeaderColour != "rgb(31, 42, 55)" || page.Scripts != 1 {
		t.Errorf("style or script not applied: header %q, %d scripts", page.HeaderColour, page.Scripts)
	}
	for _, h := range page.ProbeLinks {
		if !strings.HasPrefix(h, "/probe?target=sql-") || !strings.HasSuffix(h, "&debug=true") {
			t.Errorf("cause links to %q, not to a probe with its debug log", h)
		}
	}
	if len(page.RunbookLinks) == 0 {
		t.Error("no cause links to a runbook")
	}
	for _, h := range page.RunbookLinks {
		resp, err := http.Get(base + h)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("runbook link %s: %s", h, resp.Status)
		}
	}

	// Sorting and filtering, driven as a person would: clicks and typing.
	// Each step returns the visible rows' names and statuses, and how long
	// the step took in the page.
	type view struct {
		Names, Classes []string
		Crit           []int
		Ms             float64
	}
	step := func(action string) view {
		var v view
		b.eval(`(() => {
			const t0 = performance.now();
			`+action+`;
			document.body.offsetHeight; // the layout that follows, timed too
			const ms = performance.now() - t0;
			const rows = Array.from(document.querySelectorAll("#instances-table tbody tr")).filter(r => !r.hidden);
			return {Names: rows.map(r => r.cells[0].textContent), Classes: rows.map(r => r.className),
				Crit: rows.map(r => Number(r.cells[2].textContent) || 0), Ms: ms};
		})()`, &v)
		return v
	}
	click := func(key string) string {
		return `document.querySelector('#instances-table th[data-key="` + key + `"] button').click()`
	}
	names := make([]string, 0, n)
	for _, inst := range res.Config.SQLInstances {
		names = append(names, inst.Name)
	}
	sort.Strings(names)
	var ms = map[string]float64{}

	byName := step(click("name"))
	ms["sort by name"] = byName.Ms
	if strings.Join(byName.Names, ",") != strings.Join(names, ",") {
		t.Errorf("sorted by name: %v…", byName.Names[:min(5, len(byName.Names))])
	}
	byNameDesc := step(click("name"))
	if len(byNameDesc.Names) != n || byNameDesc.Names[0] != names[n-1] {
		t.Errorf("sorted by name again: not descending, %v…", byNameDesc.Names[:min(5, len(byNameDesc.Names))])
	}
	byCrit := step(click("critical"))
	ms["sort by criticals"] = byCrit.Ms
	if !sort.SliceIsSorted(byCrit.Crit, func(i, j int) bool { return byCrit.Crit[i] > byCrit.Crit[j] }) || byCrit.Crit[0] == 0 {
		t.Errorf("sorted by criticals: not most first: %v…", byCrit.Crit[:min(10, len(byCrit.Crit))])
	}

	typed := step(`const f = document.getElementById("filter"); f.value = "sql-ams"; f.dispatchEvent(new Event("input"))`)
	ms["filter by text"] = typed.Ms
	wantAms := 0
	for _, name := range names {
		if strings.Contains(name, "sql-ams") {
			wantAms++
		}
	}
	if len(typed.Names) != wantAms {
		t.Errorf("filter sql-ams: %d rows, want %d", len(typed.Names), wantAms)
	}
	// The filter reads a row's findings too: an account named only there.
	byAccount := step(`const f = document.getElementById("filter"); f.value = "svc_sql_pool3"; f.dispatchEvent(new Event("input"))`)
	if want := (n + 21) / 25; len(byAccount.Names) != want {
		t.Errorf("filter by the pool account: %d rows, want %d", len(byAccount.Names), want)
	}
	cleared := step(`const f = document.getElementById("filter"); f.value = ""; f.dispatchEvent(new Event("input")); const s = document.getElementById("status-filter"); s.value = "unreachable"; s.dispatchEvent(new Event("change"))`)
	ms["filter by status"] = cleared.Ms
	if len(cleared.Names) != unreachable {
		t.Errorf("status unreachable: %d rows, want %d", len(cleared.Names), unreachable)
	}
	tile := step(`document.querySelector('.tile.critical').click()`)
	if len(tile.Names) != critical || tile.Classes[0] != "critical" {
		t.Errorf("the criticals tile shows %d rows, want %d", len(tile.Names), critical)
	}

	med := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	host, _ := os.Hostname()
	t.Logf("landing page with %d instances, %d findings, %d causes (%s, %d CPUs):", n, len(res.Findings), len(rep.Causes), host, runtime.NumCPU())
	t.Logf("  size: %d bytes (%.0f KiB; budget %d KiB), %d bytes gzipped", size, float64(size)/1024, landingPageBudget>>10, zipped)
	t.Logf("  server: rendering it (once a cycle) %.1f ms; Go client over loopback, median of 7: time to first byte %.1f ms, whole page %.1f ms",
		ms64(render), ms64(med(ttfbs)), ms64(med(totals)))
	for i, l := range loads {
		t.Logf("  Chromium load %d: first byte %.0f ms, DOMContentLoaded %.0f ms, first contentful paint %.0f ms, load event end %.0f ms (decoded %.0f bytes)",
			i+1, l.ResponseStart, l.DOMContentLoaded, l.FirstContentfulPaint, l.Load, l.Bytes)
	}
	t.Logf("  in Chromium: sort by name %.1f ms, sort by criticals %.1f ms, text filter %.1f ms, status filter %.1f ms (each with its layout)",
		ms["sort by name"], ms["sort by criticals"], ms["filter by text"], ms["filter by status"])
}

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timedGet fetches url on a fresh connection and returns the body's size
// as sent, the time to the first byte of the response and to its end.
func timedGet(t *testing.T, url string, gzip bool) (int, time.Duration, time.Duration) {
	t.Helper()
	tr := &http.Transport{DisableCompression: true, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	var start, first time.Time
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotFirstResponseByte: func() { first = time.Now() },
	}))
	start = time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	end := time.Now()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %s", url, err, resp.Status)
	}
	if gzip != (resp.Header.Get("Content-Encoding") == "gzip") {
		t.Fatalf("GET %s (gzip %v): Content-Encoding %q", url, gzip, resp.Header.Get("Content-Encoding"))
	}
	return len(body), first.Sub(start), end.Sub(start)
}
