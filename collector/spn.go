package collector

import (
	"cmp"
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
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

func init() {
	register("spn", PhaseDirectory, true, func() Collector { return spnCollector{} })
}

var (
	spnPresentDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "spn", "present"),
		"Whether some account in the forest holds the expected SPN (1) or none does (0: clients fall back to NTLM).",
		[]string{"target", "spn"}, nil)
	spnHoldersDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "spn", "holders"),
		"How many accounts in the forest hold the expected SPN: 0 missing, 1 as it should be, more is a duplicate.",
		[]string{"target", "spn"}, nil)
	spnOnExpectedAccountDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "spn", "on_expected_account"),
		"Whether the target's service account holds the expected SPN (1) or not (0: present on another account, authentication fails); absent when the account is unknown.",
		[]string{"target", "spn"}, nil)
	spnHolderInfoDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "spn", "holder_info"),
		"An account (DOMAIN\\sam) that holds an expected SPN; always 1.",
		[]string{"target", "spn", "account"}, nil)
	spnDuplicatesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "spn", "duplicates"),
		"Number of SPNs held by more than one account in the forest-wide duplicate scan.",
		nil, nil)
	spnDuplicateHoldersDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "spn", "duplicate_holders"),
		"Number of accounts holding a duplicated SPN; only the SPNs with the most holders, up to max_duplicate_spns.",
		[]string{"spn"}, nil)
	spnAccountsScannedDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "spn", "accounts_scanned"),
		"Number of accounts with SPNs read in the forest-wide duplicate scan.",
		nil, nil)
)

// spnCollector asks the Global Catalog who holds each expected SPN, and scans
// the forest for SPNs held by more than one account (the KDC then cannot
// tell which key to use, and Kerberos fails for that SPN).
type spnCollector struct{}

func (spnCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	cfg := env.Config
	if len(cfg.Domains) == 0 {
		return nil
	}
	targets := Targets(cfg, snap)

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
	// A probe asks about one instance: the forest-wide duplicate scan is the
	// background loop's job, not every /probe request's.
	dup := &facts.DuplicateSPNs{}
	if !env.Probe {
		wg.Go(func() { dup = scanDuplicates(ctx, cfg, conns, dialErrs) })
	}
	// Every expected SPN of a domain's targets, asked in batched searches,
	// domain by domain in configuration order.
	spnsByConn := map[*directory.Conn][]string{}
	for _, t := range targets {
		if conn, err := connFor(t.Domain); err == nil {
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
		conn, connErr := connFor(t.Domain)
		account := t.Account
		if connErr == nil && t.SAM != "" && t.Domain != nil {
			// The directory's own spelling of DOMAIN, so that it compares with holders.
			if name, err := conn.AccountName(ctx, t.Domain.BaseDN, t.SAM); err == nil {
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

// scanDuplicates streams every account with SPNs once per forest (or per
// domain, where no Global Catalog is configured) and counts SPNs held by more
// than one account.
func scanDuplicates(ctx context.Context, cfg *config.Config, conns []*directory.Conn, dialErrs []error) *facts.DuplicateSPNs {
	counter := newDuplicateCounter()
	scanned := map[string]bool{}
	var errs []string
	limit := 0
	for i, c := range conns {
		limit = max(limit, cfg.Domains[i].MaxDuplicateSPNs)
		if c == nil {
			errs = append(errs, dialErrs[i].Error())
			continue
		}
		scope, err := c.ScanScope(ctx)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if scanned[scope] {
			continue
		}
		scanned[scope] = true
		if err := c.ForEachSPNHolder(ctx, func(h directory.Holder, spns []string) error {
			counter.add(h.Name, spns)
			return nil
		}); err != nil {
			errs = append(errs, fmt.Sprintf("duplicate SPN scan of %s: %v", scope, err))
		}
	}
	if limit == 0 {
		limit = config.DefaultMaxDuplicateSPNs
	}
	res := counter.result(limit)
	res.Scanned = len(errs) == 0
	res.Error = strings.Join(errs, "; ")
	return &res
}

// duplicateCounter counts SPNs held by more than one account in a stream of
// accounts, in memory that grows with the number of distinct SPNs (one map
// entry each) and accounts (one name each), never with the directory's full
// entries: only duplicated SPNs keep their list of holders. A duplicate is
// spelled as the account that made it one spells it (AD ignores case).
type duplicateCounter struct {
	first    map[string]int32 // SPN key -> index in holders of its first holder
	holders  []string
	dups     map[string]*facts.DuplicateSPN
	accounts int
}

func newDuplicateCounter() *duplicateCounter {
	return &duplicateCounter{first: map[string]int32{}, dups: map[string]*facts.DuplicateSPN{}}
}

// add records one account and its SPNs. An account listing the same SPN
// twice (in different case) holds it once.
func (d *duplicateCounter) add(holder string, spns []string) {
	d.accounts++
	idx := int32(len(d.holders))
	d.holders = append(d.holders, holder)
	for _, s := range spns {
		key := spn.Key(s)
		firstIdx, seen := d.first[key]
		switch {
		case !seen:
			d.first[key] = idx
		case firstIdx == idx:
		default:
			dup := d.dups[key]
			if dup == nil {
				dup = &facts.DuplicateSPN{SPN: s, Accounts: []string{d.holders[firstIdx]}}
				d.dups[key] = dup
			}
			if !slices.Contains(dup.Accounts, holder) {
				dup.Accounts = append(dup.Accounts, holder)
			}
		}
	}
}

// result returns the count and the limit duplicates with the most holders
// (ties by SPN), each with its holders sorted.
func (d *duplicateCounter) result(limit int) facts.DuplicateSPNs {
	res := facts.DuplicateSPNs{Total: len(d.dups), AccountsScanned: d.accounts}
	top := make([]facts.DuplicateSPN, 0, len(d.dups))
	for _, dup := range d.dups {
		accounts := slices.Clone(dup.Accounts)
		slices.Sort(accounts)
		top = append(top, facts.DuplicateSPN{SPN: dup.SPN, Accounts: accounts})
	}
	slices.SortFunc(top, func(a, b facts.DuplicateSPN) int {
		if c := cmp.Compare(len(b.Accounts), len(a.Accounts)); c != 0 {
			return c
		}
		return cmp.Compare(spn.Key(a.SPN), spn.Key(b.SPN))
	})
	if limit >= 0 && len(top) > limit {
		top = top[:limit]
	}
	res.Top = top
	return res
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
		ch <- prometheus.MustNewConstMetric(spnPresentDesc, prometheus.GaugeValue, boolFloat(len(e.Holders) > 0), e.Target, e.SPN)
		ch <- prometheus.MustNewConstMetric(spnHoldersDesc, prometheus.GaugeValue, float64(len(e.Holders)), e.Target, e.SPN)
		if e.ExpectedAccount != "" {
			onExpected := slices.ContainsFunc(e.Holders, func(h string) bool { return strings.EqualFold(h, e.ExpectedAccount) })
			ch <- prometheus.MustNewConstMetric(spnOnExpectedAccountDesc, prometheus.GaugeValue, boolFloat(onExpected), e.Target, e.SPN)
		}
		for _, h := range e.Holders {
			ch <- prometheus.MustNewConstMetric(spnHolderInfoDesc, prometheus.GaugeValue, 1, e.Target, e.SPN, h)
		}
	}
	if d := snap.Duplicates; d != nil && d.Scanned {
		ch <- prometheus.MustNewConstMetric(spnDuplicatesDesc, prometheus.GaugeValue, float64(d.Total))
		ch <- prometheus.MustNewConstMetric(spnAccountsScannedDesc, prometheus.GaugeValue, float64(d.AccountsScanned))
		for _, dup := range d.Top {
			ch <- prometheus.MustNewConstMetric(spnDuplicateHoldersDesc, prometheus.GaugeValue, float64(len(dup.Accounts)), dup.SPN)
		}
	}
}
