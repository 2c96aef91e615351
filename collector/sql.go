package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
)

func init() {
	register("sql", PhaseSQL, true, func() Collector { return &sqlCollector{hostname: os.Hostname} })
}

// Names of the sql collector's queries, as the permission_denied metric's
// query label shows them.
const (
	queryServerIdentity   = "server_identity"
	queryConnectionCounts = "connection_counts"
	queryNTLMClients      = "ntlm_clients"
	queryListenerPorts    = "listener_ports"
	queryServiceAccounts  = "service_accounts"
	queryClock            = "clock"
)

// engineServicePrefix starts the Database Engine's row in
// sys.dm_server_services, e.g. "SQL Server (MSSQLSERVER)"; the Agent's
// "SQL Server Agent (…)" does not match.
const engineServicePrefix = "SQL Server ("

// sqlCollector logs in to every instance and reads how it authenticated,
// what the server calls itself and its clock.
type sqlCollector struct {
	hostname func() (string, error)
	// localLogged remembers the instances already reported as local, so
	// the warning is logged once, not every cycle.
	localLogged sync.Map
}

func (c *sqlCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	type result struct {
		facts *facts.SQLInstance
		err   error
	}
	results := forEachInstance(ctx, env.Config.SQLInstances,
		func(ctx context.Context, inst *config.SQLInstance) result {
			f, err := c.instance(ctx, env, inst)
			return result{f, err}
		},
		func(inst *config.SQLInstance) result {
			f := newSQLFacts(inst)
			f.Cause = sqlclient.CauseTimeout
			f.ConnectError = fmt.Sprintf("sql instance %s: no result within the collector timeout", inst.Name)
			return result{facts: f}
		})
	var errs []error
	for name, r := range results {
		snap.SQL[name] = r.facts
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return errors.Join(errs...)
}

func newSQLFacts(inst *config.SQLInstance) *facts.SQLInstance {
	return &facts.SQLInstance{Name: inst.Name, ExpectKerberos: inst.ExpectKerberos != nil && *inst.ExpectKerberos}
}

// instance gathers one instance's facts. A failed login is a fact, not an
// error; a query failing for another reason than a missing grant is both.
func (c *sqlCollector) instance(ctx context.Context, env *Env, inst *config.SQLInstance) (*facts.SQLInstance, error) {
	f := newSQLFacts(inst)
	s, err := env.SQL.Session(ctx, inst.Name)
	if err != nil {
		f.ConnectError = err.Error()
		f.Cause = sqlclient.CauseOther
		var ce *sqlclient.ConnectError
		if errors.As(err, &ce) {
			f.Cause, f.ErrorNumber = ce.Cause, ce.Number
			f.KerberosError, f.KerberosErrorCode = ce.KerberosError, ce.KerberosErrorCode
		}
		env.Logger.Warn("sql login failed", "sql_instance", inst.Name, "cause", f.Cause, "err", err)
		return f, nil
	}
	f.Up = true
	f.AuthScheme, f.NetTransport, f.LocalTCPPort = s.Own.AuthScheme, s.Own.NetTransport, s.Own.LocalTCPPort
	f.UsedNTLMFallback, f.KerberosError, f.KerberosErrorCode = s.UsedNTLMFallback, s.KerberosError, s.KerberosErrorCode
	if s.UsedNTLMFallback {
		env.Logger.Info("no Kerberos ticket for the server's SPN; logged in with NTLM as a Windows client would",
			"sql_instance", inst.Name, "spn", s.ServerSPN, "kerberos_error", s.KerberosError)
	}

	var errs []error
	run := func(query string, fn func(context.Context) error) {
		qctx, cancel := withTimeout(ctx, inst.Timeout.Duration())
		defer cancel()
		err := fn(qctx)
		switch {
		case err == nil:
		case sqlclient.IsPermissionDenied(err):
			f.PermissionErrors = append(f.PermissionErrors, query)
		default:
			f.QueryErrors = append(f.QueryErrors, query+": "+err.Error())
			errs = append(errs, fmt.Errorf("sql instance %s: %w", inst.Name, err))
		}
	}
	run(queryServerIdentity, func(ctx context.Context) error {
		id, err := s.Identity(ctx)
		if err == nil {
			f.MachineName, f.PhysicalNetBIOS, f.InstanceName, f.DomainName = id.MachineName, id.PhysicalNetBIOS, id.InstanceName, id.DomainName
		}
		return err
	})
	c.detectLocal(env, f)
	run(queryConnectionCounts, func(ctx context.Context) (err error) {
		f.Connections, err = s.ConnectionCounts(ctx)
		return err
	})
	run(queryNTLMClients, func(ctx context.Context) (err error) {
		f.NTLMClients, err = s.NTLMClients(ctx, inst.NTLMClientsTop)
		return err
	})
	run(queryListenerPorts, func(ctx context.Context) (err error) {
		f.ListenerPorts, err = s.ListenerPorts(ctx)
		return err
	})
	run(queryServiceAccounts, func(ctx context.Context) (err error) {
		f.ServiceAccounts, err = s.ServiceAccounts(ctx)
		for _, sa := range f.ServiceAccounts {
			if strings.HasPrefix(sa.ServiceName, engineServicePrefix) {
				f.EngineAccount = sa.Account
			}
		}
		return err
	})
	run(queryClock, func(ctx context.Context) (err error) {
		f.ClockSkew, err = s.ClockSkew(ctx)
		f.ClockMeasured = err == nil
		return err
	})
	return f, errors.Join(errs...)
}

// detectLocal marks the instance local when the server's physical NetBIOS
// name is this machine's: local logins are always NTLM, so the auth scheme
// measured says nothing about Kerberos.
func (c *sqlCollector) detectLocal(env *Env, f *facts.SQLInstance) {
	if f.PhysicalNetBIOS == "" {
		return
	}
	host, err := c.hostname()
	if err != nil {
		return
	}
	short, _, _ := strings.Cut(host, ".")
	if !strings.EqualFold(short, f.PhysicalNetBIOS) {
		return
	}
	f.Local = true
	if _, logged := c.localLogged.LoadOrStore(f.Name, true); !logged {
		env.Logger.Warn("the exporter runs on the SQL Server host: local connections always use NTLM, so its own auth scheme says nothing about Kerberos; run it on another machine",
			"sql_instance", f.Name, "host", f.PhysicalNetBIOS)
	}
}

// withTimeout is context.WithTimeout that leaves ctx alone for d <= 0.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

var (
	sqlUpDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "up"),
		"1 if the exporter could log in to the SQL Server instance.",
		[]string{"sql_instance"})
	sqlConnectErrorDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "connect_error"),
		"1 for the cause of a failed login: login_failed, network, timeout, tls, kerberos or other.",
		[]string{"sql_instance", "cause"})
	sqlAuthSchemeDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "connection_auth_scheme"),
		"1 for the auth_scheme of the exporter's own session (KERBEROS, NTLM, SQL).",
		[]string{"sql_instance", "auth_scheme"})
	sqlNetTransportDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "connection_net_transport"),
		"1 for the net_transport of the exporter's own session.",
		[]string{"sql_instance", "net_transport"})
	sqlNTLMFallbackDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "connection_ntlm_fallback"),
		"1 when no Kerberos ticket could be had and the exporter logged in with NTLM, as a Windows client would.",
		[]string{"sql_instance"})
	sqlIsLocalDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "exporter_is_local"),
		"1 when the exporter runs on the SQL Server host, where logins are always NTLM (auth scheme measurement void).",
		[]string{"sql_instance"})
	sqlExpectKerberosDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "expect_kerberos"),
		"1 when the configuration expects Kerberos on this instance.",
		[]string{"sql_instance"})
	sqlConnectionsDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "connections"),
		"Connections to the instance by auth scheme and transport.",
		[]string{"sql_instance", "auth_scheme", "net_transport"})
	sqlNTLMClientsDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "ntlm_client_connections"),
		"Connections over TCP with NTLM by client, top N (ntlm_clients_top).",
		[]string{"sql_instance", "client_host", "login", "program"})
	sqlServerInfoDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "server_info"),
		"The names the server gives itself and the Database Engine's service account; constant 1.",
		[]string{"sql_instance", "machine_name", "instance_name", "service_account"})
	sqlListenerPortDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "listener_port"),
		"1 per TCP port the Database Engine listens on.",
		[]string{"sql_instance", "port"})
	sqlClockSkewDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "clock_skew_seconds"),
		"Server clock minus exporter clock, corrected by half the round trip.",
		[]string{"sql_instance"})
	sqlPermissionDeniedDesc = newGauge(prometheus.BuildFQName(Namespace, "sql", "permission_denied"),
		"1 when a query failed for lack of a grant.",
		[]string{"sql_instance", "query"})
)

func (c *sqlCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for name, f := range snap.SQL {
		sqlUpDesc.send(ch, boolFloat(f.Up), name)
		sqlExpectKerberosDesc.send(ch, boolFloat(f.ExpectKerberos), name)
		if !f.Up {
			sqlConnectErrorDesc.send(ch, 1, name, f.Cause)
			continue
		}
		sqlAuthSchemeDesc.send(ch, 1, name, f.AuthScheme)
		sqlNetTransportDesc.send(ch, 1, name, f.NetTransport)
		sqlNTLMFallbackDesc.send(ch, boolFloat(f.UsedNTLMFallback), name)
		sqlIsLocalDesc.send(ch, boolFloat(f.Local), name)
		for _, cc := range f.Connections {
			sqlConnectionsDesc.send(ch, float64(cc.Count), name, cc.AuthScheme, cc.NetTransport)
		}
		for _, nc := range f.NTLMClients {
			sqlNTLMClientsDesc.send(ch, float64(nc.Connections), name, nc.Host, nc.Login, nc.Program)
		}
		if f.MachineName != "" {
			sqlServerInfoDesc.send(ch, 1, name, f.MachineName, f.InstanceName, f.EngineAccount)
		}
		for _, p := range f.ListenerPorts {
			sqlListenerPortDesc.send(ch, 1, name, strconv.Itoa(p))
		}
		if f.ClockMeasured {
			sqlClockSkewDesc.send(ch, f.ClockSkew.Seconds(), name)
		}
		for _, q := range f.PermissionErrors {
			sqlPermissionDeniedDesc.send(ch, 1, name, q)
		}
	}
}
