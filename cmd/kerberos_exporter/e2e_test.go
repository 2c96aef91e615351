package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

var update = flag.Bool("update", false, "rewrite testdata/e2e-output.txt from this run")

// TestEndToEnd is node_exporter's end-to-end test for this exporter: the
// real binary, configured like `make demo`, against the real Samba DC and the
// SQL Server stand-ins; the whole /metrics output (findings included) must
// match testdata/e2e-output.txt once values that honestly vary from run to
// run (durations, timestamps, session counts) are masked, clock skews are
// rounded to 10 s and forest-wide counts that other tests can raise are
// checked as floors.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs the Samba world; skipped under -short")
	}
	w, err := world.Start()
	if err != nil {
		t.Fatalf("test world: %v", err)
	}
	group := startStandIns(t, w)
	defer group.Close()

	dir := t.TempDir()
	cfgFile := writeDemoConfig(t, w, dir)
	bin := buildExporter(t, dir)
	addr := freeAddr(t)
	var logs syncBuffer
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--web.listen-address="+addr, "--log.level=debug")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("exporter log:\n%s", logs.String())
		}
	}()
	base := "http://" + addr
	body := waitForCollection(t, base)

	t.Run("metrics match the fixture", func(t *testing.T) {
		got := normalise(t, body)
		fixture := filepath.Join("testdata", "e2e-output.txt")
		if *update {
			if err := os.WriteFile(fixture, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(fixture)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("/metrics differs from %s (rerun with -update after checking the diff):\n%s", fixture, lineDiff(string(want), got))
		}
	})

	t.Run("metric names pass promlint and are documented", func(t *testing.T) {
		var families []*dto.MetricFamily
		for _, mf := range parseFamilies(t, body) {
			families = append(families, mf)
		}
		problems, err := promlint.NewWithMetricFamilies(families).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			if strings.HasPrefix(p.Metric, "kerberos_") {
				t.Errorf("promlint: %s: %s", p.Metric, p.Text)
			}
		}
		// docs/metrics.md is the one list of metrics: each exposed metric
		// has exactly one row there (labels and meaning).
		contract, err := os.ReadFile("../../docs/metrics.md")
		if err != nil {
			t.Fatal(err)
		}
		rows := map[string]int{}
		for _, row := range strings.Split(string(contract), "\n") {
			if m := metricRowName.FindStringSubmatch(row); m != nil {
				rows[m[1]]++
			}
		}
		for name, n := range rows {
			if n > 1 {
				t.Errorf("docs/metrics.md lists %s in %d rows; one is enough", name, n)
			}
		}
		for _, name := range metricNames(t, body) {
			if rows[name] == 0 {
				t.Errorf("metric %s has no row in docs/metrics.md", name)
			}
		}
	})

	t.Run("alerts follow the findings", func(t *testing.T) { checkAlertsAgree(t, body) })

	t.Run("landing page shows findings", func(t *testing.T) {
		page := fetchBody(t, base+"/")
		for _, want := range []string{"sqlc", "first_hop_ntlm", "setspn"} {
			if !strings.Contains(page, want) {
				t.Errorf("landing page lacks %q", want)
			}
		}
	})

	t.Run("probe uses a fresh registry for one instance", func(t *testing.T) {
		out := fetchBody(t, base+"/probe?target=sqlc")
		if !strings.Contains(out, `kerberos_sql_connection_auth_scheme{auth_scheme="NTLM",sql_instance="sqlc"} 1`) {
			t.Errorf("probe of sqlc lacks its NTLM auth scheme:\n%s", out)
		}
		if strings.Contains(out, `sql_instance="sqla"`) {
			t.Error("probe of sqlc reports sqla")
		}
		if strings.Contains(out, "kerberos_spn_duplicates ") {
			t.Error("a probe ran the forest-wide duplicate scan, which is the background loop's job")
		}
		debug := fetchBody(t, base+"/probe?target=sqlc&debug=true")
		if !strings.Contains(debug, "collector succeeded") || !strings.Contains(debug, "Metrics:") {
			t.Errorf("debug view does not show what the probe did:\n%s", debug)
		}
		resp, err := http.Get(base + "/probe?target=nosuch")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("probe of an unknown target: status %d, want 400", resp.StatusCode)
		}
	})

	t.Run("a bad reload is refused and the old config keeps running", func(t *testing.T) {
		good, _ := os.ReadFile(cfgFile)
		if err := os.WriteFile(cfgFile, append(good, []byte("\nbogus_field: 1\n")...), 0o600); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(base+"/-/reload", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "bogus_field") {
			t.Errorf("bad reload: status %d, body %q", resp.StatusCode, msg)
		}
		if !strings.Contains(fetchBody(t, base+"/metrics"), "kerberos_exporter_config_last_reload_successful 0") {
			t.Error("config_last_reload_successful is not 0 after a refused reload")
		}
		if err := os.WriteFile(cfgFile, good, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(fetchBody(t, base+"/metrics"), "kerberos_exporter_config_last_reload_successful 1") {
			if time.Now().After(deadline) {
				t.Fatal("SIGHUP with a good config did not bring config_last_reload_successful back to 1")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("secrets never reach pages or logs", func(t *testing.T) {
		for _, page := range []string{fetchBody(t, base+"/metrics"), fetchBody(t, base+"/"), fetchBody(t, base+"/probe?target=sqla&debug=true"), logs.String()} {
			for _, secret := range []string{w.MonitorPassword, "Passw0rd!Sql1"} {
				if strings.Contains(page, secret) {
					t.Fatalf("a secret leaked")
				}
			}
		}
	})
}

// syncBuffer collects the exporter's output, written by exec's copying
// goroutine while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startStandIns(t *testing.T, w *world.World) *tdsserver.Group {
	t.Helper()
	var scenarios []*tdsserver.Scenario
	for _, name := range []string{"sqla", "sqlb", "sqlc", "sqld", "sqlf", "sqlg", "sqlh", "stall"} {
		sc, err := tdsserver.LoadScenario(filepath.Join("..", "..", "testenv", "scenarios", name+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		scenarios = append(scenarios, sc)
	}
	// The scenarios' own addresses (127.0.0.11-23:1433): the expected SPNs
	// name port 1433, as a real default instance's would.
	g, err := tdsserver.StartGroup(scenarios, tdsserver.GroupOptions{})
	if err != nil {
		t.Fatalf("starting the SQL Server stand-ins (is `make demo` running? stop it with make demo-stop): %v", err)
	}
	return g
}

func writeDemoConfig(t *testing.T, w *world.World, dir string) string {
	t.Helper()
	tmpl, err := os.ReadFile("../../testenv/demo.yml.in")
	if err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(w.Dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for file, value := range map[string]string{"krbmon-password": w.MonitorPassword, "sql-password": "Passw0rd!Sql1"} {
		if err := os.WriteFile(filepath.Join(secrets, file), []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := strings.NewReplacer("@DIR@", w.Dir, "@CACERT@", w.CACert).Replace(string(tmpl))
	path := filepath.Join(dir, "kerberos_exporter.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func buildExporter(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kerberos_exporter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func fetchBody(t *testing.T, url string) string {
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
	return string(b)
}

// waitForCollection polls until the first cycle has completed (bounded).
func waitForCollection(t *testing.T, base string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(base + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(b, []byte("kerberos_exporter_last_collection_timestamp_seconds")) {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no completed collection within 90 s (last error: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var (
	// Values that vary from run to run for honest reasons (the world's
	// accounts and groups are made when it is provisioned; sqlsvc_old's 2005
	// password time is asserted by the collector's world test; first-seen
	// times are this run's, TestFirstSeenSurvivesRestart checks them).
	maskedValue = regexp.MustCompile(`^kerberos_(exporter_collector_duration_seconds|exporter_collector_last_success_timestamp_seconds|exporter_last_collection_timestamp_seconds|exporter_config_last_reload_success_timestamp_seconds|spn_scan_duration_seconds|spn_scan_last_success_timestamp_seconds|sql_connections|account_password_last_set_timestamp_seconds|domain_aes_keys_since_timestamp_seconds|finding_first_seen_timestamp_seconds|root_cause_first_seen_timestamp_seconds)\b`)
	// Clock skews: rounded to 10 s, so 420.3 s stays 420 and 0.3 s stays 0.
	roundedValue = regexp.MustCompile(`^kerberos_\w*clock_skew_seconds\b`)
	dropped      = regexp.MustCompile(`^(go_|process_|promhttp_|kerberos_exporter_build_info)`)
	// The exporter's own NTLM sessions on sqlc: their count depends on how
	// many collectors held a connection at that instant, and the client
	// host label is this machine's name.
	ownSessions = regexp.MustCompile(`program="kerberos_exporter"`)
	// Forest-wide counts over the shared world: tests in other packages
	// add accounts with SPNs of their own for a moment while this one runs,
	// so the fixtures' count (with the 300 of OU=Bulk) is a floor, written ">=N" in the fixture.
	floorValue = map[string]float64{"kerberos_spn_accounts_scanned": 315}
)

func normalise(t *testing.T, body string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if line == "" || ownSessions.MatchString(line) || dropped.MatchString(strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")) {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			i := strings.LastIndexByte(line, ' ')
			series, value := line[:i], line[i+1:]
			switch {
			case maskedValue.MatchString(line):
				value = "<varies>"
			case floorValue[series] > 0:
				if v, err := strconv.ParseFloat(value, 64); err == nil && v >= floorValue[series] {
					value = ">=" + strconv.FormatFloat(floorValue[series], 'f', -1, 64)
				}
			case roundedValue.MatchString(line):
				v, err := strconv.ParseFloat(value, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				value = strconv.FormatFloat(math.Round(v/10)*10+0, 'f', 0, 64)
				if value == "-0" {
					value = "0"
				}
			}
			line = series + " " + value
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n") + "\n"
}

// metricRowName is the metric a docs/metrics.md table row describes.
var metricRowName = regexp.MustCompile("^\\|\\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\\s*\\|")

func parseFamilies(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func metricNames(t *testing.T, body string) []string {
	t.Helper()
	var names []string
	for name := range parseFamilies(t, body) {
		if strings.HasPrefix(name, "kerberos_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// lineDiff lists lines missing from and added to the fixture.
func lineDiff(want, got string) string {
	wantSet := map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		wantSet[l] = true
	}
	gotSet := map[string]bool{}
	for _, l := range strings.Split(got, "\n") {
		gotSet[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !gotSet[l] {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !wantSet[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}
