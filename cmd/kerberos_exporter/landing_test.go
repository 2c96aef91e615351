package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
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

// landingServer serves the landing page of one fixed result.
func landingServer(t *testing.T, res *cycle.Result, cfg *config.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeLanding(w, res, cfg, "/metrics")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLandingPageInChromium(t *testing.T) {
	bin := chromiumBinary(t)
	res := sampleResult()
	srv := landingServer(t, res, res.Config)

	// The screenshot is for a person to look at; KERBEROS_EXPORTER_SCREENSHOT_DIR keeps it.
	dir := os.Getenv("KERBEROS_EXPORTER_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "landing.png")
	runChromium(t, bin, "--hide-scrollbars", "--window-size=1280,1400", "--screenshot="+shot, srv.URL)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no usable screenshot at %s (%d bytes, %v)", shot, len(png), err)
	}
	t.Logf("screenshot: %s", shot)

	dom := html.UnescapeString(string(runChromium(t, bin, "--dump-dom", srv.URL)))
	must := []string{
		// each instance heading, the fleet-wide group and the healthy state
		"SQL instance sqla", "SQL instance sqlc", "Fleet-wide",
		// the summary and the collector that failed
		"1 critical", "1 warning", "1 info", "lookup sqla.corp.test: i/o timeout",
		// links
		`href="/metrics"`, `href="/probe?target=sqla"`, `href="/probe?target=sqlc"`,
	}
	for _, f := range res.Findings {
		must = append(must,
			`class="finding `+string(f.Severity)+`" data-check="`+f.Check+`" data-severity="`+string(f.Severity)+`"`,
			`<span class="sev">`+string(f.Severity)+`</span><span class="title">`+f.Summary+`</span>`,
			f.Detail, f.Fix)
		must = append(must, f.Script...)
	}
	for _, want := range must {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	// A finding appears under its own instance's heading.
	if i, j := strings.Index(dom, "SQL instance sqlc"), strings.Index(dom, "SPN MSSQLSvc/sqlc.corp.test:1433 is not registered"); i < 0 || j < i || j > strings.Index(dom, "Fleet-wide") {
		t.Error("the SPN finding is not under SQL instance sqlc")
	}
	if strings.Contains(dom, "No collection has completed yet") {
		t.Error("a completed result shows the pending state")
	}
}

func TestLandingPageEmptyStates(t *testing.T) {
	cfg := &config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}}}
	healthy := sampleResult()
	healthy.Findings = nil
	healthy.Status = map[string]cycle.Status{"sql": {Success: true}}
	for name, tc := range map[string]struct {
		res        *cycle.Result
		want, lack []string
	}{
		"before the first collection": {
			res:  nil,
			want: []string{"No collection has completed yet", `href="/metrics"`, `href="/probe?target=sqla"`},
			lack: []string{"No findings", "<article"},
		},
		"no findings": {
			res:  healthy,
			want: []string{"No findings.", "SQL instance sqla", "Kerberos works everywhere the exporter can see"},
			lack: []string{"<article", "No collection has completed yet", "Collectors that failed"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := landingServer(t, tc.res, cfg)
			body := get(t, srv.URL)
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

// The mux serves the landing page at / from the runner's last result.
func TestMuxServesLandingPage(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}}}
	runner := cycle.NewRunner(cfg, logger)
	srv := httptest.NewServer(newMux(runner, newReloader("", runner, logger), prometheus.NewRegistry(), "/metrics", logger, defaultProbeOptions()))
	t.Cleanup(srv.Close)
	body := get(t, srv.URL+"/")
	if !strings.Contains(body, "No collection has completed yet") || !strings.Contains(body, `href="/probe?target=sqla"`) {
		t.Errorf("landing page before the first cycle:\n%s", body)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
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
	return string(b)
}
