package collector

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
	"github.com/kerberos-exporter/kerberos_exporter/internal/dnscheck"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

func init() {
	register("cname", PhaseDirectory, true, func() Collector { return cnameCollector{} })
}

var (
	spnRequestedHoldersDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "requested_holders"),
		"For an expected SPN whose host is a DNS alias (CNAME): how many accounts in the forest hold the SPN a Windows client really asks for, built from the canonical host (0: no ticket, NTLM fallback).",
		[]string{"target", "spn", "requested_spn"})
	spnRequestedOnExpectedAccountDesc = newGauge(
		prometheus.BuildFQName(Namespace, "spn", "requested_on_expected_account"),
		"For an expected SPN whose host is a DNS alias (CNAME): whether the target's service account holds the SPN of the canonical host that Windows clients ask for (1) or not (0); absent when the account is unknown.",
		[]string{"target", "spn", "requested_spn"})
)

// cnameCollector evaluates, for every expected SPN whose host the dns
// collector found to be an alias, the SPN a Windows client really asks for:
// it resolves the alias and builds the SPN from the canonical name (MIT
// clients do the same unless dns_canonicalize_hostname = false). Who holds
// that SPN decides whether the client gets a ticket the service can read.
type cnameCollector struct{}

// RequestedSPN is the SPN a client that follows CNAMEs asks for instead of
// expected: its host replaced by the canonical name. ok is false when the
// host is not a known alias (an A record, a short name, or unknown).
func RequestedSPN(expected string, hosts []facts.HostDNS) (requested string, host facts.HostDNS, ok bool) {
	parsed, err := spn.Parse(expected)
	if err != nil || !strings.Contains(parsed.Host, ".") {
		return "", facts.HostDNS{}, false
	}
	for _, h := range hosts {
		if !dnscheck.SameName(h.Host, parsed.Host) {
			continue
		}
		if alias, known := h.IsCNAME(); alias && known {
			parsed.Host = h.CanonicalName
			return parsed.String(), h, true
		}
		return "", facts.HostDNS{}, false
	}
	return "", facts.HostDNS{}, false
}

func (cnameCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	cfg := env.Config
	if len(cfg.Domains) == 0 {
		return nil
	}
	targets := expectedTargets(env, snap)
	lookups, done := lookupsFor(env)
	defer done()
	hosts := canonicalNames(ctx, lookups, targets, snap.DNS)
	type pending struct {
		fact   facts.CanonicalSPN
		domain *config.Domain
		sam    string
	}
	var todo []pending
	for _, t := range targets {
		for _, s := range t.SPNs {
			requested, h, ok := RequestedSPN(s, hosts)
			if !ok {
				continue
			}
			todo = append(todo, pending{
				fact: facts.CanonicalSPN{Target: t.Name, SPN: s, Alias: h.Host, CanonicalHost: h.CanonicalName,
					Requested: requested, ExpectedAccount: t.Account},
				domain: targetDomain(cfg, &t), sam: t.SAM,
			})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	// One forest-wide search for every requested SPN, on the first domain's
	// Global Catalog; account names are spelled afterwards, never inside
	// the search.
	conn, err := directory.DialGlobalCatalog(ctx, cfg.Domains[0], &cfg.Kerberos, env.Logger)
	var holders map[string][]directory.Holder
	if err == nil {
		defer conn.Close()
		var spns []string
		for _, p := range todo {
			spns = append(spns, p.fact.Requested)
		}
		holders, err = conn.FindHoldersOfSPNs(ctx, spns)
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	out := make([]facts.CanonicalSPN, 0, len(todo))
	for _, p := range todo {
		f := p.fact
		if err != nil {
			f.LookupError = err.Error()
		} else {
			if p.sam != "" && p.domain != nil {
				if name, nerr := conn.AccountName(ctx, p.domain.BaseDN, p.sam); nerr == nil {
					f.ExpectedAccount = name
				}
			}
			for _, h := range holders[f.Requested] {
				f.Holders = append(f.Holders, h.Name)
			}
			slices.Sort(f.Holders)
		}
		out = append(out, f)
	}
	snap.CanonicalSPNs = out
	return errors.Join(errs...)
}

// canonicalNames are the DNS facts of the targets' SPN hosts: the dns
// collector's where the snapshot has them, else the cycle's check of the
// host (in a cycle the dns collector runs fleet-wide, alongside this one,
// so its facts are not in this run's snapshot; the check is shared with
// it). A host not checked in time, or whose canonical name could not be
// learnt, leaves the canonical name unknown, so no SPN is judged for it.
func canonicalNames(ctx context.Context, lookups *Lookups, targets []Target, known []facts.HostDNS) []facts.HostDNS {
	hosts := slices.Clone(known)
	seen := map[string]bool{}
	for _, h := range known {
		seen[hostKey(h.Host)] = true
	}
	var missing []string
	for _, t := range targets {
		for _, s := range t.SPNs {
			parsed, err := spn.Parse(s)
			if err != nil || !strings.Contains(parsed.Host, ".") || seen[hostKey(parsed.Host)] {
				continue
			}
			seen[hostKey(parsed.Host)] = true
			missing = append(missing, parsed.Host)
		}
	}
	return append(hosts, lookups.Hosts(ctx, missing)...)
}

// hostKey is a DNS name compared case-insensitively, without trailing dot.
func hostKey(host string) string { return strings.ToLower(strings.TrimSuffix(host, ".")) }

func (cnameCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for _, c := range snap.CanonicalSPNs {
		if c.LookupError != "" {
			continue // unknown, not absent
		}
		spnRequestedHoldersDesc.send(ch, float64(len(c.Holders)), c.Target, c.SPN, c.Requested)
		if c.ExpectedAccount != "" {
			on := slices.ContainsFunc(c.Holders, func(h string) bool { return strings.EqualFold(h, c.ExpectedAccount) })
			spnRequestedOnExpectedAccountDesc.send(ch, boolFloat(on), c.Target, c.SPN, c.Requested)
		}
	}
}
