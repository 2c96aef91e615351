package collector

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
)

func init() {
	register("linkedserver", PhaseSQL, true, func() Collector { return linkedServerCollector{} })
}

// testAllSelfMapped in linked_servers.test selects every self-mapped linked
// server: those are the ones that need delegation.
const testAllSelfMapped = "*"

// linkedServerCollector reads each instance's linked servers and their
// login mappings, and tests the allow-listed ones: sp_testlinkedserver,
// then a query through the hop that says how the remote side saw it.
type linkedServerCollector struct{}

func (linkedServerCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	return storePerInstance(ctx, env, snap.LinkedServers, linkedServers)
}

// linkedServers returns nil when the instance could not be asked at all
// (the sql collector reports why).
func linkedServers(ctx context.Context, env *Env, inst *config.SQLInstance) (*facts.LinkedServers, error) {
	s, err := env.SQL.Session(ctx, inst.Name)
	if err != nil {
		return nil, nil
	}
	out := &facts.LinkedServers{Instance: inst.Name}
	qctx, cancel := withTimeout(ctx, inst.Timeout.Duration())
	servers, err := s.LinkedServers(qctx)
	cancel()
	if err != nil {
		return out, readFailed(inst.Name, err, &out.Error, &out.PermissionDenied)
	}
	out.Readable = true
	for i := range servers {
		ls := &servers[i]
		ls.TargetInstance = matchInstance(sqlclient.ParseDataSource(ls.DataSource), env.allInstances())
		if selectedForTest(ls, inst.LinkedServers.Test) {
			testLinkedServer(ctx, s, ls, inst.LinkedServers.Timeout.Duration())
		}
	}
	out.Servers = servers
	return out, nil
}

func selectedForTest(ls *facts.LinkedServer, allow []string) bool {
	for _, name := range allow {
		if (name == testAllSelfMapped && ls.SelfMapped) || strings.EqualFold(name, ls.Name) {
			return true
		}
	}
	return false
}

// testLinkedServer runs sp_testlinkedserver and, when it passes, the hop
// query, each bounded by the linked-server timeout.
func testLinkedServer(ctx context.Context, s *sqlclient.Session, ls *facts.LinkedServer, timeout time.Duration) {
	ls.Tested = true
	tctx, cancel := withTimeout(ctx, timeout)
	err := s.TestLinkedServer(tctx, ls.Name)
	timedOut := errors.Is(tctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		ls.Cause, ls.ErrNumber, ls.ErrState, ls.ErrMsg = sqlclient.LinkedServerCause(err)
		if timedOut && ls.Cause == sqlclient.CauseOther {
			ls.Cause = sqlclient.CauseTimeout
		}
		return
	}
	ls.TestOK = true
	ls.HopTested = true
	hctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	hop, err := s.Hop(hctx, ls.Name)
	if err != nil {
		ls.HopError = err.Error()
		return
	}
	ls.HopOK = true
	ls.HopAuthScheme, ls.HopTransport, ls.HopClockSkew = hop.AuthScheme, hop.NetTransport, hop.ClockSkew
}

// matchInstance names the configured instance a data source points at:
// the one whose host, short host name, NetBIOS name, address or AG listener
// is the data source's host, narrowed by instance name and port when more
// than one instance lives there. "" when none or several match.
func matchInstance(ds sqlclient.DataSource, instances []config.SQLInstance) string {
	if ds.Host == "" {
		return ""
	}
	var hits []*config.SQLInstance
	for i := range instances {
		inst := &instances[i]
		short, _, _ := strings.Cut(inst.Host, ".")
		for _, n := range []string{inst.Host, short, inst.NetBIOSName, inst.Address, inst.AGListener} {
			if n != "" && strings.EqualFold(n, ds.Host) {
				hits = append(hits, inst)
				break
			}
		}
	}
	if len(hits) > 1 {
		hits = filterInstances(hits, func(inst *config.SQLInstance) bool {
			if !strings.EqualFold(inst.InstanceName, ds.Instance) {
				return false
			}
			return ds.Port == 0 || inst.Port == 0 || inst.Port == ds.Port
		})
	}
	if len(hits) != 1 {
		return ""
	}
	return hits[0].Name
}

func filterInstances(in []*config.SQLInstance, keep func(*config.SQLInstance) bool) []*config.SQLInstance {
	var out []*config.SQLInstance
	for _, inst := range in {
		if keep(inst) {
			out = append(out, inst)
		}
	}
	return out
}

var (
	linkedInfoDesc = newGauge(prometheus.BuildFQName(Namespace, "linked_server", "info"),
		"A linked server and where it points; constant 1.",
		[]string{"sql_instance", "linked_server", "product", "provider", "data_source"})
	linkedSelfMappedDesc = newGauge(prometheus.BuildFQName(Namespace, "linked_server", "self_mapped"),
		"1 if a login mapping forwards the caller's own identity (needs Kerberos delegation).",
		[]string{"sql_instance", "linked_server"})
	linkedTestSuccessDesc = newGauge(prometheus.BuildFQName(Namespace, "linked_server", "test_success"),
		"1 if sp_testlinkedserver succeeded, 0 if it failed (tested linked servers only).",
		[]string{"sql_instance", "linked_server"})
	linkedTestErrorDesc = newGauge(prometheus.BuildFQName(Namespace, "linked_server", "test_error"),
		"SQL Server error number of a failed test; cause: delegation, login_failed, network, timeout, no_mapping or other.",
		[]string{"sql_instance", "linked_server", "cause"})
	linkedHopAuthDesc = newGauge(prometheus.BuildFQName(Namespace, "linked_server", "hop_auth_scheme"),
		"1 for the second hop's auth_scheme as the linked server saw it.",
		[]string{"sql_instance", "linked_server", "auth_scheme"})
	linkedHopTransportDesc = newGauge(prometheus.BuildFQName(Namespace, "linked_server", "hop_net_transport"),
		"1 for the second hop's net_transport as the linked server saw it.",
		[]string{"sql_instance", "linked_server", "net_transport"})
	linkedClockSkewDesc = newGauge(prometheus.BuildFQName(Namespace, "linked_server", "clock_skew_seconds"),
		"Linked server's clock minus this instance's clock.",
		[]string{"sql_instance", "linked_server"})
)

func (linkedServerCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for name, l := range snap.LinkedServers {
		for _, ls := range l.Servers {
			linkedInfoDesc.send(ch, 1, name, ls.Name, ls.Product, ls.Provider, ls.DataSource)
			linkedSelfMappedDesc.send(ch, boolFloat(ls.SelfMapped), name, ls.Name)
			if !ls.Tested {
				continue
			}
			linkedTestSuccessDesc.send(ch, boolFloat(ls.TestOK), name, ls.Name)
			if !ls.TestOK {
				linkedTestErrorDesc.send(ch, float64(ls.ErrNumber), name, ls.Name, ls.Cause)
			}
			if ls.HopOK {
				linkedHopAuthDesc.send(ch, 1, name, ls.Name, ls.HopAuthScheme)
				linkedHopTransportDesc.send(ch, 1, name, ls.Name, ls.HopTransport)
				linkedClockSkewDesc.send(ch, ls.HopClockSkew.Seconds(), name, ls.Name)
			}
		}
	}
}
