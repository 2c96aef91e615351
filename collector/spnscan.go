package collector

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

// Scan modes, the mode label of kerberos_spn_scans_total.
const (
	scanFull        = "full"
	scanIncremental = "incremental"
)

// SPNScanner runs the forest-wide duplicate SPN scan on its own schedule
// (global.spn_scan_interval), apart from the collection cycle, so that a
// large forest never holds up the per-instance checks. It keeps an SPN
// index per scan scope (a forest, through its Global Catalog, or a domain)
// between scans and refreshes it from the accounts changed since the last
// scan (uSNChanged above the DC's highestCommittedUSN then). It reads the
// whole scope again:
//   - on the first scan, and after a full scan of the scope failed;
//   - when it reaches another DC (URL, dsServiceName or invocationId differ)
//     or the DC's USN went back: USNs are per DC and per copy of its database;
//   - every global.spn_full_scan_interval: an incremental scan does not see a
//     deleted account unless the DC shows this identity its tombstone, which
//     an ordinary user's usually is not.
type SPNScanner struct {
	scanMu sync.Mutex // one scan at a time
	scopes map[string]*scopeIndex

	mu      sync.Mutex
	last    *facts.DuplicateSPNs // nil until the first scan ends
	looping bool
	done    chan struct{} // closed when the first scan ends
	counts  map[string]int
	lastOK  time.Time

	// dial opens the connection a scan reads; nil: a Global Catalog of the
	// domain. Tests replace it to make a scan fail midway.
	dial func(context.Context, config.Domain, *config.Kerberos, *slog.Logger) (scanConn, error)
}

// scanConn is what a scan needs of a directory connection.
type scanConn interface {
	ScanScope(ctx context.Context) (string, error)
	ServerState(ctx context.Context) (directory.ServerState, error)
	ScanSPNs(ctx context.Context, sinceUSN int64, fn func(directory.SPNAccount) error) error
	Close() error
}

func dialGlobalCatalog(ctx context.Context, d config.Domain, krb *config.Kerberos, logger *slog.Logger) (scanConn, error) {
	conn, err := directory.DialGlobalCatalog(ctx, d, krb, logger)
	if err != nil {
		return nil, err // not a nil *Conn in an interface
	}
	return conn, nil
}

// scopeIndex is what the scanner knows of one scope.
type scopeIndex struct {
	index    *spnIndex
	server   directory.ServerState // as read before the scan that built the index
	lastFull time.Time
}

// NewSPNScanner makes a scanner that has not scanned yet.
func NewSPNScanner() *SPNScanner {
	return &SPNScanner{scopes: map[string]*scopeIndex{}, done: make(chan struct{}), counts: map[string]int{}}
}

// StartSPNScans starts the Loop of the spn collector's scanner, if that
// collector is among these: the runner's hook.
func StartSPNScans(ctx context.Context, collectors []Named, cfg func() *config.Config, logger *slog.Logger) {
	if scan := SPNScannerOf(collectors); scan != nil {
		scan.Start(ctx, cfg, logger)
	}
}

// Start runs Loop in the background. The scanner counts as looping from
// the moment Start returns, so a cycle that starts right after waits for
// the loop's first scan instead of scanning the forest a second time.
func (s *SPNScanner) Start(ctx context.Context, cfg func() *config.Config, logger *slog.Logger) {
	s.mu.Lock()
	s.looping = true
	s.mu.Unlock()
	go s.Loop(ctx, cfg, logger)
}

// Loop scans now and then every spn_scan_interval of the configuration in
// force, until ctx ends.
func (s *SPNScanner) Loop(ctx context.Context, cfg func() *config.Config, logger *slog.Logger) {
	s.mu.Lock()
	s.looping = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.looping = false
		s.mu.Unlock()
	}()
	for {
		c := cfg()
		s.Scan(ctx, c, logger)
		timer := time.NewTimer(c.Global.SPNScanInterval.Duration())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// SPNScannerOf is the spn collector's scanner among these collectors, nil
// without one.
func SPNScannerOf(collectors []Named) *SPNScanner {
	for _, c := range collectors {
		if sc, ok := c.Collector.(spnCollector); ok && sc.scan != nil {
			return sc.scan
		}
	}
	return nil
}

// Known is what the last completed scan (never a new one) saw of the
// expected SPNs: their entries among the listed duplicates, for judging
// those SPNs' holders. It is not a scan result (Scanned is false), so it
// adds no forest-wide metric or finding. Nil before the first scan ends.
func (s *SPNScanner) Known(expected []facts.ExpectedSPN) *facts.DuplicateSPNs {
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	if last == nil {
		return nil
	}
	out := &facts.DuplicateSPNs{}
	for _, dup := range last.Top {
		if slices.ContainsFunc(expected, func(e facts.ExpectedSPN) bool { return spn.Equal(e.SPN, dup.SPN) }) {
			out.Top = append(out.Top, dup)
		}
	}
	return out
}

// Latest is the result of the last scan for a collection cycle. While Loop
// runs it waits, at most until ctx ends, for the first scan to end (so that
// the first cycle has a result), and otherwise never. Without Loop (a
// one-shot check, a test) it scans now.
func (s *SPNScanner) Latest(ctx context.Context, cfg *config.Config, logger *slog.Logger) *facts.DuplicateSPNs {
	s.mu.Lock()
	looping, last := s.looping, s.last
	s.mu.Unlock()
	if !looping {
		return s.Scan(ctx, cfg, logger)
	}
	if last != nil {
		return last
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return &facts.DuplicateSPNs{Error: "the first forest-wide SPN scan is still running"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Scan scans every configured domain's scope once, each scope once however
// many domains share it, and returns the result.
func (s *SPNScanner) Scan(ctx context.Context, cfg *config.Config, logger *slog.Logger) *facts.DuplicateSPNs {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	start := time.Now()
	limit := 0
	var errs []string
	var results []facts.DuplicateSPNs
	modes := map[string]int{}
	seen := map[string]bool{}
	complete := true
	var scopesOf []string // each domain's scope, "" where unknown
	for i := range cfg.Domains {
		d := &cfg.Domains[i]
		limit = max(limit, d.MaxDuplicateSPNs)
		scope, mode, err := s.scanDomain(ctx, cfg, d, seen, logger)
		scopesOf = append(scopesOf, scope)
		if mode != "" {
			modes[mode]++
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
		if scope == "" || seen[scope] {
			if scope == "" {
				complete = false
			}
			continue
		}
		seen[scope] = true
		if si := s.scopes[scope]; si != nil {
			results = append(results, si.index.result(-1))
		} else {
			complete = false
		}
	}
	// A domain whose scope is unknown (its DC did not answer) may still reach
	// any of the other indexes: keep them all until every domain answers, so
	// that one failed dial does not cost a full rescan.
	if !slices.Contains(scopesOf, "") {
		for scope := range s.scopes {
			if !seen[scope] {
				delete(s.scopes, scope) // no configured domain reaches it any more
			}
		}
	}
	if limit == 0 {
		limit = config.DefaultMaxDuplicateSPNs
	}
	res := mergeDuplicates(results, limit)
	res.Scanned = complete
	res.Error = strings.Join(errs, "; ")
	res.ScanDuration = time.Since(start)

	s.mu.Lock()
	defer s.mu.Unlock()
	for m, n := range modes {
		s.counts[m] += n
	}
	if len(errs) == 0 {
		s.lastOK = time.Now()
	}
	res.LastSuccess = s.lastOK
	res.Scans = map[string]int{scanFull: s.counts[scanFull], scanIncremental: s.counts[scanIncremental]}
	if s.last == nil {
		close(s.done)
	}
	s.last = &res
	logger.Debug("SPN scan", "duration", res.ScanDuration, "modes", modes, "accounts", res.AccountsScanned, "duplicates", res.Total, "err", res.Error)
	return &res
}

// scanDomain refreshes the index of d's scope, unless another domain already
// did in this scan (done). It returns the scope ("" when unknown) and the
// mode of the scan it made ("" for none).
func (s *SPNScanner) scanDomain(ctx context.Context, cfg *config.Config, d *config.Domain, done map[string]bool, logger *slog.Logger) (scope, mode string, err error) {
	dial := s.dial
	if dial == nil {
		dial = dialGlobalCatalog
	}
	conn, err := dial(ctx, *d, &cfg.Kerberos, logger)
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	if scope, err = conn.ScanScope(ctx); err != nil || done[scope] {
		return scope, "", err
	}
	server, err := conn.ServerState(ctx) // before the scan: what changes during it is read again next time
	if err != nil {
		return scope, "", fmt.Errorf("SPN scan of %s: %w", scope, err) // the index, if any, stands as it was
	}
	si := s.scopes[scope]
	mode = scanIncremental
	switch {
	case si == nil:
		mode = scanFull
	case si.server.URL != server.URL, si.server.DSServiceName != server.DSServiceName, si.server.InvocationID != server.InvocationID:
		mode = scanFull // another DC, or another copy of its database: its USNs are its own
	case server.HighestCommittedUSN < si.server.HighestCommittedUSN:
		mode = scanFull
	case time.Since(si.lastFull) >= cfg.Global.SPNFullScanInterval.Duration():
		mode = scanFull
	}
	if mode == scanFull {
		// Drop the old index first: a full scan never holds two.
		delete(s.scopes, scope)
		si = &scopeIndex{index: newSPNIndex(), lastFull: time.Now()}
		err = conn.ScanSPNs(ctx, 0, func(a directory.SPNAccount) error {
			si.index.put(a.GUID, a.Name, a.SPNs)
			return nil
		})
	} else {
		// Applied only once the whole refresh is read: half of one (an SPN
		// moved from A to B, only B read) would show a duplicate that is not.
		// A failed refresh leaves the last good index; the next reads the
		// changes again from the same USN.
		var changed []directory.SPNAccount
		err = conn.ScanSPNs(ctx, si.server.HighestCommittedUSN, func(a directory.SPNAccount) error {
			changed = append(changed, a)
			return nil
		})
		if err == nil {
			for _, a := range changed {
				si.index.put(a.GUID, a.Name, a.SPNs)
			}
		}
	}
	if err != nil {
		if mode == scanFull {
			return scope, "", fmt.Errorf("duplicate SPN scan of %s: %w", scope, err)
		}
		return scope, "", fmt.Errorf("duplicate SPN scan (incremental) of %s: %w", scope, err)
	}
	si.server = server
	s.scopes[scope] = si
	return scope, mode, nil
}

// mergeDuplicates combines the results of several scopes: totals add up, and
// the limit duplicates with the most holders (ties by SPN) are kept.
func mergeDuplicates(results []facts.DuplicateSPNs, limit int) facts.DuplicateSPNs {
	var res facts.DuplicateSPNs
	var top []facts.DuplicateSPN
	for _, r := range results {
		res.Total += r.Total
		res.AccountsScanned += r.AccountsScanned
		top = append(top, r.Top...)
	}
	res.Top = topDuplicates(top, limit)
	return res
}

// NewSPNCollectorAfterScan is the spn collector with a scanner whose last
// completed scan found last, as if it had just run: for the tests of the
// cycle (another package) that judge a probe against the background's scan.
func NewSPNCollectorAfterScan(last *facts.DuplicateSPNs) Collector {
	scan := NewSPNScanner()
	scan.last = last
	return spnCollector{scan: scan}
}
