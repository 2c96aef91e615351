package collector

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/dnscheck"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/kdc"
	"github.com/kerberos-exporter/kerberos_exporter/internal/lookupcache"
)

// Caches keep DNS answers and ticket-request outcomes across cycles
// (global.dns_cache_ttl, global.kdc_ticket_cache_ttl): a fleet of a
// thousand instances would otherwise ask the DNS servers and the DCs the
// same thousands of questions every cycle. The runner holds one.
type Caches struct {
	dns     *lookupcache.Cache[facts.HostDNS]
	tickets *lookupcache.Cache[kdc.Result]
}

// NewCaches makes empty caches.
func NewCaches() *Caches { return NewCachesWithClock(time.Now) }

// NewCachesWithClock makes empty caches that tell the time with now (for
// benchmarks that step through cycles faster than real time).
func NewCachesWithClock(now func() time.Time) *Caches {
	return &Caches{dns: lookupcache.NewWithClock[facts.HostDNS](now), tickets: lookupcache.NewWithClock[kdc.Result](now)}
}

// Sweep drops the answers past their time to live, so that the caches
// hold only what the last time to live looked up.
func (c *Caches) Sweep() {
	c.dns.Sweep()
	c.tickets.Sweep()
}

// Len is the number of answers held (DNS hosts plus SPNs).
func (c *Caches) Len() int { return c.dns.Len() + c.tickets.Len() }

// Lookups are one cycle's DNS checks and ticket requests, shared by its
// collector runs: each host and each SPN is asked at most once per cycle
// (the dns collector and the kdc and cname collectors' canonical names
// share the host checks), with at most global.dns_concurrency host checks
// and global.kdc_concurrency ticket requests in flight, and answers come
// from the caches while fresh. Close it when the cycle ends.
type Lookups struct {
	resolver *dnscheck.Resolver
	dnsKey   string // the servers asked: part of every host's key
	dns      *lookupcache.Scope[facts.HostDNS]
	dnsSlots chan struct{}

	kerberos   config.Kerberos
	ticketKey  string // identityKey: part of every SPN's key
	tickets    *lookupcache.Scope[kdc.Result]
	kdcWorkers int

	sessionMu  sync.Mutex
	session    *kdc.Session
	sessionErr error
}

// Cycle starts one cycle's lookups with cfg's servers, identity, bounds and
// times to live.
func (c *Caches) Cycle(cfg *config.Config) *Lookups {
	g := cfg.Global
	ttl := func(d *config.Duration) lookupcache.TTL {
		if d == nil {
			return lookupcache.TTL{}
		}
		return lookupcache.TTL{OK: d.Duration(), Failed: config.FailedTTL(d.Duration())}
	}
	k := cfg.Kerberos
	return &Lookups{
		resolver:   dnscheck.New(cfg.DNS.Servers, cfg.DNS.Timeout.Duration()),
		dnsKey:     strings.Join(cfg.DNS.Servers, ",") + "|" + cfg.DNS.Timeout.String(),
		dns:        c.dns.Scope(ttl(g.DNSCacheTTL)),
		dnsSlots:   make(chan struct{}, max(1, g.DNSConcurrency)),
		kerberos:   k,
		ticketKey:  identityKey(&k),
		tickets:    c.tickets.Scope(ttl(g.KDCTicketCacheTTL)),
		kdcWorkers: max(1, g.KDCConcurrency),
	}
}

// identityKey names the exporter's Kerberos identity as the KDC sees it:
// the principal and realm, the krb5 configuration, the offered types and
// where the credential comes from (keytab, credential cache or password).
// A reload that switches to another credential, e.g. one that no longer
// works, must not be answered with the old one's tickets. The password
// enters only as a salted hash, so that a changed password is a new
// identity without the key holding anything that reveals it.
func identityKey(k *config.Kerberos) string {
	password := ""
	if k.Password != nil {
		h := sha256.New()
		h.Write(passwordSalt[:])
		h.Write([]byte(k.Password.Value()))
		password = k.Password.File + "|" + k.Password.Env + "|" + hex.EncodeToString(h.Sum(nil)[:16])
	}
	return strings.Join([]string{
		k.Principal, k.Realm, k.Krb5Config, strings.Join(k.Offered(), ","),
		"keytab=" + k.KeytabFile, "ccache=" + k.CCacheFile, "password=" + password,
	}, "|")
}

// passwordSalt is drawn once per process: identityKey's hashes compare
// within the process and mean nothing outside it.
var passwordSalt = func() (salt [16]byte) {
	_, _ = rand.Read(salt[:])
	return salt
}()

// lookupsFor is the cycle's lookups, or, for a collector run outside a
// cycle (tests, `check` of one collector), lookups of its own without a
// cache, with the function that closes them.
func lookupsFor(env *Env) (*Lookups, func()) {
	if env.Lookups != nil {
		return env.Lookups, func() {}
	}
	cfg := *env.Config
	cfg.Global.DNSCacheTTL, cfg.Global.KDCTicketCacheTTL = nil, nil
	l := NewCaches().Cycle(&cfg)
	return l, l.Close
}

// Close ends the cycle's Kerberos session, if one was opened.
func (l *Lookups) Close() {
	l.sessionMu.Lock()
	defer l.sessionMu.Unlock()
	if l.session != nil {
		l.session.Close()
	}
}

// Stats count the cycle's DNS host checks and ticket requests by where
// their answers came from.
func (l *Lookups) Stats() (dns, tickets lookupcache.Stats) {
	return l.dns.Stats(), l.tickets.Stats()
}

// Host checks host forwards and backwards (dnscheck.Resolver.Check), once
// per cycle and name (case-insensitively). A host the cycle ran out of time
// for is Skipped.
func (l *Lookups) Host(ctx context.Context, host string) facts.HostDNS {
	key := l.dnsKey + "|" + hostKey(host)
	h, outcome := l.dns.Get(ctx, key, func(ctx context.Context) (facts.HostDNS, lookupcache.Outcome) {
		select {
		case l.dnsSlots <- struct{}{}:
			defer func() { <-l.dnsSlots }()
		case <-ctx.Done():
			return facts.HostDNS{Skipped: facts.SkipReason(ctx.Err())}, lookupcache.Skipped
		}
		h := l.resolver.Check(ctx, host)
		switch {
		case h.Skipped != "":
			return h, lookupcache.Skipped
		case h.ForwardError != "" || h.ReverseError != "" || h.CNAMEError != "":
			return h, lookupcache.Failure
		}
		return h, lookupcache.Success
	})
	if outcome == lookupcache.Skipped && h.Skipped == "" {
		h = facts.HostDNS{Skipped: facts.SkipReason(ctx.Err())}
	}
	h.Host = host // as this caller spells it
	return h
}

// Hosts checks every host, concurrently within the cycle's bound, in order.
func (l *Lookups) Hosts(ctx context.Context, hosts []string) []facts.HostDNS {
	out := make([]facts.HostDNS, len(hosts))
	var wg sync.WaitGroup
	for i, host := range hosts {
		wg.Go(func() { out[i] = l.Host(ctx, host) })
	}
	wg.Wait()
	return out
}

// Tickets asks the KDC for a service ticket for every SPN, once per cycle
// and SPN, at most global.kdc_concurrency at a time (the session's
// workers), in order. A request
// the cycle ran out of time for is Skipped. err is set when the session
// could not be opened (the kerberos section's identity is unusable): then
// every request is Skipped.
func (l *Lookups) Tickets(ctx context.Context, spns []string) (results []kdc.Result, err error) {
	results = make([]kdc.Result, len(spns))
	var wg sync.WaitGroup
	for i, s := range spns {
		wg.Go(func() {
			r, outcome := l.tickets.Get(ctx, l.ticketKey+"|"+s, func(ctx context.Context) (kdc.Result, lookupcache.Outcome) {
				// The session's workers bound the requests in flight.
				session, err := l.openSession()
				if err != nil {
					return kdc.Result{Err: err, Skipped: "no session"}, lookupcache.Skipped
				}
				r := session.Probe(ctx, s)
				switch {
				case r.Skipped != "":
					return r, lookupcache.Skipped
				case !r.OK:
					return r, lookupcache.Failure
				}
				return r, lookupcache.Success
			})
			if outcome == lookupcache.Skipped && r.Skipped == "" {
				r = kdc.Result{Skipped: facts.SkipReason(ctx.Err())}
			}
			r.SPN = s
			results[i] = r
		})
	}
	wg.Wait()
	l.sessionMu.Lock()
	err = l.sessionErr
	l.sessionMu.Unlock()
	return results, err
}

// openSession opens the cycle's Kerberos session at its first ticket
// request that the cache cannot answer: a cycle answered from the cache
// does not log in at all.
func (l *Lookups) openSession() (*kdc.Session, error) {
	l.sessionMu.Lock()
	defer l.sessionMu.Unlock()
	if l.session == nil && l.sessionErr == nil {
		l.session, l.sessionErr = kdc.Open(&l.kerberos, l.kdcWorkers)
	}
	return l.session, l.sessionErr
}
