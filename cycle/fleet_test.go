package cycle

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/dnsstandin"
)

// fleetZone is the made-up DNS zone of the fleet tests.
const fleetZone = "fleet.test"

// fleetIdentity is the exporter's Kerberos identity in a fleet test: a
// principal of realm, its password, and the krb5.conf naming the KDC.
type fleetIdentity struct{ realm, principal, password, krb5Conf string }

// fleetConfig is n instances sqlNNNN.fleet.test, asked of the DNS stand-in
// dns, with the exporter's identity id asking for tickets.
func fleetConfig(t testing.TB, n int, dns *dnsstandin.Server, id fleetIdentity, extraGlobal string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte(id.password), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  collection_interval: 60s\n%s", extraGlobal)
	fmt.Fprintf(&b, "dns:\n  servers: [%q]\n", dns.Addr())
	fmt.Fprintf(&b, "kerberos:\n  realm: %s\n  krb5_config: %s\n  principal: %s\n  password: {file: %s}\n", id.realm, id.krb5Conf, id.principal, pw)
	b.WriteString("sql_instances:\n")
	for i := range n {
		host := fleetHost(i)
		fmt.Fprintf(&b, "  - {name: sql%04d, host: %s, auth: {method: sql, username: u, password: {file: %s}}}\n", i, host, pw)
	}
	cfg, err := config.Parse("fleet.yml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func fleetHost(i int) string { return fmt.Sprintf("sql%04d.%s", i, fleetZone) }

// silentKDC is a KDC address that takes requests and never answers (UDP
// and TCP on the same port), and a krb5.conf naming it.
func silentKDC(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c) // accepted, never answered
		}
	}()
	udp, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	return krb5Conf(t, "FLEET.TEST", ln.Addr().String())
}

// krb5Conf names kdc for realm, over TCP only, and maps the fleet's zone
// to realm.
func krb5Conf(t testing.TB, realm, kdc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "krb5.conf")
	conf := fmt.Sprintf("[libdefaults]\n  default_realm = %[1]s\n  dns_lookup_kdc = false\n  dns_lookup_realm = false\n  udp_preference_limit = 1\n[realms]\n  %[1]s = {\n    kdc = %[2]s\n  }\n[domain_realm]\n  .%[3]s = %[1]s\n", realm, kdc, fleetZone)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// 300+ instances, a DNS server that takes 50 ms per answer, a KDC that
// never answers and a collector timeout of one second: most hosts and every
// SPN cannot be checked in time. What was not checked must be unknown: no
// finding about it, the same fault (a host that does not exist) always
// critical, never "warning" because its lookup was cut, and the skipped
// work visible in the collector metrics.
func TestFleetSkippedChecksAreUnknown(t *testing.T) {
	const n = 320
	dns, err := dnsstandin.Start("127.0.0.1:0", fleetZone, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	gone := map[string]bool{}
	for i := range n {
		if i%2 == 1 {
			dns.Remove(fleetHost(i))
			gone[fleetHost(i)] = true
		} else {
			dns.AddHost(fleetHost(i), dnsstandin.Address(i))
		}
	}
	id := fleetIdentity{realm: "FLEET.TEST", principal: "krbmon@FLEET.TEST", password: "Passw0rd!Fleet1", krb5Conf: silentKDC(t)}
	cfg := fleetConfig(t, n, dns, id, "  collector_timeout: 1s\n")
	onlyCollectors(t, "dns", "kdc")
	r := NewRunner(cfg, slog.New(slog.DiscardHandler))
	res := r.RunOnce(context.Background())

	checked := map[string]bool{}
	for _, h := range res.Snapshot.DNS {
		if h.Skipped == "" {
			checked[strings.ToLower(h.Host)] = true
		}
	}
	dnsStatus, kdcStatus := res.Status["dns"], res.Status["kdc"]
	t.Logf("dns: %d of %d hosts checked; status %+v; kdc status %+v", len(checked), len(res.Snapshot.DNS), dnsStatus, kdcStatus)
	if len(checked) == 0 || len(checked) == n {
		t.Fatalf("%d of %d hosts checked: the test needs some checked and some skipped", len(checked), n)
	}
	var forwardFailed int
	for _, f := range res.Findings {
		switch {
		case f.Check == "dns_forward_failed":
			forwardFailed++
			if f.Severity != diagnosis.Critical {
				t.Errorf("%s %s %s: a host that does not exist must always be critical", f.Check, f.Severity, f.Target)
			}
			if !checked[strings.ToLower(f.Target)] || !gone[f.Target] {
				t.Errorf("%s about %s, which was not checked or exists", f.Check, f.Target)
			}
		case strings.HasPrefix(f.Check, "dns_") || strings.HasPrefix(f.Check, "kdc_"):
			t.Errorf("finding %s %s %s from a check that did not run", f.Check, f.Severity, f.Target)
		}
	}
	var goneChecked int
	for h := range checked {
		if gone[h] {
			goneChecked++
		}
	}
	if forwardFailed != goneChecked {
		t.Errorf("%d dns_forward_failed findings for %d checked hosts that do not exist", forwardFailed, goneChecked)
	}

	if !dnsStatus.Success || dnsStatus.Skipped != n-len(checked) || dnsStatus.Items != "hosts" || dnsStatus.Reason != "deadline" {
		t.Errorf("dns status %+v, want success with %d hosts skipped at the deadline", dnsStatus, n-len(checked))
	}
	if !strings.Contains(dnsStatus.Incomplete(), fmt.Sprintf("%d of %d hosts not checked this cycle (deadline)", n-len(checked), n)) {
		t.Errorf("dns incomplete %q", dnsStatus.Incomplete())
	}
	if kdcStatus.Skipped == 0 || kdcStatus.Items != "SPNs" {
		t.Errorf("kdc status %+v, want SPNs skipped", kdcStatus)
	}
	for _, tk := range res.Snapshot.Tickets {
		if tk.Skipped == "" {
			t.Errorf("ticket %+v was answered by a KDC that never answers", tk)
		}
	}

	skipped := gatherGauge(t, NewResultExporter(r, res), "kerberos_exporter_collector_skipped_items")
	incomplete := gatherGauge(t, NewResultExporter(r, res), "kerberos_exporter_collector_incomplete")
	for _, name := range []string{"dns", "kdc"} {
		if skipped[name] <= 0 || incomplete[name] != 1 {
			t.Errorf("collector %s: skipped_items %v, incomplete %v; want > 0 and 1", name, skipped[name], incomplete[name])
		}
	}
}

// gatherGauge is a per-collector metric's values by collector label.
func gatherGauge(t testing.TB, c prometheus.Collector, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "collector" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s in the exposition", name)
	}
	return out
}
