package main

import (
	"fmt"
	"io"
	"log/slog"
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
	"github.com/kerberos-exporter/kerberos_exporter/internal/firstseen"
	"github.com/kerberos-exporter/kerberos_exporter/internal/report"
)

// landingPageBudget is the landing page's size goal at 500 instances.
const landingPageBudget = 300 << 10

// fleetResult is a completed cycle over n SQL instances with what a large
// estate realistically shows, built as the exporter builds it: facts as the
// collectors would gather them, judged by diagnosis.Evaluate, grouped by
// diagnosis.Causes and stamped by the first-seen store over two
// observations (yesterday's and this one), so that the causes collapse as
// they do in production. The estate: one pool account without delegation
// to its linked servers' back end (new), one team's servers whose SPNs
// were deleted (clients on NTLM), one account whose tickets are RC4, a
// handful of unreachable instances, an error log the exporter may not read
// on many, one DC's clock ahead (new), and most of the fleet healthy.
func fleetResult(n int) *cycle.Result {
	const domain, realm = "corp.example.com", "CORP.EXAMPLE.COM"
	sites := []string{"ams", "ber", "cph", "dub", "fra", "lon", "mad", "par"}
	name := func(i int) string { return fmt.Sprintf("sql-%s-%03d", sites[i%len(sites)], i) }
	yes := true
	cfg := &config.Config{
		Kerberos:   config.Kerberos{Realm: realm, Principal: "krbmon@" + realm},
		Domains:    []config.Domain{{Name: domain, NetBIOSName: "CORP"}},
		Thresholds: config.Thresholds{ClockSkewWarning: config.Duration(time.Minute), ClockSkewCritical: config.Duration(4 * time.Minute)},
	}
	finished := time.Date(2025, 3, 14, 3, 7, 0, 0, time.UTC)
	snap := facts.New(finished.Add(-40 * time.Second))
	snap.Finished = finished
	snap.AESDomains = []facts.DomainAES{{Domain: domain, Born: finished.AddDate(-15, 0, 0), AESSince: finished.AddDate(-12, 0, 0),
		Krbtgt: facts.AccountKeys{Name: `CORP\krbtgt`, Domain: domain, Found: true, PwdLastSet: finished.AddDate(-1, 0, 0)}}}
	snap.Duplicates = &facts.DuplicateSPNs{Scanned: true, AccountsScanned: 4000}
	snap.DCs = []facts.DomainController{
		{Domain: domain, Address: "dc1." + domain, Up: true, LDAPMeasured: true, NTPSkew: 40 * time.Millisecond, NTPMeasured: true},
		{Domain: domain, Address: "dc2." + domain, Up: true, LDAPMeasured: true, NTPSkew: 2*time.Minute + 10*time.Second, NTPMeasured: true},
	}
	accounts := map[string]*facts.Account{}
	account := func(acct string) *facts.Account {
		if a := accounts[acct]; a != nil {
			return a
		}
		short := strings.TrimPrefix(acct, `CORP\`)
		a := &facts.Account{Name: acct, Kind: "user", Found: true, DN: "CN=" + short + ",OU=Service Accounts,DC=corp,DC=example,DC=com",
			UserAccountControl: 0x200, SupportedEncTypes: 0x18, RBCDRead: true}
		accounts[acct] = a
		snap.AccountKeys = append(snap.AccountKeys, facts.AccountKeys{Name: acct, Domain: domain, Found: true,
			PwdLastSet: finished.AddDate(-1, 0, 0), SupportedEncTypes: 0x18, SupportedEncTypesSet: true})
		return a
	}
	for i := 0; i < n; i++ {
		inst, host := name(i), name(i)+"."+domain
		acct := `CORP\svc_sql_` + sites[i%len(sites)]
		switch {
		case i%25 == 3:
			acct = `CORP\svc_sql_pool3`
		case i%40 == 7:
			acct = `CORP\svc_sql_fin`
		case i%9 == 2:
			acct = `CORP\svc_sql_std`
		}
		cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: inst, Host: host, Port: 1433, Domain: domain,
			ServiceAccount: acct, ExpectKerberos: &yes, Auth: config.SQLAuth{Method: "kerberos"}})
		netbios := strings.ToUpper(strings.ReplaceAll(inst, "-", ""))
		sql := &facts.SQLInstance{Name: inst, Up: true, AuthScheme: "KERBEROS", NetTransport: "TCP", LocalTCPPort: 1433,
			MachineName: netbios, PhysicalNetBIOS: netbios, DomainName: "CORP", ListenerPorts: []int{1433}, EngineAccount: acct,
			ClockSkew: time.Second, ClockMeasured: true}
		snap.SQL[inst] = sql
		spns := []string{"MSSQLSvc/" + host + ":1433", "MSSQLSvc/" + host}
		holders := []string{acct}
		errorLog := &facts.ErrorLog{Instance: inst, Readable: true}
		for _, spn := range spns {
			errorLog.Registrations = append(errorLog.Registrations, facts.SPNRegistration{Time: finished.AddDate(0, -2, 0), SPN: spn, Registered: true})
		}
		ticket := facts.TicketProbe{Target: inst, SPN: spns[0], Realm: realm, OK: true, TicketEType: "aes256-cts-hmac-sha1-96", SessionKeyEType: "aes256-cts-hmac-sha1-96"}
		snap.LinkedServers[inst] = &facts.LinkedServers{Instance: inst, Readable: true}
		a := account(acct)
		switch {
		case i%25 == 3: // the pool account may not delegate to the reporting back end
			snap.LinkedServers[inst].Servers = []facts.LinkedServer{{
				Name: "REPORTING", Product: "SQL Server", Provider: "MSOLEDBSQL", DataSource: "rpt01." + domain, SelfMapped: true, Tested: true, TestOK: false,
				ErrNumber: 18456, ErrMsg: "Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'.",
			}}
			snap.DelegationPaths = append(snap.DelegationPaths, facts.DelegationPath{
				FromInstance: inst, LinkedServer: "REPORTING", ToTarget: "rpt01." + domain, FromAccount: acct, ToAccount: `CORP\svc_sql_rpt`,
				TargetSPNs: []string{"MSSQLSvc/rpt01." + domain + ":1433", "MSSQLSvc/rpt01." + domain}, Known: true,
			})
		case i%40 == 7: // the team's SPNs were deleted: no ticket, clients on NTLM
			holders = nil
			errorLog.Registrations = nil
			sql.AuthScheme = "NTLM"
			ticket = facts.TicketProbe{Target: inst, SPN: spns[0], Realm: realm, ErrorCode: 7, ErrorName: "KDC_ERR_S_PRINCIPAL_UNKNOWN"}
		case i%9 == 2: // the account allows no AES: its tickets are RC4
			a.SupportedEncTypes = 0x4
			ticket.TicketEType = "rc4-hmac"
		case i%50 == 11:
			*sql = facts.SQLInstance{Name: inst, ConnectError: "dial tcp " + host + ":1433: connect: connection refused", Cause: "network"}
			errorLog = nil
			delete(snap.LinkedServers, inst)
		case i%5 == 4: // the exporter's login may not read the error log
			errorLog = &facts.ErrorLog{Instance: inst, PermissionDenied: true, Error: "mssql: The user does not have permission to perform this action."}
		}
		if errorLog != nil {
			snap.ErrorLogs[inst] = errorLog
		}
		for _, spn := range spns {
			snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: inst, SPN: spn, ExpectedAccount: acct, Holders: holders})
			if holders != nil {
				a.SPNs = append(a.SPNs, spn)
			}
		}
		snap.Tickets = append(snap.Tickets, ticket)
		ip := fmt.Sprintf("10.%d.%d.%d", 20+i%len(sites), i/250, 1+i%250)
		snap.DNS = append(snap.DNS, facts.HostDNS{Host: host, Addresses: []string{ip}, PTR: map[string][]string{ip: {host + "."}}, ReverseMatches: true})
	}
	for _, a := range accounts {
		snap.Accounts = append(snap.Accounts, *a)
		for j := range snap.AccountKeys {
			if snap.AccountKeys[j].Name == a.Name {
				snap.AccountKeys[j].SupportedEncTypes = a.SupportedEncTypes
			}
		}
	}
	sort.Slice(snap.Accounts, func(i, j int) bool { return snap.Accounts[i].Name < snap.Accounts[j].Name })

	res := &cycle.Result{
		Config: cfg, Snapshot: snap,
		Status: map[string]cycle.Status{
			"sql": {Success: true, Duration: 30 * time.Second}, "directory": {Success: true, Duration: 4 * time.Second},
			"dns": {Success: true, Duration: 2 * time.Second}, "clock": {Success: true, Duration: time.Second},
		},
	}
	res.Findings = diagnosis.Evaluate(cfg, snap)
	res.Causes = diagnosis.Causes(res.Findings)

	// First-seen times as the runner stamps them: what was there yesterday
	// keeps yesterday's time; the pool account's delegation, the DC's clock
	// and the unreachable instances are new.
	isNew := map[string]bool{"delegation_missing": true, "linked_server_hop_anonymous": true, "clock_skew_dc": true, "sql_unreachable": true}
	var yesterday []diagnosis.Finding
	for _, f := range res.Findings {
		if !isNew[f.Check] {
			yesterday = append(yesterday, f)
		}
	}
	store := firstseen.NewMemory(slog.New(slog.NewTextHandler(io.Discard, nil)))
	all := func(string) bool { return true }
	store.Observe(finished.Add(-26*time.Hour), yesterday, diagnosis.Causes(yesterday), firstseen.Scope{Judged: all})
	store.Observe(finished, res.Findings, res.Causes, firstseen.Scope{Judged: all})
	return res
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
	// The real grouping collapses the findings into a few causes with a
	// wide blast radius, and the page gets their first-seen times.
	newCauses, causeInstances := 0, map[string]int{}
	for _, c := range rep.Causes {
		causeInstances[c.Cause+" "+c.Subject] = len(c.Instances)
		if !c.FirstSeen.IsZero() && rep.Generated.Sub(c.FirstSeen) < time.Hour {
			newCauses++
		}
	}
	if len(rep.Causes) > len(res.Findings)/10 || causeInstances[`service_account_cannot_delegate CORP\svc_sql_pool3`] != 20 ||
		causeInstances[`service_account_spns CORP\svc_sql_fin`] != 13 || causeInstances["exporter_access krbmon@CORP.EXAMPLE.COM"] != 89 {
		t.Errorf("%d findings in %d causes, not grouped by their shared fix: %v", len(res.Findings), len(rep.Causes), causeInstances)
	}
	if newCauses == 0 || newCauses == len(rep.Causes) {
		t.Errorf("%d of %d causes are new: the first-seen times are not carried to the report", newCauses, len(rep.Causes))
	}
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
		NewCauses       int
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
		NewCauses: document.querySelectorAll("article.cause .new").length,
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
	if page.NewCauses != newCauses {
		t.Errorf("the page marks %d causes new, want %d", page.NewCauses, newCauses)
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
	t.Logf("landing page with %d instances, %d findings, %d causes (%d new) (%s, %d CPUs):", n, len(res.Findings), len(rep.Causes), newCauses, host, runtime.NumCPU())
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
