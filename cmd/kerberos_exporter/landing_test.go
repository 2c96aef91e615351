package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
	"github.com/kerberos-exporter/kerberos_exporter/internal/report"
)

// chromiumBinary finds headless Chromium. The landing-page test needs it
// and fails without it, except under -short.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("headless Chromium test skipped under -short")
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is required for the landing page test (apt-get install chromium), or run go test -short")
	return ""
}

// runChromium runs one headless Chromium with a fresh profile and returns its stdout.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// landingServer serves one fixed result through the exporter's own mux
// and HTTP server on a loopback port.
func landingServer(t *testing.T, res *cycle.Result, cfg *config.Config) string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	runner := cycle.NewRunner(cfg, logger)
	opts := defaultLandingOptions()
	opts.last = func() *cycle.Result { return res }
	mux := newMux(runner, newReloader("", runner, logger), prometheus.NewRegistry(), "/metrics", logger, defaultProbeOptions(), opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(mux, defaultServerTimeouts)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

func TestLandingPageInChromium(t *testing.T) {
	bin := chromiumBinary(t)
	res := sampleResult()
	url := landingServer(t, res, res.Config)

	// The screenshot is for a person to look at; KERBEROS_EXPORTER_SCREENSHOT_DIR keeps it.
	dir := os.Getenv("KERBEROS_EXPORTER_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "landing-sample.png")
	runChromium(t, bin, "--hide-scrollbars", "--window-size=1280,1400", "--screenshot="+shot, url)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no usable screenshot at %s (%d bytes, %v)", shot, len(png), err)
	}
	t.Logf("screenshot: %s", shot)

	dom := html.UnescapeString(string(runChromium(t, bin, "--dump-dom", url)))
	must := []string{
		// the summary, the causes and the collector that failed
		"1 critical", "1 warning", "1 info", "lookup sqla.corp.test: i/o timeout", "Causes — fix these first",
		// the script ran: the table's controls are shown, with the count
		`<span id="shown" aria-live="polite">2 of 2 shown</span>`,
		// links: metrics, the runbook, each instance's probe with its debug log
		`href="/metrics"`, `href="/runbooks/KerberosSPNMissing.md"`,
		`href="/probe?target=sqla&debug=true"`, `href="/probe?target=sqlc&debug=true"`,
	}
	for _, f := range res.Findings {
		must = append(must, `<li class="`+string(f.Severity)+`"><b>`+string(f.Severity)+`</b> <code>`+f.Check+`</code> `+f.Summary, f.Detail, f.Fix)
		must = append(must, f.Script...)
	}
	for _, want := range must {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	// The causes come before the table, the critical cause first.
	causes, table := strings.Index(dom, `id="causes"`), strings.Index(dom, `id="instances-table"`)
	if causes < 0 || table < causes {
		t.Error("the causes do not come before the instance table")
	}
	if first := strings.Index(dom, `<article class="cause`); first < 0 || !strings.HasPrefix(dom[first:], `<article class="cause critical"`) {
		t.Error("the first cause is not the critical one")
	}
	// The SPN finding is in sqlc's row, which is first (it is critical).
	rows := dom[table:]
	if i, j := strings.Index(rows, ">sqlc<"), strings.Index(rows, ">sqla<"); i < 0 || j < i ||
		!strings.Contains(rows[i:j], "SPN MSSQLSvc/sqlc.corp.test:1433 is not registered") {
		t.Error("sqlc's row, with its SPN finding, does not come first")
	}
	if strings.Contains(dom, "No collection has completed yet") {
		t.Error("a completed result shows the pending state")
	}
}

func TestLandingPageEmptyStates(t *testing.T) {
	cfg := &config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}}}
	healthy := sampleResult()
	healthy.Config = cfg
	healthy.Findings = nil
	healthy.Status = map[string]cycle.Status{"sql": {Success: true}}
	for name, tc := range map[string]struct {
		res        *cycle.Result
		want, lack []string
	}{
		"before the first collection": {
			res:  nil,
			want: []string{"No collection has completed yet", `href="/metrics"`, `href="/probe?target=sqla&amp;debug=true"`, `<span class="st">pending</span>`},
			lack: []string{"No findings", "<article", `id="causes"`},
		},
		"no findings": {
			res:  healthy,
			want: []string{"No findings.", `href="/probe?target=sqla&amp;debug=true"`, "Kerberos works everywhere the exporter can see", "Nothing to fix.", `<span class="st">healthy</span>`},
			lack: []string{"<article", "No collection has completed yet", "Collectors that failed"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			body, _ := getPage(t, landingServer(t, tc.res, cfg)+"/", false)
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, l := range tc.lack {
				if strings.Contains(body, l) {
					t.Errorf("page shows %q", l)
				}
			}
		})
	}
}

// The mux serves the landing page at / from the runner's last result, with
// its security headers, gzip when asked, and the runbooks it links to.
func TestMuxServesLandingPage(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}}}
	runner := cycle.NewRunner(cfg, logger)
	srv := httptest.NewServer(newMux(runner, newReloader("", runner, logger), prometheus.NewRegistry(), "/metrics", logger, defaultProbeOptions(), defaultLandingOptions()))
	t.Cleanup(srv.Close)
	body, header := getPage(t, srv.URL+"/", false)
	if !strings.Contains(body, "No collection has completed yet") || !strings.Contains(body, `href="/probe?target=sqla&amp;debug=true"`) {
		t.Errorf("landing page before the first cycle:\n%s", body)
	}
	if csp := header.Get("Content-Security-Policy"); csp != report.LandingCSP || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q, want %q", csp, report.LandingCSP)
	}
	if zipped, _ := getPage(t, srv.URL+"/", true); zipped != body {
		t.Error("the gzipped page is not the page")
	}

	for path, want := range map[string]int{
		"/runbooks/KerberosSPNMissing.md": http.StatusOK,
		"/runbooks/NoSuchAlert.md":        http.StatusNotFound,
		"/runbooks/../runbooks.go":        http.StatusNotFound,
		"/runbooks/%2e%2e%2fdocs%2fx.md":  http.StatusNotFound,
		"/runbooks/":                      http.StatusNotFound,
		"/elsewhere":                      http.StatusNotFound,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
		if want == http.StatusOK && (resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !bytes.HasPrefix(b, []byte("# KerberosSPNMissing"))) {
			t.Errorf("GET %s: %s, %.40q", path, resp.Header.Get("Content-Type"), b)
		}
	}
}

// getPage fetches an HTML page, with or without asking for gzip (the
// transport unzips it), and fails on anything but 200 text/html.
func getPage(t *testing.T, url string, gzip bool) (string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	tr := &http.Transport{DisableCompression: !gzip}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET %s: %s, %s", url, resp.Status, ct)
	}
	if gzip && !resp.Uncompressed {
		t.Fatalf("GET %s: asked for gzip, got %q", url, resp.Header.Get("Content-Encoding"))
	}
	return string(b), resp.Header
}

// Names from AD and SQL Server that are made to become markup or script
// stay text in a real browser: no dialog opens, no element appears, and
// the filter finds the instance by its odd name.
func TestLandingPageHostileNamesInChromium(t *testing.T) {
	bin := chromiumBinary(t)
	const inst = "x\"><img src=x onerror=alert(1)>\u202e"
	const link = "</script><script>alert(2)</script>"
	res := sampleResult()
	res.Config = &config.Config{SQLInstances: []config.SQLInstance{{Name: inst}, {Name: "sqla"}}}
	res.Findings = append(res.Findings, diagnosis.Finding{
		Check: "linked_server_hop_anonymous", Severity: diagnosis.Critical, Target: inst + "/" + link, Instance: inst,
		Summary: "hop " + link + " fails <svg onload=alert(3)>", Detail: "<iframe src=javascript:alert(4)>", Fix: "fix <b>it</b>",
		Script: []string{"setspn -S 'MSSQLSvc/" + link + "' CORP\\x"},
	})
	b := startBrowser(t, bin, 1280, 900)
	b.navigate(landingServer(t, res, res.Config) + "/") // fails the test on any dialog
	var got struct {
		Images, Scripts, Frames, SVGs, Bold int
		Shown                               string
		Href                                string
	}
	b.eval(`(() => {
		const f = document.getElementById("filter");
		f.value = "onerror=alert(1)";
		f.dispatchEvent(new Event("input"));
		return {Images: document.images.length, Scripts: document.scripts.length, Frames: document.querySelectorAll("iframe").length,
			SVGs: document.querySelectorAll("svg").length, Bold: Array.from(document.querySelectorAll("b")).filter(e => e.textContent === "it").length,
			Shown: document.getElementById("shown").textContent,
			Href: document.querySelector("#instances-table tbody tr:not([hidden]) a").href};
	})()`, &got)
	if got.Images != 0 || got.Scripts != 1 || got.Frames != 0 || got.SVGs != 0 || got.Bold != 0 {
		t.Errorf("hostile text became markup: %+v", got)
	}
	if got.Shown != "1 of 3 shown" || !strings.Contains(got.Href, "/probe?target=x%22%3e%3cimg") {
		t.Errorf("the filter did not find the odd instance, or its probe link is wrong: %+v", got)
	}
}

// A link with a malformed escape in its fragment (#%E0) does not stop the
// page's script: the table's controls still work.
func TestLandingPageMalformedFragmentInChromium(t *testing.T) {
	bin := chromiumBinary(t)
	res := sampleResult()
	b := startBrowser(t, bin, 1280, 900)
	b.navigate(landingServer(t, res, res.Config) + "/#%E0")
	var shown struct{ Before, After string }
	b.eval(`(() => {
		const before = document.getElementById("shown").textContent;
		const f = document.getElementById("filter");
		f.value = "sqla";
		f.dispatchEvent(new Event("input"));
		return {Before: before, After: document.getElementById("shown").textContent};
	})()`, &shown)
	if shown.Before != "2 of 2 shown" || shown.After != "1 of 2 shown" {
		t.Errorf("after loading with #%%E0 the table shows %q, then %q after filtering: want 2 of 2, then 1 of 2", shown.Before, shown.After)
	}
}
