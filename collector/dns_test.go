package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// snapshotMetrics exposes one collector's metrics for a fixed snapshot, so
// that testutil can compare and lint them.
type snapshotMetrics struct {
	c    Collector
	snap *facts.Snapshot
}

func (s snapshotMetrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(s, ch) }
func (s snapshotMetrics) Collect(ch chan<- prometheus.Metric) { s.c.Metrics(s.snap, ch) }

func TestDNSHostsDedupesAndKeepsOrder(t *testing.T) {
	cfg := &config.Config{
		SQLInstances: []config.SQLInstance{
			{Name: "a", Host: "sqla.corp.test", AGListener: "ag1.corp.test"},
			{Name: "b", Host: "SQLA.corp.test."},
			{Name: "c", Host: "sqlc.corp.test"},
		},
		Services: []config.Service{{Name: "crm", Hosts: []string{"crm.corp.test", "ag1.corp.test", ""}}},
	}
	want := []string{"sqla.corp.test", "ag1.corp.test", "sqlc.corp.test", "crm.corp.test"}
	if got := dnsHosts(cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("dnsHosts = %q, want %q", got, want)
	}
}

func TestDNSMetrics(t *testing.T) {
	snap := facts.New(time.Now())
	snap.DNS = []facts.HostDNS{
		{Host: "sqla.corp.test", Addresses: []string{"127.0.0.11"}, PTR: map[string][]string{"127.0.0.11": {"sqla.corp.test."}}, ReverseMatches: true},
		{Host: "sqlm.corp.test", Addresses: []string{"127.0.0.19"}, PTR: map[string][]string{"127.0.0.19": {"oldname.corp.test."}}},
		{Host: "nosuchhost.corp.test", ForwardError: "forward lookup of nosuchhost.corp.test: 127.0.0.1:53: no such host"},
	}
	c := snapshotMetrics{dnsCollector{}, snap}
	want := `
# HELP kerberos_dns_addresses Number of addresses the host name resolves to.
# TYPE kerberos_dns_addresses gauge
kerberos_dns_addresses{host="nosuchhost.corp.test"} 0
kerberos_dns_addresses{host="sqla.corp.test"} 1
kerberos_dns_addresses{host="sqlm.corp.test"} 1
# HELP kerberos_dns_forward_ok Whether the host name resolves to at least one address (1) or not (0).
# TYPE kerberos_dns_forward_ok gauge
kerberos_dns_forward_ok{host="nosuchhost.corp.test"} 0
kerberos_dns_forward_ok{host="sqla.corp.test"} 1
kerberos_dns_forward_ok{host="sqlm.corp.test"} 1
# HELP kerberos_dns_reverse_ok Whether every address of the host has PTR records naming only the host (1) or not (0); absent when the name does not resolve.
# TYPE kerberos_dns_reverse_ok gauge
kerberos_dns_reverse_ok{host="sqla.corp.test"} 1
kerberos_dns_reverse_ok{host="sqlm.corp.test"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}

func requireLintClean(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestWorldDNSCollector(t *testing.T) {
	w := world.ForTest(t)
	// Nothing listens on dead's UDP port: the world's DNS server, second in
	// the list, must answer.
	deadConn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := deadConn.LocalAddr().String()
	deadConn.Close()
	cfg := worldConfig(t, w, []worldInstance{{"sqla", ""}, {"sqlm", ""}}, fmt.Sprintf(`services:
  - {name: crm, account: 'crmweb@corp.test', spns: [HTTP/crm.corp.test], hosts: [crm.corp.test, nosuchhost.corp.test]}
dns:
  servers: ["%s", "%s"]
  timeout: 2s
`, dead, w.DNSServer()))
	snap := facts.New(time.Now())
	if err := (dnsCollector{}).Update(context.Background(), worldEnv(cfg), snap); err != nil {
		t.Fatalf("Update: %v", err)
	}
	c := snapshotMetrics{dnsCollector{}, snap}
	// sqlm's address maps back to oldname.corp.test (seeds 001, 004).
	want := `
# HELP kerberos_dns_addresses Number of addresses the host name resolves to.
# TYPE kerberos_dns_addresses gauge
kerberos_dns_addresses{host="crm.corp.test"} 1
kerberos_dns_addresses{host="nosuchhost.corp.test"} 0
kerberos_dns_addresses{host="sqla.corp.test"} 1
kerberos_dns_addresses{host="sqlm.corp.test"} 1
# HELP kerberos_dns_canonical_name_info The name the host name resolves to after following CNAME records (the host itself for an A record); always 1, absent when unknown.
# TYPE kerberos_dns_canonical_name_info gauge
kerberos_dns_canonical_name_info{canonical_name="crm.corp.test",host="crm.corp.test"} 1
kerberos_dns_canonical_name_info{canonical_name="sqla.corp.test",host="sqla.corp.test"} 1
kerberos_dns_canonical_name_info{canonical_name="sqlm.corp.test",host="sqlm.corp.test"} 1
# HELP kerberos_dns_cname Whether the host name is an alias (CNAME) of another name (1) or has its own address records (0): Windows clients ask for the SPN of the canonical name; absent when unknown.
# TYPE kerberos_dns_cname gauge
kerberos_dns_cname{host="crm.corp.test"} 0
kerberos_dns_cname{host="sqla.corp.test"} 0
kerberos_dns_cname{host="sqlm.corp.test"} 0
# HELP kerberos_dns_forward_ok Whether the host name resolves to at least one address (1) or not (0).
# TYPE kerberos_dns_forward_ok gauge
kerberos_dns_forward_ok{host="crm.corp.test"} 1
kerberos_dns_forward_ok{host="nosuchhost.corp.test"} 0
kerberos_dns_forward_ok{host="sqla.corp.test"} 1
kerberos_dns_forward_ok{host="sqlm.corp.test"} 1
# HELP kerberos_dns_reverse_ok Whether every address of the host has PTR records naming only the host (1) or not (0); absent when the name does not resolve.
# TYPE kerberos_dns_reverse_ok gauge
kerberos_dns_reverse_ok{host="crm.corp.test"} 1
kerberos_dns_reverse_ok{host="sqla.corp.test"} 1
kerberos_dns_reverse_ok{host="sqlm.corp.test"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
	for _, h := range snap.DNS {
		switch h.Host {
		case "sqla.corp.test":
			if !reflect.DeepEqual(h.Addresses, []string{"127.0.0.11"}) {
				t.Errorf("sqla addresses %q, want 127.0.0.11", h.Addresses)
			}
		case "sqlm.corp.test":
			if !reflect.DeepEqual(h.PTR["127.0.0.19"], []string{"oldname.corp.test."}) {
				t.Errorf("sqlm PTR %q, want 127.0.0.19 -> oldname.corp.test.", h.PTR)
			}
		case "nosuchhost.corp.test":
			if !strings.Contains(h.ForwardError, "no such host") {
				t.Errorf("nosuchhost forward error %q, want 'no such host'", h.ForwardError)
			}
		}
	}
}

// A DNS server that never answers, with a collector deadline shorter than
// the DNS timeout: Update returns at the deadline and says the host was
// not checked (unknown, not a failed lookup).
func TestDNSCollectorHonoursDeadline(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cfg := &config.Config{
		SQLInstances: []config.SQLInstance{{Name: "a", Host: "sqla.corp.test"}},
		DNS:          config.DNS{Servers: []string{silent.LocalAddr().String()}, Timeout: config.Duration(10 * time.Second)},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	snap := facts.New(time.Now())
	start := time.Now()
	err = (dnsCollector{}).Update(ctx, &Env{Config: cfg}, snap)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Update took %s with a 300ms deadline", took)
	}
	var inc *Incomplete
	if !errors.As(err, &inc) || inc.Skipped != 1 || inc.Total != 1 || inc.Reason != facts.SkippedDeadline {
		t.Errorf("Update = %v, want 1 of 1 hosts skipped at the deadline", err)
	}
	if len(snap.DNS) != 1 || snap.DNS[0].Skipped != facts.SkippedDeadline || snap.DNS[0].ForwardError != "" {
		t.Errorf("snapshot %+v, want sqla skipped, without a forward error", snap.DNS)
	}
}
