package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func init() {
	register("spn", PhaseDirectory, true, func() Collector { return spnCollector{scan: NewSPNScanner()} })
}

var (
	spnPresentDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "present"),
		"Whether some account in the forest holds the expected SPN (1) or none does (0: clients fall back to NTLM).",
		[]string{"target", "spn"})
	spnHoldersDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "holders"),
		"How many accounts in the forest hold the expected SPN: 0 missing, 1 as it should be, more is a duplicate.",
		[]string{"target", "spn"})
	spnOnExpectedAccountDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "on_expected_account"),
		"Whether the target's service account holds the expected SPN (1) or not (0: present on another account, authentication fails); absent when the account is unknown.",
		[]string{"target", "spn"})
	spnHolderInfoDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "holder_info"),
		"An account (DOMAIN\\sam) that holds an expected SPN; always 1.",
		[]string{"target", "spn", "account"})
	spnDuplicatesDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "duplicates"),
		"Number of SPNs held by more than one account in the forest-wide duplicate scan.",
		nil)
	spnDuplicateHoldersDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "duplicate_holders"),
		"Number of accounts holding a duplicated SPN; only the SPNs with the most holders, up to max_duplicate_spns.",
		[]string{"spn"})
	spnAccountsScannedDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "accounts_scanned"),
		"Number of accounts with SPNs read in the forest-wide duplicate scan.",
		nil)
	spnScanDurationDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "scan_duration_seconds"),
		"How long the last forest-wide duplicate SPN scan took (it runs every spn_scan_interval, apart from the collection cycle).",
		nil)
	spnScanLastSuccessDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "scan_last_success_timestamp_seconds"),
		"When the forest-wide duplicate SPN scan last ended without error, in seconds since the Unix epoch.",
		nil)
	spnScansDesc = newCounter(
		prometheus.BuildFQName(Namespace, "spn", "scans_total"),
		"Forest-wide duplicate SPN scans of a scope (forest or domain) completed, by mode: full (every account) or incremental (accounts changed since the last scan).",
		[]string{"mode"})
)

// spnCollector asks the Global Catalog who holds each expected SPN, and scans
// the forest for SPNs held by more than one account (the KDC then cannot
// tell which key to use, and Kerberos fails for that SPN).
type spnCollector struct {
	// scan runs the forest-wide duplicate scan on its own schedule once
	// the runner's Loop starts it; nil: Update scans with a scanner of its own.
	scan *SPNScanner
}

func (s spnCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	cfg := env.Config
	if len(cfg.Domains) == 0 {
		return nil
	}
	targets := expectedTargets(env, snap)

	// One forest-wide connection per configured domain, dialled concurrently,
	// so that a dead DC in one domain does not hold up the others.
	conns := make([]*directory.Conn, len(cfg.Domains))
	dialErrs := make([]error, len(cfg.Domains))
	var wg sync.WaitGroup
	for i := range cfg.Domains {
		wg.Go(func() {
			conns[i], dialErrs[i] = directory.DialGlobalCatalog(ctx, cfg.Domains[i], &cfg.Kerberos, env.Logger)
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	connFor := func(d *config.Domain) (*directory.Conn, error) {
		if d == nil {
			d = &cfg.Domains[0]
		}
		for i := range cfg.Domains {
			if &cfg.Domains[i] == d {
				return conns[i], dialErrs[i]
			}
		}
		return nil, fmt.Errorf("domain %s is not configured", d.Name)
	}

	var errs []error
	// The forest-wide duplicate scan runs on its own schedule (SPNScanner):
	// a cycle takes its last result, waiting only for the first one; a probe
	// asks about one instance and takes none.
	dup := &facts.DuplicateSPNs{}
	if !env.Probe {
		scanner := s.scan
		if scanner == nil {
			scanner = NewSPNScanner()
		}
		wg.Go(func() { dup = scanner.Latest(ctx, cfg, env.Logger) })
	}
	// Every expected SPN of a domain's targets, asked in batched searches,
	// domain by domain in configuration order.
	spnsByConn := map[*directory.Conn][]string{}
	for _, t := range targets {
		if conn, err := connFor(targetDomain(cfg, &t)); err == nil {
			spnsByConn[conn] = append(spnsByConn[conn], t.SPNs...)
		}
	}
	holdersByConn := map[*directory.Conn]map[string][]directory.Holder{}
	lookupErrs := map[*directory.Conn]error{}
	for _, conn := range conns {
		if spns := spnsByConn[conn]; conn != nil && len(spns) > 0 {
			holdersByConn[conn], lookupErrs[conn] = conn.FindHoldersOfSPNs(ctx, spns)
			if lookupErrs[conn] != nil {
				errs = append(errs, lookupErrs[conn]) // names the SPNs or the DC
			}
		}
	}

	var expected []facts.ExpectedSPN
	for _, t := range targets {
		home := targetDomain(cfg, &t)
		conn, connErr := connFor(home)
		account := t.Account
		if connErr == nil && t.SAM != "" && home != nil {
			// The directory's own spelling of DOMAIN, so that it compares with holders.
			if name, err := conn.AccountName(ctx, home.BaseDN, t.SAM); err == nil {
				account = name
			}
		}
		for _, s := range t.SPNs {
			e := facts.ExpectedSPN{Target: t.Name, SPN: s, ExpectedAccount: account}
			switch {
			case connErr != nil:
				e.LookupError = connErr.Error()
				errs = append(errs, connErr) // names the DC
			case lookupErrs[conn] != nil:
				e.LookupError = lookupErrs[conn].Error()
			default:
				for _, h := range holdersByConn[conn][s] {
					e.Holders = append(e.Holders, h.Name)
				}
				slices.Sort(e.Holders)
			}
			expected = append(expected, e)
		}
	}
	wg.Wait()
	snap.SPNs = expected
	snap.Duplicates = dup
	if dup.Error != "" {
		errs = append(errs, errors.New(dup.Error))
	}
	return errors.Join(dedupeErrors(errs)...)
}

// dedupeErrors keeps the first of errors with the same text: a dead DC fails
// every lookup with the same message.
func dedupeErrors(errs []error) []error {
	var out []error
	seen := map[string]bool{}
	for _, err := range errs {
		if msg := err.Error(); !seen[msg] {
			seen[msg] = true
			out = append(out, err)
		}
	}
	return out
}

func (spnCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for _, e := range snap.SPNs {
		if e.LookupError != "" {
			continue // unknown, not missing
		}
		spnPresentDesc.send(ch, boolFloat(len(e.Holders) > 0), e.Target, e.SPN)
		spnHoldersDesc.send(ch, float64(len(e.Holders)), e.Target, e.SPN)
		if e.ExpectedAccount != "" {
			onExpected := slices.ContainsFunc(e.Holders, func(h string) bool { return strings.EqualFold(h, e.ExpectedAccount) })
			spnOnExpectedAccountDesc.send(ch, boolFloat(onExpected), e.Target, e.SPN)
		}
		for _, h := range e.Holders {
			spnHolderInfoDesc.send(ch, 1, e.Target, e.SPN, h)
		}
	}
	if d := snap.Duplicates; d != nil && d.Scans != nil {
		spnScanDurationDesc.send(ch, d.ScanDuration.Seconds())
		if !d.LastSuccess.IsZero() {
			spnScanLastSuccessDesc.send(ch, float64(d.LastSuccess.UnixMilli())/1000)
		}
		for _, mode := range []string{scanFull, scanIncremental} {
			spnScansDesc.send(ch, float64(d.Scans[mode]), mode)
		}
	}
	if d := snap.Duplicates; d != nil && d.Scanned {
		spnDuplicatesDesc.send(ch, float64(d.Total))
		spnAccountsScannedDesc.send(ch, float64(d.AccountsScanned))
		for _, dup := range d.Top {
			spnDuplicateHoldersDesc.send(ch, float64(len(dup.Accounts)), dup.SPN)
		}
	}
}
