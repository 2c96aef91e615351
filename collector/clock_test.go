package collector

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func TestClockMetrics(t *testing.T) {
	snap := facts.New(testTime)
	snap.DCs = []facts.DomainController{
		{Domain: "corp.test", Address: "127.0.0.1", Up: true, LDAPSkew: -300 * time.Millisecond, LDAPMeasured: true,
			NTPError: "SNTP query to 127.0.0.1 port 123: connection refused"},
		{Domain: "corp.test", Address: "127.0.0.2", Up: true, LDAPSkew: 420 * time.Second, LDAPMeasured: true,
			NTPSkew: 419800 * time.Millisecond, NTPMeasured: true},
		{Domain: "corp.test", Address: "dc3.corp.test", Error: "dial tcp: no route to host"},
		{Domain: "corp.test", Address: "dc4.corp.test", Skipped: facts.SkippedDeadline}, // unknown: no series
	}
	c := snapshotMetrics{clockCollector{}, snap}
	want := `
# HELP kerberos_dc_clock_skew_seconds Domain controller clock minus the exporter's clock, corrected by half the round trip. source ldap is the rootDSE currentTime, which has a resolution of one second (read as the middle of its second); source ntp is an SNTP query.
# TYPE kerberos_dc_clock_skew_seconds gauge
kerberos_dc_clock_skew_seconds{dc="127.0.0.1",domain="corp.test",source="ldap"} -0.3
kerberos_dc_clock_skew_seconds{dc="127.0.0.2",domain="corp.test",source="ldap"} 420
kerberos_dc_clock_skew_seconds{dc="127.0.0.2",domain="corp.test",source="ntp"} 419.8
# HELP kerberos_dc_up Whether the domain controller answered LDAP (its rootDSE could be read).
# TYPE kerberos_dc_up gauge
kerberos_dc_up{dc="127.0.0.1",domain="corp.test"} 1
kerberos_dc_up{dc="127.0.0.2",domain="corp.test"} 1
kerberos_dc_up{dc="dc3.corp.test",domain="corp.test"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}

// sntpServer answers SNTP requests with its clock shifted by skew, as a
// minimal NTPv4 server (RFC 5905 packet layout) would.
func sntpServer(t *testing.T, skew time.Duration) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ntpTime := func(tm time.Time) []byte {
		b := make([]byte, 8)
		secs := uint64(tm.Unix() + 2208988800) // from 1900
		frac := uint64(tm.Nanosecond()) << 32 / 1e9
		binary.BigEndian.PutUint32(b, uint32(secs))
		binary.BigEndian.PutUint32(b[4:], uint32(frac))
		return b
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 {
				continue
			}
			now := time.Now().Add(skew)
			resp := make([]byte, 48)
			resp[0] = 4<<3 | 4 // no leap warning, version 4, mode server
			resp[1] = 2        // stratum
			resp[2] = 6
			resp[3] = 0xEC // precision 2^-20
			copy(resp[12:16], "TEST")
			copy(resp[16:24], ntpTime(now.Add(-time.Minute))) // reference
			copy(resp[24:32], buf[40:48])                     // origin: the client's transmit
			copy(resp[32:40], ntpTime(now))                   // receive
			copy(resp[40:48], ntpTime(now))                   // transmit
			_, _ = pc.WriteTo(resp, addr)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func TestSNTPSkew(t *testing.T) {
	port := sntpServer(t, 42*time.Second)
	skew, err := sntpSkew(context.Background(), "127.0.0.1", port, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := skew - 42*time.Second; d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("skew = %v, want 42s (server ahead is positive)", skew)
	}
}

func TestSNTPSkewNoServer(t *testing.T) {
	// A bound UDP port that never answers: the query must give up within its timeout.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = sntpSkew(ctx, "127.0.0.1", port, time.Minute)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("sntpSkew = %v after %v; want an error bounded by the context", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error %q should name the server", err)
	}
}

// A DC that accepts LDAP connections and never answers, with a collector
// deadline shorter than the domain's timeout: the DC is not measured
// (unknown), not down, and the run is incomplete.
func TestClockCollectorDeadlineSkipsDC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	no := false
	cfg := &config.Config{Domains: []config.Domain{{Name: "corp.test", DomainControllers: []string{"ldap://" + ln.Addr().String()},
		Timeout: config.Duration(10 * time.Second), NTP: &no}}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	snap := facts.New(time.Now())
	err = (clockCollector{}).Update(ctx, &Env{Config: cfg}, snap)
	var inc *Incomplete
	if !errors.As(err, &inc) || inc.Skipped != 1 || inc.Items != "domain controllers" {
		t.Errorf("Update = %v, want 1 of 1 domain controllers skipped", err)
	}
	if len(snap.DCs) != 1 || snap.DCs[0].Skipped != facts.SkippedDeadline || snap.DCs[0].Error != "" {
		t.Errorf("DCs %+v, want one skipped at the deadline, without an error", snap.DCs)
	}
}
