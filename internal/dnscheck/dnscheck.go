// Package dnscheck looks a host name up forwards and backwards, the way a
// Kerberos client that canonicalises names would see it: a PTR record that
// names another host makes such a client ask for a ticket to the wrong SPN.
package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// Resolver asks the configured DNS servers, in order, or the system resolver
// when none are configured.
type Resolver struct {
	// upstreams holds one resolver per configured server, in order; a
	// single system resolver when none are configured.
	upstreams []upstream
	// timeout bounds one query to one server.
	timeout time.Duration
}

type upstream struct {
	server string // host:port, "" for the system resolver
	r      *net.Resolver
}

// New makes a resolver for servers (host:port each; empty means the system
// resolver). timeout bounds each query to each server.
//
// Fallback happens per query rather than inside the Dial func: a UDP "dial"
// to a dead server succeeds, and the failure only shows when the answer
// does not come, so the next server is asked when the query to the previous
// one failed for any reason other than an authoritative "no such name".
func New(servers []string, timeout time.Duration) *Resolver {
	if len(servers) == 0 {
		return &Resolver{upstreams: []upstream{{r: &net.Resolver{PreferGo: true}}}, timeout: timeout}
	}
	res := &Resolver{timeout: timeout}
	for _, s := range servers {
		res.upstreams = append(res.upstreams, upstream{server: s, r: &net.Resolver{PreferGo: true, Dial: dialTo(s)}})
	}
	return res
}

// dialTo sends every query of a resolver to server, whatever name server
// the system configuration names.
func dialTo(server string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}
}

// ErrNotFound marks a lookup a DNS server answered with "no such name":
// unlike a timeout, it says the name does not exist.
var ErrNotFound = errors.New("the name does not exist")

// Check looks host up forwards (A and AAAA) and every address it resolves
// to backwards (PTR). A lookup that ctx's end cut short makes the whole
// result Skipped: the answer that did not come says nothing about the
// name, unlike a query that timed out on its own (dns.timeout).
func (r *Resolver) Check(ctx context.Context, host string) facts.HostDNS {
	out := facts.HostDNS{Host: host}
	skipped := func() facts.HostDNS { return facts.HostDNS{Host: host, Skipped: facts.SkipReason(ctx.Err())} }
	if Cut(ctx) {
		return skipped()
	}
	addrs, err := r.lookupIP(ctx, host)
	if err != nil {
		if Cut(ctx) {
			return skipped()
		}
		out.ForwardError = err.Error()
		out.NotFound = errors.Is(err, ErrNotFound)
		return out
	}
	out.Addresses = addrs
	// A Windows client asks for a ticket for the name the alias resolves
	// to, not the alias: the SPN must be registered for that name.
	if canonical, err := r.lookupCNAME(ctx, host); err != nil {
		if Cut(ctx) {
			return skipped()
		}
		out.CNAMEError = err.Error()
	} else {
		out.CanonicalName = canonical
	}
	out.PTR = map[string][]string{}
	var reverseErrs []string
	for _, a := range addrs {
		names, err := r.lookupAddr(ctx, a)
		if err != nil {
			if Cut(ctx) {
				return skipped()
			}
			reverseErrs = append(reverseErrs, err.Error())
			continue
		}
		out.PTR[a] = names
	}
	out.ReverseError = strings.Join(reverseErrs, "; ")
	// An alias's addresses are its canonical host's: their PTR records
	// rightly name that host.
	out.ReverseMatches = ReverseMatches(out.NameBehind(), addrs, out.PTR)
	return out
}

// Cut says whether ctx has ended or its deadline has passed. A lookup's
// socket deadline is the context's and can trip a moment before the
// context's own timer: a query that failed then was cut, not timed out.
func Cut(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// CanonicalName is the name host resolves to after following CNAME
// records (host itself for an A record).
func (r *Resolver) CanonicalName(ctx context.Context, host string) (string, error) {
	return r.lookupCNAME(ctx, host)
}

// ReverseMatches says whether every address has PTR records and all of
// them name host. An address whose PTR also names another host counts as a
// mismatch: a canonicalising client may pick either name.
func ReverseMatches(host string, addrs []string, ptr map[string][]string) bool {
	if len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		names := ptr[a]
		if len(names) == 0 {
			return false
		}
		for _, n := range names {
			if !SameName(host, n) {
				return false
			}
		}
	}
	return true
}

// SameName compares DNS names case-insensitively, ignoring a trailing dot.
func SameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

func (r *Resolver) lookupIP(ctx context.Context, host string) ([]string, error) {
	// A rooted name keeps the resolver's search list out of it: a missing
	// host must not resolve through some search domain's wildcard.
	rooted := strings.TrimSuffix(host, ".") + "."
	var ips []net.IP
	err := r.each(ctx, func(ctx context.Context, res *net.Resolver) error {
		var err error
		ips, err = res.LookupIP(ctx, "ip", rooted)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("forward lookup of %s: %w", host, err)
	}
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, ip.String())
	}
	sort.Strings(addrs)
	return addrs, nil
}

// lookupCNAME follows the host's CNAME records to the canonical name
// (without trailing dot); a name with an A record is its own canonical name.
func (r *Resolver) lookupCNAME(ctx context.Context, host string) (string, error) {
	rooted := strings.TrimSuffix(host, ".") + "."
	var name string
	err := r.each(ctx, func(ctx context.Context, res *net.Resolver) error {
		var err error
		name, err = res.LookupCNAME(ctx, rooted)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("canonical name of %s: %w", host, err)
	}
	return strings.TrimSuffix(name, "."), nil
}

func (r *Resolver) lookupAddr(ctx context.Context, addr string) ([]string, error) {
	var names []string
	err := r.each(ctx, func(ctx context.Context, res *net.Resolver) error {
		var err error
		names, err = res.LookupAddr(ctx, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reverse lookup of %s: %w", addr, err)
	}
	sort.Strings(names)
	return names, nil
}

// each runs query against the servers in order until one answers, or says
// authoritatively that the name does not exist. The error names every
// server that failed.
func (r *Resolver) each(ctx context.Context, query func(context.Context, *net.Resolver) error) error {
	var failures []string
	for _, u := range r.upstreams {
		qctx, cancel := context.WithTimeout(ctx, r.timeout)
		err := query(qctx, u.r)
		cancel()
		if err == nil {
			return nil
		}
		failures = append(failures, describe(u.server, err))
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return fmt.Errorf("%s: %w", strings.Join(failures, "; "), ErrNotFound)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.New(strings.Join(failures, "; "))
}

// describe names the server that failed: the resolver's own message names
// the system's name server even when the Dial func sent the query elsewhere.
func describe(server string, err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		msg := dnsErr.Err
		if dnsErr.IsTimeout {
			msg = "timed out"
		}
		if server == "" {
			server = "system resolver"
		}
		return server + ": " + msg
	}
	if server == "" {
		return err.Error()
	}
	return server + ": " + err.Error()
}
