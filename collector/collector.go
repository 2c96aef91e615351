// Package collector holds the exporter's collectors and their registry.
//
// As in node_exporter, each concern has one file with one collector,
// registered here by name and switched with --collector.NAME. Each collector
// gathers facts into its own section of a facts.Snapshot (collection) and
// derives its metrics from that snapshot; judgement lives in the diagnosis
// package.
package collector

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// Namespace is the prefix of every metric this exporter exposes.
const Namespace = "kerberos"

// Phase says where a collector runs in a cycle (see package cycle). The SQL
// collectors run per instance and the directory collectors follow each
// instance's SQL facts, because they compute expected SPNs and delegation
// targets from what the servers say about themselves (service account,
// port, linked servers). Fleet-wide discovery needs neither.
type Phase int

const (
	PhaseDiscover  Phase = iota // fleet-wide, no SQL: DNS, DC clocks, delegated users
	PhaseDirectory              // needs the SQL facts of the targets it is run for
	PhaseSQL                    // talks to SQL Server; run for one instance at a time
)

// Collector is one concern.
type Collector interface {
	// Update gathers facts into this collector's own section of snap. It
	// must honour ctx: the runner cancels it at the collector timeout.
	Update(ctx context.Context, env *Env, snap *facts.Snapshot) error
	// Metrics derives this collector's metrics from a completed snapshot.
	// It does no I/O: it runs on the scrape path.
	Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric)
}

type registration struct {
	name    string
	phase   Phase
	enabled *bool
	factory func() Collector
}

var (
	registryMu    sync.Mutex
	registrations = map[string]*registration{}
)

// register is called from each collector file's init.
func register(name string, phase Phase, enabledByDefault bool, factory func() Collector) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registrations[name]; dup {
		panic("collector registered twice: " + name)
	}
	def := enabledByDefault
	registrations[name] = &registration{name: name, phase: phase, enabled: &def, factory: factory}
}

// AddFlags adds --collector.NAME / --no-collector.NAME for every collector.
func AddFlags(app *kingpin.Application) {
	for _, name := range Names() {
		r := registrations[name]
		help := fmt.Sprintf("Enable the %s collector (default: %s).", name, map[bool]string{true: "enabled", false: "disabled"}[*r.enabled])
		app.Flag("collector."+name, help).Default(fmt.Sprint(*r.enabled)).BoolVar(r.enabled)
	}
}

// Names lists every registered collector, sorted.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registrations))
	for n := range registrations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SetEnabled switches collectors on or off by name (for tests and `check`).
func SetEnabled(name string, on bool) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	r, ok := registrations[name]
	if !ok {
		return fmt.Errorf("unknown collector %q", name)
	}
	*r.enabled = on
	return nil
}

// Named is one enabled collector with its registered name and phase.
type Named struct {
	Name  string
	Phase Phase
	Collector
}

// Enabled makes a fresh instance of every collector enabled now, sorted by
// name: the cycle runs them and the exposition asks them for metrics.
func Enabled() []Named {
	var out []Named
	for _, name := range Names() {
		r := registrations[name]
		if *r.enabled {
			out = append(out, Named{Name: name, Phase: r.phase, Collector: r.factory()})
		}
	}
	return out
}

// Env is what a collector may use during one cycle.
type Env struct {
	Config *config.Config
	Logger *slog.Logger
	SQL    *SQLConnections
	// Probe is set for a /probe request, and for the per-instance directory
	// runs of a cycle: collectors skip fleet-wide work.
	Probe bool
	// Lookups are the cycle's shared DNS checks and ticket requests; nil
	// outside a cycle (each run then has its own, uncached).
	Lookups *Lookups
	// AllInstances is every configured instance, for naming the instance a
	// linked server points at: Config.SQLInstances holds only the ones this
	// run is for. Nil means Config.SQLInstances.
	AllInstances []config.SQLInstance
}

// allInstances is every configured SQL instance.
func (e *Env) allInstances() []config.SQLInstance {
	if e.AllInstances != nil {
		return e.AllInstances
	}
	return e.Config.SQLInstances
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// IsEnabled says whether the named collector is switched on (for tests
// that switch collectors and restore them).
func IsEnabled(name string) bool {
	registryMu.Lock()
	defer registryMu.Unlock()
	r, ok := registrations[name]
	return ok && *r.enabled
}

// metricDesc is a metric's descriptor with its value type, so that a
// sample is always sent as what it was declared. newGauge and newCounter
// record every one for Descriptors.
type metricDesc struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
}

var (
	descsMu sync.Mutex
	descs   []*prometheus.Desc
)

func newMetricDesc(kind prometheus.ValueType, fqName, help string, labels []string) metricDesc {
	d := metricDesc{desc: prometheus.NewDesc(fqName, help, labels, nil), kind: kind}
	descsMu.Lock()
	descs = append(descs, d.desc)
	descsMu.Unlock()
	return d
}

// newGauge declares a gauge; every collector metric but one is.
func newGauge(fqName, help string, labels []string) metricDesc {
	return newMetricDesc(prometheus.GaugeValue, fqName, help, labels)
}

// newCounter declares a counter.
func newCounter(fqName, help string, labels []string) metricDesc {
	return newMetricDesc(prometheus.CounterValue, fqName, help, labels)
}

// send sends one sample.
func (d metricDesc) send(ch chan<- prometheus.Metric, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d.desc, d.kind, v, labels...)
}

// Descriptors are every collector's metric descriptors, enabled or not:
// the exporter's Describe sends them, so that a registry checks them.
func Descriptors() []*prometheus.Desc {
	descsMu.Lock()
	defer descsMu.Unlock()
	return slices.Clone(descs)
}
