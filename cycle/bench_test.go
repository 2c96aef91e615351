package cycle

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// fleetResult is a completed cycle for n instances, each with four expected
// SPNs, two linked servers and ten named NTLM clients: the size of a large
// fleet watched by one exporter.
func fleetResult(n int) *Result {
	snap := facts.New(time.Now())
	cfg := &config.Config{}
	for i := range n {
		name := fmt.Sprintf("sql%03d", i)
		cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: name, Host: name + ".corp.example.com"})
		inst := &facts.SQLInstance{Name: name, Up: true, AuthScheme: "KERBEROS", NetTransport: "TCP", EngineAccount: `CORP\svc_` + name}
		for c := range 10 {
			inst.NTLMClients = append(inst.NTLMClients, facts.NTLMClient{Host: fmt.Sprintf("WKS-%04d", c), Login: `CORP\user`, Program: "app", Connections: c})
		}
		inst.Connections = []facts.ConnectionCount{{NetTransport: "TCP", AuthScheme: "KERBEROS", Count: 40}, {NetTransport: "TCP", AuthScheme: "NTLM", Count: 10}}
		snap.SQL[name] = inst
		ls := &facts.LinkedServers{Instance: name, Readable: true}
		for l := range 2 {
			ls.Servers = append(ls.Servers, facts.LinkedServer{Name: fmt.Sprintf("LS%d", l), SelfMapped: true, Tested: true, TestOK: true, HopTested: true, HopOK: true, HopAuthScheme: "KERBEROS", HopTransport: "TCP"})
		}
		snap.LinkedServers[name] = ls
		for _, form := range []string{"%s.corp.example.com:1433", "%s.corp.example.com", "%s:1433", "%s"} {
			snap.SPNs = append(snap.SPNs, facts.ExpectedSPN{Target: name, SPN: "MSSQLSvc/" + fmt.Sprintf(form, name), ExpectedAccount: inst.EngineAccount, Holders: []string{inst.EngineAccount}})
		}
	}
	snap.Finished = time.Now()
	status := map[string]Status{}
	for _, c := range collector.Enabled() {
		status[c.Name] = Status{Success: true, Duration: time.Second, LastSuccess: snap.Finished}
	}
	return &Result{Config: cfg, Snapshot: snap, Status: status}
}

// BenchmarkScrape measures /metrics over HTTP as Prometheus asks for it
// (text, gzip), for 12 and 500 instances, serving the cycle encoded once
// (cached, what the exporter does) and rebuilding every metric per scrape
// (rebuild, what it did before), sequentially and with 20 concurrent
// scrapers. It reports latency percentiles, the body size and the process's
// resident memory afterwards (VmRSS; VmHWM is the peak so far in the
// whole benchmark process). Figures, not assertions.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{12, 500} {
		res := fleetResult(n)
		runtimeReg := prometheus.NewRegistry()
		runtimeReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		handlers := map[string]http.Handler{}
		handlers["cached"] = newMetricsHandler(func() *Result { return res }, collector.Enabled(), prometheus.NewRegistry(), runtimeReg, slog.New(slog.DiscardHandler))
		rebuildReg := prometheus.NewRegistry()
		rebuildReg.MustRegister(&Exporter{last: func() *Result { return res }, collectors: collector.Enabled()},
			collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		handlers["rebuild"] = promhttp.HandlerFor(rebuildReg, promhttp.HandlerOpts{})
		for _, mode := range []string{"cached", "rebuild"} {
			srv := httptest.NewServer(handlers[mode])
			client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}
			get := func(b *testing.B) (time.Duration, int) {
				req, _ := http.NewRequest("GET", srv.URL, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				size, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return time.Since(start), int(size)
			}
			b.Run(fmt.Sprintf("instances=%d/%s/sequential", n, mode), func(b *testing.B) {
				b.ReportAllocs()
				var lat []time.Duration
				var size int
				for b.Loop() {
					d, sz := get(b)
					lat, size = append(lat, d), sz
				}
				reportLatency(b, lat)
				b.ReportMetric(float64(size), "gzip-bytes/scrape")
			})
			b.Run(fmt.Sprintf("instances=%d/%s/concurrent20", n, mode), func(b *testing.B) {
				b.ReportAllocs()
				var mu sync.Mutex
				var lat []time.Duration
				b.SetParallelism((20 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					for pb.Next() {
						d, _ := get(b)
						mine = append(mine, d)
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				reportLatency(b, lat)
			})
			srv.Close()
		}
	}
}

// reportLatency reports the median and 99th percentile in milliseconds, and
// the process's resident memory now and at its peak, in MB.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		for _, field := range []string{"VmRSS", "VmHWM"} {
			if rest, ok := strings.CutPrefix(line, field+":"); ok {
				var kb float64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
				b.ReportMetric(kb/1024, field+"-MB")
			}
		}
	}
}
