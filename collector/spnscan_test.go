package collector

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
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

// fakeScanConn is a directory that serves a scripted scan: accounts are
// handed out in order and the scan fails after failAfter of them (-1: never).
type fakeScanConn struct {
	usn       int64
	accounts  []directory.SPNAccount
	failAfter int
}

func (f *fakeScanConn) ScanScope(context.Context) (string, error) { return "DC=fake,DC=test", nil }
func (f *fakeScanConn) ServerState(context.Context) (directory.ServerState, error) {
	return directory.ServerState{URL: "ldap://fake", DSServiceName: "CN=NTDS Settings", InvocationID: "id", HighestCommittedUSN: f.usn}, nil
}
func (f *fakeScanConn) Close() error { return nil }
func (f *fakeScanConn) ScanSPNs(_ context.Context, _ int64, fn func(directory.SPNAccount) error) error {
	for i, a := range f.accounts {
		if i == f.failAfter {
			return errors.New("connection reset midway")
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

// TestSPNScanFailures: an incremental scan that fails midway applies none
// of what it read (an SPN moved from A to B, only B read, is no duplicate),
// and a failed dial does not drop the index: the next scan is incremental.
func TestSPNScanFailures(t *testing.T) {
	t.Setenv("KTE_UNIT_PASSWORD", "x")
	cfg := deadDomainConfig(t)
	logger := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	a := directory.SPNAccount{GUID: [16]byte{1}, Name: `DEAD\a`, SPNs: []string{"MSSQLSvc/sql1.dead.test:1433"}}
	b := directory.SPNAccount{GUID: [16]byte{2}, Name: `DEAD\b`, SPNs: []string{"MSSQLSvc/sql1.dead.test:1433"}}
	aWithout := directory.SPNAccount{GUID: a.GUID}

	var conn *fakeScanConn // nil: the dial fails
	s := NewSPNScanner()
	s.dial = func(context.Context, config.Domain, *config.Kerberos, *slog.Logger) (scanConn, error) {
		if conn == nil {
			return nil, errors.New("dial refused")
		}
		return conn, nil
	}

	conn = &fakeScanConn{usn: 10, accounts: []directory.SPNAccount{a}, failAfter: -1}
	if res := s.Scan(ctx, cfg, logger); !res.Scanned || res.Error != "" || res.Total != 0 || res.Scans[scanFull] != 1 {
		t.Fatalf("first (full) scan: %+v", res)
	}

	// The SPN moves from a to b; the refresh reads b, then fails before a.
	conn = &fakeScanConn{usn: 20, accounts: []directory.SPNAccount{b, aWithout}, failAfter: 1}
	res := s.Scan(ctx, cfg, logger)
	if res.Error == "" || res.Total != 0 || len(res.Top) != 0 || res.AccountsScanned != 1 {
		t.Errorf("a failed incremental scan must leave the last good figures (no duplicate, 1 account): %+v", res)
	}

	conn = nil
	if res := s.Scan(ctx, cfg, logger); res.Scanned || !strings.Contains(res.Error, "dial refused") {
		t.Errorf("a failed dial: %+v", res)
	}
	if len(s.scopes) != 1 {
		t.Errorf("a failed dial dropped the index: %d scopes left", len(s.scopes))
	}

	conn = &fakeScanConn{usn: 30, accounts: []directory.SPNAccount{b, aWithout}, failAfter: -1}
	res = s.Scan(ctx, cfg, logger)
	if !res.Scanned || res.Error != "" || res.Total != 0 || res.AccountsScanned != 1 {
		t.Errorf("the refresh once it succeeds: %+v", res)
	}
	if res.Scans[scanFull] != 1 || res.Scans[scanIncremental] != 1 {
		t.Errorf("after a failed dial the scan must go on incrementally: scans %v", res.Scans)
	}
	if got := s.holdersOf(b.SPNs[0]); !slices.Equal(got, []string{b.Name}) {
		t.Errorf("holders of %s after the refresh: %v, want b alone", b.SPNs[0], got)
	}
}
