package cycle

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
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
// at the Samba world's real KDC, through a counting relay. The SPNs are
// registered for the run on an account of their own (fleetsvc), so that
// every request gets a ticket.
//
// cache=off looks everything up every cycle (each host and SPN once:
// dns_cache_ttl and kdc_ticket_cache_ttl 0s). cache=on is the defaults (5m)
// at the default 60 s interval: each iteration is five cycles with the
// caches' clock stepped 60 s before each, so that one of the five
// refreshes every answer and four are answered from the cache; the
// figures are per cycle, averaged over the five. Figures, not assertions.
func BenchmarkFleetCycle(b *testing.B) {
	const n = 1000
	w := world.ForTest(b)
	registerFleetSPNs(b, w, n)
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
	const interval = time.Minute
	for _, mode := range []struct {
		name, ttl string
		cycles    int // per iteration, the clock stepped by interval before each
	}{{"cache=off", "0s", 1}, {"cache=on", "5m", 5}} {
		b.Run("instances=1000/"+mode.name, func(b *testing.B) {
			cfg := fleetConfig(b, n, dns, id, "  collector_timeout: 60s\n  dns_cache_ttl: "+mode.ttl+"\n  kdc_ticket_cache_ttl: "+mode.ttl+"\n")
			r := NewRunner(cfg, slog.New(slog.DiscardHandler))
			var clock atomic.Int64
			clock.Store(time.Now().UnixNano())
			r.caches = collector.NewCachesWithClock(func() time.Time { return time.Unix(0, clock.Load()) })
			check := func(res *Result) {
				for _, name := range []string{"dns", "kdc"} {
					if st := res.Status[name]; !st.Success || st.Skipped > 0 {
						b.Fatalf("%s: %+v", name, st)
					}
				}
				for _, tk := range res.Snapshot.Tickets {
					if !tk.OK {
						b.Fatalf("%d tickets, one failed: %+v", len(res.Snapshot.Tickets), tk)
					}
				}
				if len(res.Snapshot.Tickets) != 2*n {
					b.Fatalf("%d tickets, want %d", len(res.Snapshot.Tickets), 2*n)
				}
			}
			check(r.RunOnce(context.Background())) // fills the cache (cache=on)
			dns0, kdc0 := dns.Queries(), kdc.requests.Load()
			var total time.Duration
			for b.Loop() {
				for range mode.cycles {
					clock.Add(int64(interval))
					start := time.Now()
					check(r.RunOnce(context.Background()))
					total += time.Since(start)
				}
			}
			cycles := float64(b.N * mode.cycles)
			b.ReportMetric(total.Seconds()/cycles, "cycle-s")
			b.ReportMetric(float64(dns.Queries()-dns0)/cycles, "dns-queries/cycle")
			b.ReportMetric(float64(kdc.requests.Load()-kdc0)/cycles, "kdc-requests/cycle")
		})
	}
}

// registerFleetSPNs registers the fleet's SPNs (MSSQLSvc/sqlNNNN.fleet.test
// and :1433) on an account of their own in the world's DC, in one
// modification, and removes the account afterwards: other tests share the
// world.
func registerFleetSPNs(b *testing.B, w *world.World, n int) {
	b.Helper()
	_, _ = w.SambaTool("user", "delete", "fleetsvc") // left over by an interrupted run
	if _, err := w.SambaTool("user", "add", "fleetsvc", w.ServicePassword); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if _, err := w.SambaTool("user", "delete", "fleetsvc"); err != nil {
			b.Error(err)
		}
	})
	var ldif strings.Builder
	fmt.Fprintf(&ldif, "dn: CN=fleetsvc,CN=Users,%s\nchangetype: modify\nadd: servicePrincipalName\n", w.BaseDN)
	for i := range n {
		fmt.Fprintf(&ldif, "servicePrincipalName: MSSQLSvc/%s:1433\nservicePrincipalName: MSSQLSvc/%s\n", fleetHost(i), fleetHost(i))
	}
	// DC1's database, beside its smb.conf (dc1/etc/smb.conf, dc1/private/sam.ldb).
	samLDB := filepath.Join(filepath.Dir(filepath.Dir(w.SMBConf)), "private", "sam.ldb")
	cmd := exec.Command("ldbmodify", "-H", samLDB)
	cmd.Stdin = strings.NewReader(ldif.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ldbmodify: %v: %s", err, out)
	}
}
