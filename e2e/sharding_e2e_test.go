package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// shardedInstances are the SQL stand-ins the replicas share; hashmod 2 of
// their names puts some on each replica (checked below).
var shardedInstances = []string{"sqla", "sqlb", "sqlc", "sqld"}

// TestShardedProbesEndToEnd: the real Prometheus discovers the instances
// from /sd (http_sd_configs), two exporter replicas with the same
// configuration (but for their SQL login, so that the stand-ins can tell
// them apart) share them by hashmod relabelling, each instance is probed by
// exactly one replica, and what the shards find is what one exporter
// probing every instance finds. The replicas run with
// --collection.background=fleet: their background loops do only the
// fleet-wide work, so each SQL Server hears only from the replica that
// probes it, and the shards' probes plus one replica's /metrics find what a
// single exporter in the default mode finds on its /metrics.
func TestShardedProbesEndToEnd(t *testing.T) {
	requireTool(t, "prometheus")
	w := world.ForTest(t)
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	logins := []string{"krbmon_shard0", "krbmon_shard1"}
	standIns := startStandInGroup(t, logins, shardedInstances...)
	addrs := map[string]string{}
	for _, name := range shardedInstances {
		addrs[name] = standIns.Server(name).Addr()
	}
	replicas := []*exporterServer{
		startExporter(t, shardedExporterConfig(t, w, addrs, logins[0]), "--collection.background=fleet"),
		startExporter(t, shardedExporterConfig(t, w, addrs, logins[1]), "--collection.background=fleet"),
	}
	single := startExporter(t, shardedExporterConfig(t, w, addrs, "krbmon_sql"))

	var jobs strings.Builder
	for i, r := range replicas {
		fmt.Fprintf(&jobs, `  - job_name: shard%[1]d
    scrape_interval: 5s
    scrape_timeout: 5s
    http_sd_configs: [{url: "http://%[2]s/sd", refresh_interval: 5s}]
    relabel_configs:
      - {source_labels: [__param_target], modulus: 2, target_label: __tmp_shard, action: hashmod}
      - {source_labels: [__tmp_shard], regex: "%[1]d", action: keep}
`, i, r.Addr)
	}
	fmt.Fprintf(&jobs, `  - job_name: fleet
    scrape_interval: 5s
    static_configs: [{targets: ["%s"]}]
  - job_name: single
    scrape_interval: 5s
    scrape_timeout: 5s
    http_sd_configs: [{url: "http://%s/sd", refresh_interval: 5s}]
  - job_name: single_metrics
    scrape_interval: 5s
    static_configs: [{targets: ["%s"]}]
`, replicas[0].Addr, single.Addr, single.Addr)
	prom := startPrometheus(t, prometheusConfig{ScrapeConfigs: jobs.String()})

	// Every instance probed, by the shards and by the single job.
	waitFor(t, "every instance probed successfully", 3*time.Minute, prom.process, func() (bool, string) {
		shards, _ := prom.seriesCount(`up{job=~"shard.*"} == 1`)
		single, _ := prom.seriesCount(`up{job="single"} == 1`)
		findings, _ := prom.seriesCount(`kerberos_finding{job="single"}`)
		metrics, _ := prom.seriesCount(`kerberos_finding{job="single_metrics"}`)
		fleet, _ := prom.seriesCount(`up{job="fleet"} == 1`)
		return shards == len(shardedInstances) && single == len(shardedInstances) && findings > 0 && metrics > 0 && fleet == 1,
			fmt.Sprintf("%d sharded and %d single probes up, %d findings, %d on the single /metrics, fleet up %d", shards, single, findings, metrics, fleet)
	})

	// Exactly one replica per instance, both replicas used, each probe sent
	// to the replica whose /sd listed it.
	targets := activeTargets(t, prom)
	perInstance := map[string][]string{}
	perReplica := map[string]int{}
	for _, tg := range targets {
		if !strings.HasPrefix(tg.Labels["job"], "shard") {
			continue
		}
		u, err := url.Parse(tg.ScrapeURL)
		if err != nil {
			t.Fatal(err)
		}
		want := replicas[tg.Labels["job"][len("shard")]-'0'].Addr
		if u.Host != want || u.Path != "/probe" || u.Query().Get("target") != tg.Labels["instance"] {
			t.Errorf("%s probes %s, want %s/probe?target=%s", tg.Labels["job"], tg.ScrapeURL, want, tg.Labels["instance"])
		}
		perInstance[tg.Labels["instance"]] = append(perInstance[tg.Labels["instance"]], tg.Labels["job"])
		perReplica[tg.Labels["job"]]++
	}
	for _, name := range shardedInstances {
		if got := perInstance[name]; len(got) != 1 {
			t.Errorf("instance %s is probed by %v, want exactly one replica", name, got)
		}
	}
	t.Logf("probes per replica: %v", perReplica)
	if len(perReplica) != 2 {
		t.Errorf("probes per replica %v: hashmod put every instance on one replica", perReplica)
	}

	// Each SQL Server heard only from the replica that probes it: the other
	// replica's background loop left it alone.
	for _, name := range shardedInstances {
		if len(perInstance[name]) != 1 {
			continue
		}
		want := "krbmon_" + perInstance[name][0]
		seen := map[string]int{}
		for _, s := range standIns.Server(name).LoginHistory() {
			if slices.Contains(logins, s.Login) {
				seen[s.Login]++
			}
		}
		t.Logf("%s: logins by replica %v", name, seen)
		if seen[want] == 0 || len(seen) != 1 {
			t.Errorf("%s is probed by %s but saw the replicas' logins %v, want only %s", name, perInstance[name][0], seen, want)
		}
	}

	// The shards' findings and SQL facts are the single exporter's.
	for _, name := range []string{"kerberos_finding", "kerberos_sql_up", "kerberos_sql_connection_auth_scheme", "kerberos_spn_holders"} {
		sharded := seriesSet(t, prom, name+`{job=~"shard.*"}`)
		single := seriesSet(t, prom, name+`{job="single"}`)
		if !slices.Equal(sharded, single) {
			t.Errorf("%s differs:\nsharded: %q\nsingle:  %q", name, sharded, single)
		}
		if len(single) == 0 {
			t.Errorf("%s: no series at all", name)
		}
	}

	// A fleet-mode /metrics carries only the fleet's work, and with the
	// shards' probes it finds what one default exporter's /metrics finds.
	if n, err := prom.seriesCount(`kerberos_sql_up{job="fleet"}`); err != nil || n != 0 {
		t.Errorf("a fleet-mode /metrics has %d kerberos_sql_up series (%v), want none", n, err)
	}
	for _, name := range []string{"kerberos_finding", "kerberos_sql_up", "kerberos_spn_holders"} {
		union := withoutInstance(seriesSet(t, prom, name+`{job=~"shard.*|fleet"}`))
		whole := withoutInstance(seriesSet(t, prom, name+`{job="single_metrics"}`))
		if !slices.Equal(union, whole) {
			t.Errorf("%s: shards' probes with the fleet's /metrics differ from one default exporter's /metrics:\nunion:  %q\nsingle: %q", name, union, whole)
		}
	}
}

// withoutInstance drops the instance label (a probe's is its SQL instance,
// a /metrics scrape's the exporter's address) and the duplicates that leaves.
func withoutInstance(series []string) []string {
	out := make([]string, 0, len(series))
	for _, s := range series {
		out = append(out, instanceLabel.ReplaceAllString(s, ""))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var instanceLabel = regexp.MustCompile(`(^\{|,)instance=[^,}]*`)

// seriesSet is the label sets (without job) and values expr returns now, sorted.
func seriesSet(t *testing.T, prom *prometheusServer, expr string) []string {
	t.Helper()
	r, err := prom.query(expr)
	if err != nil || r.Status != "success" {
		t.Fatalf("%s: %v %s %s", expr, err, r.ErrorType, r.Error)
	}
	var out []string
	for _, s := range r.Data.Result {
		delete(s.Metric, "job")
		keys := make([]string, 0, len(s.Metric))
		for k := range s.Metric {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+s.Metric[k])
		}
		out = append(out, fmt.Sprintf("{%s} %v", strings.Join(parts, ","), s.Value[1]))
	}
	slices.Sort(out)
	return out
}

type activeTarget struct {
	Labels    map[string]string `json:"labels"`
	ScrapeURL string            `json:"scrapeUrl"`
	Health    string            `json:"health"`
}

func activeTargets(t *testing.T, prom *prometheusServer) []activeTarget {
	t.Helper()
	code, body, err := httpGet(prom.URL + "/api/v1/targets?state=active")
	if err != nil || code != 200 {
		t.Fatalf("targets: HTTP %d %v", code, err)
	}
	var r struct {
		Data struct {
			ActiveTargets []activeTarget `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return r.Data.ActiveTargets
}

// startStandInGroup serves testenv/scenarios/NAME.yml for each name on
// ephemeral ports, each with these SQL logins besides the scenario's own.
func startStandInGroup(t *testing.T, extraLogins []string, names ...string) *tdsserver.Group {
	t.Helper()
	var scs []*tdsserver.Scenario
	for _, n := range names {
		sc, err := tdsserver.LoadScenario(filepath.Join(repoRoot(t), "testenv", "scenarios", n+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range extraLogins {
			sc.SQLLogins = append(sc.SQLLogins, tdsserver.SQLLogin{Name: l, Password: shardedSQLPassword})
		}
		scs = append(scs, sc)
	}
	g, err := tdsserver.StartGroup(scs, tdsserver.GroupOptions{EphemeralPorts: true, Logf: t.Logf, HopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// shardedSQLPassword is the scenarios' krbmon_sql password, also given to
// the replicas' own logins.
const shardedSQLPassword = "Passw0rd!Sql1"

// shardedExporterConfig watches the stand-ins in the world's domain,
// logging in to them as sqlLogin; the replicas' configurations differ only
// in that.
func shardedExporterConfig(t *testing.T, w *world.World, addrs map[string]string, sqlLogin string) string {
	t.Helper()
	pw := writeSecret(t, w.MonitorPassword)
	sqlpw := writeSecret(t, shardedSQLPassword)
	var b strings.Builder
	fmt.Fprintf(&b, `global:
  collection_interval: 30s
  collector_timeout: 20s
domains:
  - name: %s
    netbios_name: %s
    domain_controllers: [ldaps://%s:636]
    global_catalogs: [ldaps://%s:3269]
    tls: {ca_file: %s}
    bind: {method: simple, username: %s@%s, password: {file: %s}}
    ntp: false
sql_instances:
`, w.Domain, w.NetBIOS, w.DC1, w.DC1, w.CACert, w.MonitorUser, w.Domain, pw)
	for _, name := range shardedInstances {
		host, port, err := net.SplitHostPort(addrs[name])
		if err != nil {
			t.Fatal(err)
		}
		// sqlb is the back end of sqla's linked-server hop. One exporter
		// collecting both learns that from sqla's linked servers; a probe of
		// sqlb cannot (sqla may be another replica's), so the configuration
		// says so, as docs/deployment.md asks of back ends that are probed.
		expect := ""
		if name == "sqlb" {
			expect = "expect_kerberos: true, "
		}
		fmt.Fprintf(&b, "  - {name: %s, host: %s.%s, address: %s, port: %s, %sencrypt: disable, timeout: 5s, auth: {method: sql, username: %s, password: {file: %s}}}\n",
			name, name, w.Domain, host, port, expect, sqlLogin, sqlpw)
	}
	return b.String()
}
