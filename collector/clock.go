package collector

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/beevik/ntp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
	"github.com/kerberos-exporter/kerberos_exporter/internal/dnscheck"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func init() {
	register("clock", PhaseDiscover, true, func() Collector { return clockCollector{} })
}

var (
	dcUpDesc = newGauge(
		prometheus.BuildFQName(Namespace, "dc", "up"),
		"Whether the domain controller answered LDAP (its rootDSE could be read).",
		[]string{"domain", "dc"})
	dcClockSkewDesc = newGauge(
		prometheus.BuildFQName(Namespace, "dc", "clock_skew_seconds"),
		"Domain controller clock minus the exporter's clock, corrected by half the round trip. source ldap is the rootDSE currentTime, which has a resolution of one second (read as the middle of its second); source ntp is an SNTP query.",
		[]string{"domain", "dc", "source"})
)

// currentTimeResolution is the resolution of the rootDSE's currentTime: the
// DC truncates its clock to the second, so the middle of that second is the
// best estimate of the true time.
const currentTimeResolution = time.Second

// clockCollector measures every domain controller's clock: Kerberos refuses
// tickets when client and KDC clocks differ by more than five minutes.
type clockCollector struct{}

func (clockCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	// The DCs' clocks are the fleet's, not one instance's: the background
	// loop measures them; a probe measures its instance's clock (sql).
	if env.Probe {
		return nil
	}
	cfg := env.Config
	n := 0
	for _, d := range cfg.Domains {
		n += len(d.DomainControllers)
	}
	dcs := make([]facts.DomainController, n)
	var wg sync.WaitGroup
	i := 0
	for _, d := range cfg.Domains {
		for _, u := range d.DomainControllers {
			dc := &dcs[i]
			i++
			dc.Domain, dc.Address = d.Name, u
			wg.Go(func() {
				measureDC(ctx, d, u, dc)
				if !dc.Up && dnscheck.Cut(ctx) {
					// Cut by the collector's deadline, not refused by the
					// DC: unknown, not down.
					*dc = facts.DomainController{Domain: dc.Domain, Address: dc.Address, Skipped: facts.SkipReason(ctx.Err())}
				}
			})
		}
	}
	wg.Wait()
	snap.DCs = dcs
	inc := &Incomplete{Total: len(dcs), Items: "domain controllers"}
	for _, dc := range dcs {
		if dc.Skipped != "" {
			inc.Skipped++
			inc.Reason = dc.Skipped
		}
	}
	if inc.Skipped > 0 {
		return inc
	}
	return nil
}

// measureDC reads one DC's clock over LDAP and, when configured, SNTP. A DC
// that does not answer is a fact (Up false), not a failure of the collector.
func measureDC(ctx context.Context, d config.Domain, rawURL string, dc *facts.DomainController) {
	u, err := url.Parse(rawURL)
	if err != nil {
		dc.Error = fmt.Sprintf("%s: not a URL", rawURL)
		return
	}
	dc.Address = u.Hostname()

	conn, err := directory.DialUnbound(ctx, rawURL, d)
	if err != nil {
		dc.Error = err.Error()
	} else {
		start := time.Now()
		dcTime, rtt, err := conn.RootDSETime(ctx)
		conn.Close()
		if err != nil {
			dc.Error = err.Error()
		} else {
			dc.Up = true
			dc.LDAPSkew = dcTime.Add(currentTimeResolution / 2).Sub(start.Add(rtt / 2))
			dc.LDAPMeasured = true
		}
	}

	if d.NTP != nil && *d.NTP {
		skew, err := sntpSkew(ctx, dc.Address, d.NTPPort, d.Timeout.Duration())
		if err != nil {
			dc.NTPError = err.Error()
			return
		}
		dc.NTPSkew, dc.NTPMeasured = skew, true
	}
}

// sntpSkew asks host for its time over SNTP and returns its clock minus ours.
func sntpSkew(ctx context.Context, host string, port int, timeout time.Duration) (time.Duration, error) {
	if timeout <= 0 {
		timeout = config.DefaultLDAPTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	resp, err := ntp.QueryWithOptions(host, ntp.QueryOptions{
		Port:    port,
		Timeout: timeout,
		Dialer: func(_, remote string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "udp", remote)
			if err == nil {
				context.AfterFunc(ctx, func() { conn.Close() })
			}
			return conn, err
		},
	})
	if err == nil {
		err = resp.Validate()
	}
	if err != nil {
		return 0, fmt.Errorf("SNTP query to %s port %d: %w", host, port, err)
	}
	return resp.ClockOffset, nil
}

func (clockCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for _, dc := range snap.DCs {
		if dc.Skipped != "" {
			continue // unknown this cycle
		}
		dcUpDesc.send(ch, boolFloat(dc.Up), dc.Domain, dc.Address)
		if dc.LDAPMeasured {
			dcClockSkewDesc.send(ch, dc.LDAPSkew.Seconds(), dc.Domain, dc.Address, "ldap")
		}
		if dc.NTPMeasured {
			dcClockSkewDesc.send(ch, dc.NTPSkew.Seconds(), dc.Domain, dc.Address, "ntp")
		}
	}
}
