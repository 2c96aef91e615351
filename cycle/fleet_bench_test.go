package cycle

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/dnsstandin"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// kdcCounter relays Kerberos over TCP to a real KDC and counts the
// requests (AS and TGS exchanges) that pass: what a DC serves.
type kdcCounter struct {
	ln       net.Listener
	requests atomic.Int64
	wg       sync.WaitGroup
}

func startKDCCounter(tb testing.TB, kdc string) *kdcCounter {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &kdcCounter{ln: ln}
	c.wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			c.wg.Go(func() { c.relay(client, kdc) })
		}
	})
	tb.Cleanup(func() { ln.Close(); c.wg.Wait() })
	return c
}

// relay passes one connection's messages (each a 4-byte length and the
// message, RFC 4120 7.2.2) to the KDC and its answers back.
func (c *kdcCounter) relay(client net.Conn, kdc string) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", kdc, 5*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(client, server) }()
	var size [4]byte
	for {
		if _, err := io.ReadFull(client, size[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(client, msg); err != nil {
			return
		}
		c.requests.Add(1)
		if _, err := server.Write(append(size[:], msg...)); err != nil {
			return
		}
	}
}

// BenchmarkFleetCycle times collection cycles of the dns and kdc
// collectors for 1,000 instances (2,000 SPNs), and counts what they ask:
// DNS queries at a counting DNS stand-in (1 ms per answer: the fleet's
// names are not in the Samba world's zone) and KDC requests (AS and TGS)
// at the Samba world's real KDC, through a counting relay. The SPNs do not
// exist, so every TGS request gets KDC_ERR_S_PRINCIPAL_UNKNOWN: the same
// work for the KDC as a real one. cache=off looks everything up every cycle
// (each host and SPN once: dns_cache_ttl and kdc_ticket_cache_ttl 0s);
// cache=on is a cycle within the cache's time to live, after a first cycle
// that filled it; a cycle after expiry costs what cache=off does, so with
// the 5m default and a 60s interval a cycle costs on average a fifth of
// it. Figures, not assertions.
func BenchmarkFleetCycle(b *testing.B) {
	const n = 1000
	w := world.ForTest(b)
	dns, err := dnsstandin.Start("127.0.0.1:0", fleetZone, time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer dns.Close()
	for i := range n {
		dns.AddHost(fleetHost(i), dnsstandin.Address(i))
	}
	kdc := startKDCCounter(b, w.DC1+":88")
	id := fleetIdentity{realm: w.Realm, principal: w.MonitorUser + "@" + w.Realm, password: w.MonitorPassword,
		krb5Conf: krb5Conf(b, w.Realm, kdc.ln.Addr().String())}
	onlyCollectors(b, "dns", "kdc")
	for _, mode := range []struct{ name, ttl string }{{"cache=off", "0s"}, {"cache=on", "5m"}} {
		b.Run("instances=1000/"+mode.name, func(b *testing.B) {
			cfg := fleetConfig(b, n, dns, id, "  collector_timeout: 60s\n  dns_cache_ttl: "+mode.ttl+"\n  kdc_ticket_cache_ttl: "+mode.ttl+"\n")
			r := NewRunner(cfg, slog.New(slog.DiscardHandler))
			check := func(res *Result) {
				for _, name := range []string{"dns", "kdc"} {
					if st := res.Status[name]; !st.Success || st.Skipped > 0 {
						b.Fatalf("%s: %+v", name, st)
					}
				}
				if len(res.Snapshot.Tickets) != 2*n || res.Snapshot.Tickets[0].ErrorCode != 7 {
					b.Fatalf("%d tickets, first %+v: want %d answered with error 7", len(res.Snapshot.Tickets), res.Snapshot.Tickets[0], 2*n)
				}
			}
			check(r.RunOnce(context.Background())) // fills the cache (cache=on)
			dns0, kdc0 := dns.Queries(), kdc.requests.Load()
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				check(r.RunOnce(context.Background()))
				total += time.Since(start)
			}
			cycles := float64(b.N)
			b.ReportMetric(total.Seconds()/cycles, "cycle-s")
			b.ReportMetric(float64(dns.Queries()-dns0)/cycles, "dns-queries/cycle")
			b.ReportMetric(float64(kdc.requests.Load()-kdc0)/cycles, "kdc-requests/cycle")
		})
	}
}
