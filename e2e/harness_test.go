package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds what the tests build (the exporter), removed after the run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kerberos-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	exporterOnce sync.Once
	exporterBin  string
	exporterErr  error
)

// buildExporter builds ./cmd/kerberos_exporter once per test binary.
func buildExporter(t *testing.T) string {
	t.Helper()
	exporterOnce.Do(func() {
		bin := filepath.Join(binDir, "kerberos_exporter")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/kerberos_exporter")
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			exporterErr = fmt.Errorf("go build ./cmd/kerberos_exporter: %v\n%s", err, out)
			return
		}
		exporterBin = bin
	})
	if exporterErr != nil {
		t.Fatal(exporterErr)
	}
	return exporterBin
}

// freeAddr returns a loopback host:port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// process is a program the test started; Cleanup stops it.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProcess runs bin with args, output to a log file in the test's temp
// dir. It is stopped (SIGTERM, then SIGKILL after 10 s) when the test ends;
// if the test failed, the log's last lines are printed.
func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("last lines of %s's log (%s):\n%s", name, logPath, p.tail(40))
		}
	})
	return p
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	// Only this process's own group: the one the test started.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) tail(n int) string {
	data, _ := os.ReadFile(p.log)
	return trimTail(string(data), n)
}

func trimTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every interval until it returns true, the deadline
// passes, or the process p (if not nil) exits.
func waitFor(t *testing.T, what string, timeout time.Duration, p *process, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if p != nil && p.exited() {
			t.Fatalf("%s: %s exited (%v) while waiting; last state: %s\n%s", what, p.name, p.err, last, p.tail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last state: %s", what, timeout, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(rawURL string) (int, string, error) {
	resp, err := httpClient.Get(rawURL)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, string(body), err
}

// waitHTTPOK waits until GET url answers 200.
func waitHTTPOK(t *testing.T, what, rawURL string, timeout time.Duration, p *process) {
	t.Helper()
	waitFor(t, what, timeout, p, func() (bool, string) {
		code, body, err := httpGet(rawURL)
		if err != nil {
			return false, err.Error()
		}
		return code == 200, fmt.Sprintf("HTTP %d %s", code, trimLines(body, 3))
	})
}

// ---- Prometheus ----

type prometheusServer struct {
	URL string // http://127.0.0.1:port
	*process
}

type prometheusConfig struct {
	ExporterAddr     string   // host:port scraped as job kerberos_exporter
	RuleFiles        []string // absolute paths
	AlertmanagerAddr string   // host:port, or ""
	// ScrapeConfigs, when set, is the scrape_configs list (YAML) used
	// instead of the one job scraping ExporterAddr.
	ScrapeConfigs string
}

// startPrometheus runs Debian's prometheus on a free loopback port with a
// temporary storage directory, scraping and evaluating every second.
func startPrometheus(t *testing.T, cfg prometheusConfig) *prometheusServer {
	t.Helper()
	bin := requireTool(t, "prometheus")
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	if len(cfg.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range cfg.RuleFiles {
			fmt.Fprintf(&b, "  - %q\n", f)
		}
	}
	if cfg.AlertmanagerAddr != "" {
		fmt.Fprintf(&b, "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%q]\n", cfg.AlertmanagerAddr)
	}
	if cfg.ScrapeConfigs != "" {
		b.WriteString("scrape_configs:\n" + cfg.ScrapeConfigs)
	} else {
		fmt.Fprintf(&b, "scrape_configs:\n  - job_name: kerberos_exporter\n    static_configs:\n      - targets: [%q]\n", cfg.ExporterAddr)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startProcess(t, "prometheus", bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--rules.alert.resend-delay=1s",
		"--log.level=info")
	srv := &prometheusServer{URL: "http://" + addr, process: p}
	waitHTTPOK(t, "prometheus ready", srv.URL+"/-/ready", 60*time.Second, p)
	return srv
}

// promResult is the data of a /api/v1/query answer.
type promResult struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// query runs an instant query. A PromQL syntax error comes back as
// status "error", errorType "bad_data".
func (s *prometheusServer) query(expr string) (promResult, error) {
	var r promResult
	resp, err := httpClient.PostForm(s.URL+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
	}
	return r, nil
}

// seriesCount is how many series expr returns now (0 on error, with err).
func (s *prometheusServer) seriesCount(expr string) (int, error) {
	r, err := s.query(expr)
	if err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return len(r.Data.Result), nil
}

// ---- Alertmanager and its webhook ----

// webhookMessage is Alertmanager's webhook payload (version 4).
type webhookMessage struct {
	Status string `json:"status"`
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// webhook receives Alertmanager's notifications on a loopback httptest server.
type webhook struct {
	*httptest.Server
	mu       sync.Mutex
	messages []webhookMessage
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	w := &webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m webhookMessage
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("webhook: undecodable payload: %v\n%s", err, body)
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.messages = append(w.messages, m)
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

// alertSeen reports whether a notification carried an alert with the given
// status (firing or resolved) whose labels include all of match.
func (w *webhook) alertSeen(status string, match map[string]string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.messages {
		for _, a := range m.Alerts {
			if a.Status == status && labelsMatch(a.Labels, match) {
				return true
			}
		}
	}
	return false
}

func (w *webhook) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for _, m := range w.messages {
		for _, a := range m.Alerts {
			var ls []string
			for _, k := range []string{"sql_instance", "target", "spn", "check", "dc"} {
				if v := a.Labels[k]; v != "" {
					ls = append(ls, fmt.Sprintf("%s=%q", k, v))
				}
			}
			parts = append(parts, fmt.Sprintf("%s %s{%s}", a.Status, a.Labels["alertname"], strings.Join(ls, ",")))
		}
	}
	return fmt.Sprintf("%d notifications: %s", len(w.messages), strings.Join(parts, "; "))
}

func labelsMatch(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type alertmanagerServer struct {
	Addr string
	*process
}

// startAlertmanager runs Debian's prometheus-alertmanager on a free loopback
// port, without clustering, sending every alert to hookURL at once
// (group_wait and group_interval 1 s) and sending resolutions too.
func startAlertmanager(t *testing.T, hookURL string) *alertmanagerServer {
	t.Helper()
	bin := requireTool(t, "prometheus-alertmanager")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: test-webhook
  group_by: [alertname, sql_instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test-webhook
    webhook_configs:
      - url: %q
        send_resolved: true
`, hookURL)
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startProcess(t, "alertmanager", bin,
		"--config.file="+cfgPath,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no gossip: a single, local Alertmanager
		"--log.level=info")
	waitHTTPOK(t, "alertmanager ready", "http://"+addr+"/-/ready", 60*time.Second, p)
	return &alertmanagerServer{Addr: addr, process: p}
}

// ---- the exporter ----

type exporterServer struct {
	Addr string
	*process
}

// startExporter runs the exporter built from ./cmd/kerberos_exporter with
// the given configuration and waits until its first collection cycle has
// completed.
func startExporter(t *testing.T, configYAML string, extraArgs ...string) *exporterServer {
	t.Helper()
	bin := buildExporter(t)
	cfgPath := filepath.Join(t.TempDir(), "kerberos_exporter.yml")
	if err := os.WriteFile(cfgPath, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := append([]string{"--config.file=" + cfgPath, "--web.listen-address=" + addr, "--log.level=debug"}, extraArgs...)
	p := startProcess(t, "kerberos_exporter", bin, args...)
	e := &exporterServer{Addr: addr, process: p}
	waitFor(t, "exporter's first collection", 90*time.Second, p, func() (bool, string) {
		code, body, err := httpGet("http://" + addr + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		return code == 200 && strings.Contains(body, "kerberos_exporter_last_collection_timestamp_seconds"),
			fmt.Sprintf("HTTP %d, %d bytes", code, len(body))
	})
	return e
}

// metricNamesExposed returns the metric names of the exporter's /metrics.
func (e *exporterServer) metricNamesExposed(t *testing.T) map[string]bool {
	t.Helper()
	code, body, err := httpGet("http://" + e.Addr + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: HTTP %d, %v", code, err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end > 0 {
			out[line[:end]] = true
		}
	}
	return out
}
