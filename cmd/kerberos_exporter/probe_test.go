package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
)

// stallProber serves /probe for two instances, stall and stall2, both on
// the SQL Server stand-in's stall scenario (accepts TCP, never answers),
// with SQL and collector timeouts of 30 s: only the probe's own deadline
// can end a probe early.
func stallProber(t *testing.T, opts probeOptions, serverLog io.Writer) (*prober, *httptest.Server) {
	t.Helper()
	sc, err := tdsserver.LoadScenario(filepath.Join("..", "..", "testenv", "scenarios", "stall.yml"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := tdsserver.StartGroup([]*tdsserver.Scenario{sc}, tdsserver.GroupOptions{EphemeralPorts: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	host, port, _ := net.SplitHostPort(g.Servers()[0].Addr())
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "Passw0rd!Sql1")
	var yml strings.Builder
	yml.WriteString("global: {collection_interval: 60s, collector_timeout: 30s}\ndns: {servers: ['127.0.0.1:1'], timeout: 1s}\nsql_instances:\n")
	for _, name := range []string{"stall", "stall2"} {
		fmt.Fprintf(&yml, "  - {name: %s, host: %s.corp.test, address: %s, port: %s, timeout: 30s, encrypt: disable, expect_kerberos: false,\n     auth: {method: sql, username: krbmon_sql, password: {env: KERBEROS_EXPORTER_TEST_PASSWORD}}}\n", name, name, host, port)
	}
	cfg, err := config.Parse("probe.yml", []byte(yml.String()))
	if err != nil {
		t.Fatal(err)
	}
	lvl := promslog.NewLevel()
	_ = lvl.Set("debug")
	logger := promslog.New(&promslog.Config{Writer: serverLog, Level: lvl})
	p := newProber(cycle.NewRunner(cfg, logger), logger, opts)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

func probeGet(t *testing.T, url string, scrapeTimeout string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if scrapeTimeout != "" {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", scrapeTimeout)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var probeDurationLine = regexp.MustCompile(`(?m)^probe_duration_seconds ([0-9.e+-]+)$`)

// Prometheus' scrape timeout minus the offset is the whole probe's
// deadline: a stalled instance is given up on then, not after its 30 s SQL
// timeout, and the probe says it failed.
func TestProbeDeadlineFromScrapeTimeout(t *testing.T) {
	var serverLog syncBuffer
	_, srv := stallProber(t, probeOptions{MaxConcurrent: 2, MaxQueued: 2, TimeoutOffset: 500 * time.Millisecond, DefaultTimeout: time.Minute}, &serverLog)
	code, body := probeGet(t, srv.URL+"?target=stall", "1.5")
	if code != http.StatusOK || !strings.Contains(body, "probe_success 0") {
		t.Fatalf("status %d, want 200 with probe_success 0:\n%s", code, body)
	}
	m := probeDurationLine.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no probe_duration_seconds:\n%s", body)
	}
	// Not a speed check: 30 s is the SQL timeout a probe without the
	// header's deadline would wait out; the deadline is 1 s.
	if d, _ := strconv.ParseFloat(m[1], 64); d >= 15 {
		t.Errorf("probe took %.1fs: the scrape timeout was not its deadline", d)
	}

	// The debug view: the probe's logs, then the text exposition format.
	code, body = probeGet(t, srv.URL+"?target=stall&debug=true", "1.5")
	for _, want := range []string{"Probe of stall", "collector succeeded", "# TYPE probe_success gauge", "probe_success 0", "# HELP probe_duration_seconds"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("debug view (status %d) lacks %q:\n%s", code, want, body)
		}
	}
	// The probe's logs also reached the server log, at debug level.
	if log := serverLog.String(); !regexp.MustCompile(`level=DEBUG .*msg="collector succeeded".*probe_target=stall`).MatchString(log) {
		t.Errorf("server log lacks the probe's records at debug level:\n%s", log)
	}
	// A bad header is refused.
	if code, _ := probeGet(t, srv.URL+"?target=stall", "soon"); code != http.StatusBadRequest {
		t.Errorf("bad scrape timeout header: status %d, want 400", code)
	}
}

// At most --probe.max-concurrent probes run; probes of the same target
// share one run; beyond the queue the answer is 503 with the reason.
func TestProbeConcurrencyLimitAndCoalescing(t *testing.T) {
	p, srv := stallProber(t, probeOptions{MaxConcurrent: 1, MaxQueued: 0, TimeoutOffset: 500 * time.Millisecond, DefaultTimeout: time.Minute}, io.Discard)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	wg.Go(func() { codes[0], _ = probeGet(t, srv.URL+"?target=stall", "4") })
	// Wait (polling, bounded) until the first probe holds the only slot.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p.mu.Lock()
		running := p.runs == 1 && p.inflight[probeKey{"stall", 3500 * time.Millisecond}] != nil
		p.mu.Unlock()
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first probe never started")
		}
	}
	wg.Go(func() { codes[1], _ = probeGet(t, srv.URL+"?target=stall", "4") })
	code, body := probeGet(t, srv.URL+"?target=stall2", "4")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many probes") {
		t.Errorf("a second target while the only slot is taken: status %d %q, want 503 saying why", code, body)
	}
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Errorf("probes of stall: statuses %v, want both 200", codes)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runs != 1 {
		t.Errorf("two concurrent probes of stall made %d runs, want 1 shared", p.runs)
	}
}

// Probes of one target with different scrape timeouts do not share a run:
// the shorter one would wait out the longer deadline and fail as a scrape
// (503) instead of answering probe_success 0 in time.
func TestProbeCoalescesOnlyEqualTimeouts(t *testing.T) {
	p, srv := stallProber(t, probeOptions{MaxConcurrent: 2, MaxQueued: 2, TimeoutOffset: 500 * time.Millisecond, DefaultTimeout: time.Minute}, io.Discard)
	var wg sync.WaitGroup
	var longCode int
	wg.Go(func() { longCode, _ = probeGet(t, srv.URL+"?target=stall", "8") })
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p.mu.Lock()
		running := p.runs == 1
		p.mu.Unlock()
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first probe never started")
		}
	}
	code, body := probeGet(t, srv.URL+"?target=stall", "2")
	if code != http.StatusOK || !strings.Contains(body, "probe_success 0") {
		t.Errorf("a 2 s probe while an 8 s probe of the same target runs: status %d, want 200 with probe_success 0:\n%s", code, body)
	}
	wg.Wait()
	if longCode != http.StatusOK {
		t.Errorf("the 8 s probe: status %d, want 200", longCode)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runs != 2 {
		t.Errorf("probes with different timeouts made %d runs, want 2", p.runs)
	}
}

// The server bounds every connection; its write timeout leaves room for the
// longest probe.
func TestServerTimeouts(t *testing.T) {
	d := defaultServerTimeouts
	if d.ReadHeader <= 0 || d.Read <= 0 || d.Write <= 0 || d.Idle <= 0 {
		t.Fatalf("unbounded connection: %+v", d)
	}
	if d.Write <= maxProbeTimeout {
		t.Errorf("write timeout %s would cut off a probe of up to %s", d.Write, maxProbeTimeout)
	}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }), defaultServerTimeouts)
	if srv.IdleTimeout != d.Idle || srv.ReadTimeout != d.Read || srv.WriteTimeout != d.Write || srv.ReadHeaderTimeout != d.ReadHeader {
		t.Errorf("server does not use the timeouts: %+v", srv)
	}

	// An idle keep-alive connection is closed by the server (here with a
	// short idle timeout; the connection's own deadline only bounds the test).
	short := d
	short.Idle = 200 * time.Millisecond
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = newHTTPServer(srv.Handler, short)
	ts.Start()
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle keep-alive connection: read %v, want EOF (closed by the server)", err)
	}
}
