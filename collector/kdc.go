package collector

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/kdc"
)

func init() {
	register("kdc", PhaseDirectory, true, func() Collector { return kdcCollector{} })
}

var (
	kdcTicketSuccessDesc = newGauge(
		prometheus.BuildFQName(Namespace, "kdc", "ticket_success"),
		"Whether the KDC issued a service ticket for the SPN to the exporter's own principal (1) or not (0).",
		[]string{"target", "spn"})
	kdcTicketErrorCodeDesc = newGauge(
		prometheus.BuildFQName(Namespace, "kdc", "ticket_error_code"),
		"KRB-ERROR code the KDC answered to the service-ticket request (7 principal unknown, 37 clock skew, ...), 0 on success; absent when the request failed without a KRB-ERROR (network, timeout).",
		[]string{"target", "spn"})
	kdcTicketETypeDesc = newGauge(
		prometheus.BuildFQName(Namespace, "kdc", "ticket_etype"),
		"Encryption type of the service ticket the KDC issued for the SPN (chosen from the service account's keys; rc4-hmac is Kerberoastable and refused once DCs enforce AES); always 1, absent when no ticket was issued.",
		[]string{"target", "spn", "etype"})
	kdcSessionKeyETypeDesc = newGauge(
		prometheus.BuildFQName(Namespace, "kdc", "session_key_etype"),
		"Encryption type of the session key the KDC chose for the SPN's ticket from the types the exporter offered; always 1, absent when no ticket was issued.",
		[]string{"target", "spn", "etype"})
)

// kdcCollector asks the KDC, as a client would, for a service ticket for
// every expected SPN (for a host that is a DNS alias, the canonical host's
// SPN, which is what Windows clients ask for): the proof that the SPN exists once, on an account the
// KDC can issue tickets for, and that the clocks agree.
type kdcCollector struct{}

func (kdcCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	k := &env.Config.Kerberos
	if k.Principal == "" || (k.Probe != nil && !*k.Probe) {
		return nil
	}
	lookups, done := lookupsFor(env)
	defer done()
	type probeKey struct{ target, spn string }
	var todo []probeKey
	seen := map[probeKey]bool{}
	var spns []string
	index := map[string]int{} // SPN → its place in spns: each is asked once
	targets := expectedTargets(env, snap)
	hosts := canonicalNames(ctx, lookups, targets, snap.DNS)
	for _, t := range targets {
		for _, s := range t.SPNs {
			// A client asks for the canonical host's SPN when the host is a
			// DNS alias: so does the probe.
			if requested, _, ok := RequestedSPN(s, hosts); ok {
				s = requested
			}
			key := probeKey{t.Name, s}
			if seen[key] {
				continue
			}
			seen[key] = true
			todo = append(todo, key)
			if _, ok := index[s]; !ok {
				index[s] = len(spns)
				spns = append(spns, s)
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	// The cycle's session: one login per worker, and no service ticket
	// kept from the last cycle, so a removed SPN fails once its cached
	// outcome expires (global.kdc_ticket_cache_ttl).
	results, err := lookups.Tickets(ctx, spns)
	if err != nil {
		return err
	}
	tickets := make([]facts.TicketProbe, 0, len(todo))
	inc := &Incomplete{Total: len(spns), Items: "SPNs"}
	for _, p := range todo {
		tickets = append(tickets, ticketProbe(p.target, results[index[p.spn]]))
	}
	for _, r := range results {
		if r.Skipped != "" {
			inc.Skipped++
			inc.Reason = r.Skipped
		}
	}
	snap.Tickets = tickets
	if inc.Skipped > 0 {
		return inc
	}
	return nil
}

func ticketProbe(target string, r kdc.Result) facts.TicketProbe {
	p := facts.TicketProbe{
		Target:    target,
		SPN:       r.SPN,
		Realm:     r.Realm,
		OK:        r.OK,
		ErrorCode: r.ErrorCode,
		ErrorName: r.ErrorName,

		TicketEType:     r.TicketEType,
		SessionKeyEType: r.SessionKeyEType,
		Skipped:         r.Skipped,
	}
	if r.Err != nil {
		p.Error = r.Err.Error()
	}
	return p
}

func (kdcCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for _, p := range snap.Tickets {
		if p.Skipped != "" {
			continue // unknown this cycle
		}
		kdcTicketSuccessDesc.send(ch, boolFloat(p.OK), p.Target, p.SPN)
		if p.OK || p.ErrorCode != 0 {
			kdcTicketErrorCodeDesc.send(ch, float64(p.ErrorCode), p.Target, p.SPN)
		}
		if p.OK && p.TicketEType != "" {
			kdcTicketETypeDesc.send(ch, 1, p.Target, p.SPN, p.TicketEType)
		}
		if p.OK && p.SessionKeyEType != "" {
			kdcSessionKeyETypeDesc.send(ch, 1, p.Target, p.SPN, p.SessionKeyEType)
		}
	}
}
