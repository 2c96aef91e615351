package collector

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkDuplicateScan measures the forest-wide duplicate count over
// 100,000 accounts with two SPNs each (one duplicate in a hundred): the
// memory it keeps is one map entry per distinct SPN.
func BenchmarkDuplicateScan(b *testing.B) {
	const accounts = 100_000
	names := make([]string, accounts)
	spns := make([][]string, accounts)
	for i := range accounts {
		names[i] = fmt.Sprintf(`CORP\svc%06d`, i)
		host := i
		if i%100 == 1 {
			host = i - 1 // duplicates the previous account's SPN
		}
		spns[i] = []string{fmt.Sprintf("MSSQLSvc/h%06d.corp.example.com:1433", host), fmt.Sprintf("HTTP/web%06d.corp.example.com", i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		d := newSPNIndex()
		for i := range accounts {
			d.put(guid(i), names[i], spns[i])
		}
		if got := d.result(50).Total; got != accounts/100 {
			b.Fatalf("duplicates = %d, want %d", got, accounts/100)
		}
	}
}

// BenchmarkSPNIndex1M builds the duplicate scan's SPN index for 1M SPNs
// (500,000 accounts with two each, 1% duplicated) and reports the live heap
// it keeps: what the exporter holds between scans at that size.
func BenchmarkSPNIndex1M(b *testing.B) {
	const accounts = 500_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := newSPNIndex()
		for i := range accounts {
			host := i
			if i%100 == 1 {
				host = i - 1
			}
			// As a scan delivers them: fresh strings per account.
			x.put(guid(i), fmt.Sprintf(`CORP\svc%06d`, i), []string{
				fmt.Sprintf("MSSQLSvc/h%06d.corp.example.com:1433", host), fmt.Sprintf("HTTP/web%06d.corp.example.com", i)})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := x.result(50).Total; got != accounts/100 {
			b.Fatalf("duplicates = %d, want %d", got, accounts/100)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB-live-heap")
		b.ReportMetric(peakRSSMB(), "MB-peak-RSS")
		runtime.KeepAlive(x)
	}
}

// peakRSSMB is the process's peak resident set (VmHWM), 0 where /proc has
// none: with the garbage of building the index, what the OS saw.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmHWM: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}
