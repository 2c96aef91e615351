package collector

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// deadDomainConfig has one domain whose only Global Catalog refuses
// connections at once.
func deadDomainConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("dead.yml", []byte(`global: {spn_scan_interval: 1h}
domains:
  - name: dead.test
    global_catalogs: ["ldaps://127.0.0.1:1"]
    domain_controllers: ["ldaps://127.0.0.1:1"]
    bind: {method: gssapi}
kerberos: {realm: DEAD.TEST, principal: krbmon@DEAD.TEST, password: {env: KTE_UNIT_PASSWORD}}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSPNScannerSchedule: without Loop, Latest scans now; once Start has
// returned, Latest waits for the loop's first scan only, then answers from
// the last one at once.
func TestSPNScannerSchedule(t *testing.T) {
	t.Setenv("KTE_UNIT_PASSWORD", "x")
	cfg := deadDomainConfig(t)
	logger := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	s := NewSPNScanner()
	res := s.Latest(ctx, cfg, logger)
	if res.Scanned || !strings.Contains(res.Error, "127.0.0.1:1") || !res.LastSuccess.IsZero() || res.Scans[scanFull] != 0 {
		t.Errorf("a scan of a dead DC: %+v", res)
	}
	if again := s.Latest(ctx, cfg, logger); again == res {
		t.Error("without Loop, every Latest must scan anew")
	}

	s = NewSPNScanner()
	loopCtx, stop := context.WithCancel(ctx)
	defer stop()
	s.Start(loopCtx, func() *config.Config { return cfg }, logger)
	first := s.Latest(ctx, cfg, logger) // waits for the Loop's first scan
	if first == nil || first.Error == "" {
		t.Fatalf("first result: %+v", first)
	}
	for range 3 {
		if got := s.Latest(ctx, cfg, logger); got != first {
			t.Fatal("with Loop, Latest must answer from the last scan, not scan")
		}
	}
	// A cycle that cannot wait: the first scan has not ended yet.
	s = NewSPNScanner()
	s.looping = true
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if got := s.Latest(short, cfg, logger); got.Scanned || !strings.Contains(got.Error, "still running") {
		t.Errorf("before the first scan ends: %+v", got)
	}
}
