package collector

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func init() {
	register("dns", PhaseDiscover, true, func() Collector { return dnsCollector{} })
}

var (
	dnsForwardOKDesc = newGauge(
		prometheus.BuildFQName(Namespace, "dns", "forward_ok"),
		"Whether the host name resolves to at least one address (1) or not (0).",
		[]string{"host"})
	dnsAddressesDesc = newGauge(
		prometheus.BuildFQName(Namespace, "dns", "addresses"),
		"Number of addresses the host name resolves to.",
		[]string{"host"})
	dnsReverseOKDesc = newGauge(
		prometheus.BuildFQName(Namespace, "dns", "reverse_ok"),
		"Whether every address of the host has PTR records naming only the host (1) or not (0); absent when the name does not resolve.",
		[]string{"host"})
	dnsCNAMEDesc = newGauge(
		prometheus.BuildFQName(Namespace, "dns", "cname"),
		"Whether the host name is an alias (CNAME) of another name (1) or has its own address records (0): Windows clients ask for the SPN of the canonical name; absent when unknown.",
		[]string{"host"})
	dnsCanonicalNameInfoDesc = newGauge(
		prometheus.BuildFQName(Namespace, "dns", "canonical_name_info"),
		"The name the host name resolves to after following CNAME records (the host itself for an A record); always 1, absent when unknown.",
		[]string{"host", "canonical_name"})
)

// dnsCollector looks up every SQL host, AG listener and service host
// forwards and backwards: clients that canonicalise names build the SPN
// from the PTR answer.
type dnsCollector struct{}

func (dnsCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	hosts := dnsHosts(env.Config)
	if len(hosts) == 0 {
		return nil
	}
	lookups, done := lookupsFor(env)
	defer done()
	snap.DNS = lookups.Hosts(ctx, hosts)
	return skippedHosts(snap.DNS)
}

// skippedHosts is the Incomplete error for the hosts not checked, nil when
// every host was.
func skippedHosts(hosts []facts.HostDNS) error {
	inc := &Incomplete{Total: len(hosts), Items: "hosts"}
	for _, h := range hosts {
		if h.Skipped != "" {
			inc.Skipped++
			inc.Reason = h.Skipped
		}
	}
	if inc.Skipped == 0 {
		return nil
	}
	return inc
}

// dnsHosts lists the configured host names to check, each once
// (case-insensitively), in configuration order.
func dnsHosts(cfg *config.Config) []string {
	var hosts []string
	seen := map[string]bool{}
	add := func(h string) {
		key := strings.ToLower(strings.TrimSuffix(h, "."))
		if key == "" || seen[key] {
			return
		}
		seen[key] = true
		hosts = append(hosts, h)
	}
	for _, inst := range cfg.SQLInstances {
		add(inst.Host)
		add(inst.AGListener)
	}
	for _, svc := range cfg.Services {
		for _, h := range svc.Hosts {
			add(h)
		}
	}
	return hosts
}

func (dnsCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for _, h := range snap.DNS {
		if h.Skipped != "" {
			continue // unknown this cycle
		}
		resolved := len(h.Addresses) > 0
		dnsForwardOKDesc.send(ch, boolFloat(resolved), h.Host)
		dnsAddressesDesc.send(ch, float64(len(h.Addresses)), h.Host)
		if resolved {
			dnsReverseOKDesc.send(ch, boolFloat(h.ReverseMatches), h.Host)
		}
		if alias, known := h.IsCNAME(); known {
			dnsCNAMEDesc.send(ch, boolFloat(alias), h.Host)
			dnsCanonicalNameInfoDesc.send(ch, 1, h.Host, h.CanonicalName)
		}
	}
}
