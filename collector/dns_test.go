package collector

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
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
