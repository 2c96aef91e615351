package cycle

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
)

func sprint(v any) string { return fmt.Sprint(v) }

var (
	collectorSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "exporter", "collector_success"),
		"Whether the collector's last run succeeded (1) or failed (0).",
		[]string{"collector"}, nil)
	collectorDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "exporter", "collector_duration_seconds"),
		"How long the collector's last run took.",
		[]string{"collector"}, nil)
	collectorLastSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "exporter", "collector_last_success_timestamp_seconds"),
		"When the collector last succeeded, as a Unix time; 0 if it never has.",
		[]string{"collector"}, nil)
	collectorIncompleteDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "exporter", "collector_incomplete"),
		"Whether the collector's last run ran out of time before checking every item (1) or not (0): the items it skipped are unknown this cycle, never findings.",
		[]string{"collector"}, nil)
	collectorSkippedItemsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "exporter", "collector_skipped_items"),
		"How many items (hosts for dns, SPNs for kdc, domain controllers for clock) the collector's last run did not check for lack of time.",
		[]string{"collector"}, nil)
	lastCollectionDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "exporter", "last_collection_timestamp_seconds"),
		"When the last completed collection cycle finished, as a Unix time.",
		nil, nil)
	sqlInstanceInfoDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "exporter", "sql_instance_info"),
		"A SQL instance the exporter watches; source is static (configured) or discovery (found from its MSSQLSvc SPNs). Always 1.",
		[]string{"sql_instance", "source"}, nil)
	findingDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "", "finding"),
		"A diagnosis finding that is active now (1). check names the rule, target what it is about.",
		[]string{"check", "severity", "target"}, nil)
	rootCauseDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "", "root_cause"),
		"A root cause that is active now (1): findings that share one thing to fix. cause names its kind, subject the account, DC, host or domain the fix changes.",
		[]string{"cause", "severity", "subject"}, nil)
	rootCauseAffectedDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "", "root_cause_affected"),
		"Number of distinct targets (SPNs, instances, linked servers, ...) a root cause affects: its blast radius.",
		[]string{"cause", "severity", "subject"}, nil)
	findingFirstSeenDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "finding", "first_seen_timestamp_seconds"),
		"When the active finding (check, target) was first seen, as a Unix time; kept across restarts with --state.directory, and across changes of severity.",
		[]string{"check", "severity", "target"}, nil)
	rootCauseFirstSeenDesc = prometheus.NewDesc(
		prometheus.BuildFQName(collector.Namespace, "root_cause", "first_seen_timestamp_seconds"),
		"When the active root cause (cause, subject) was first seen, as a Unix time; kept across restarts with --state.directory, and across changes of severity.",
		[]string{"cause", "severity", "subject"}, nil)
)

// ownDescs are the exporter's own metrics.
var ownDescs = []*prometheus.Desc{
	collectorSuccessDesc, collectorDurationDesc, collectorLastSuccessDesc,
	collectorIncompleteDesc, collectorSkippedItemsDesc, lastCollectionDesc, sqlInstanceInfoDesc,
	findingDesc, rootCauseDesc, rootCauseAffectedDesc, findingFirstSeenDesc, rootCauseFirstSeenDesc,
}

// Exporter serves the last completed Result as metrics. Collect does no
// I/O, so /metrics answers at once whatever AD or SQL Server are doing.
type Exporter struct {
	last       func() *Result
	collectors []collector.Named
}

// NewExporter serves the runner's last completed cycle.
func NewExporter(r *Runner) *Exporter { return &Exporter{last: r.Last, collectors: r.collectors} }

// NewResultExporter serves one fixed result, e.g. a probe's.
func NewResultExporter(r *Runner, res *Result) *Exporter {
	return &Exporter{last: func() *Result { return res }, collectors: r.collectors}
}

// Describe sends every descriptor the exporter may use (its own and every
// collector's): the series depend on the configuration, the descriptors do
// not, so a registry checks their names, help and labels.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range ownDescs {
		ch <- d
	}
	for _, d := range collector.Descriptors() {
		ch <- d
	}
}

// Collect emits the exporter's own metrics, every enabled collector's
// metrics, the active findings and their root causes.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	res := e.last()
	if res == nil {
		return
	}
	byName := map[string]collector.Named{}
	for _, c := range e.collectors {
		byName[c.Name] = c
	}
	for name, st := range res.Status {
		ch <- prometheus.MustNewConstMetric(collectorSuccessDesc, prometheus.GaugeValue, boolFloat(st.Success), name)
		ch <- prometheus.MustNewConstMetric(collectorDurationDesc, prometheus.GaugeValue, st.Duration.Seconds(), name)
		ts := 0.0
		if !st.LastSuccess.IsZero() {
			ts = float64(st.LastSuccess.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(collectorLastSuccessDesc, prometheus.GaugeValue, ts, name)
		ch <- prometheus.MustNewConstMetric(collectorIncompleteDesc, prometheus.GaugeValue, boolFloat(st.Skipped > 0), name)
		ch <- prometheus.MustNewConstMetric(collectorSkippedItemsDesc, prometheus.GaugeValue, float64(st.Skipped), name)
		if c, ok := byName[name]; ok {
			c.Metrics(res.Snapshot, ch)
		}
	}
	if res.Config != nil {
		for _, inst := range res.Config.SQLInstances {
			source := "static"
			if inst.Discovered {
				source = "discovery"
			}
			ch <- prometheus.MustNewConstMetric(sqlInstanceInfoDesc, prometheus.GaugeValue, 1, inst.Name, source)
		}
	}
	ch <- prometheus.MustNewConstMetric(lastCollectionDesc, prometheus.GaugeValue, float64(res.Snapshot.Finished.UnixNano())/1e9)
	for _, f := range res.Findings {
		ch <- prometheus.MustNewConstMetric(findingDesc, prometheus.GaugeValue, 1, f.Check, string(f.Severity), f.Target)
		if !f.FirstSeen.IsZero() {
			ch <- prometheus.MustNewConstMetric(findingFirstSeenDesc, prometheus.GaugeValue, unixSeconds(f.FirstSeen), f.Check, string(f.Severity), f.Target)
		}
	}
	// One series per label set, whatever the grouping gives.
	emitted := map[[3]string]bool{}
	for _, c := range res.Causes {
		labels := [3]string{c.Cause, string(c.Severity), c.Subject}
		if c.FirstSeen.IsZero() || emitted[labels] {
			continue
		}
		emitted[labels] = true
		ch <- prometheus.MustNewConstMetric(rootCauseFirstSeenDesc, prometheus.GaugeValue, unixSeconds(c.FirstSeen), labels[:]...)
	}
	for _, c := range res.Causes {
		ch <- prometheus.MustNewConstMetric(rootCauseDesc, prometheus.GaugeValue, 1, c.Cause, string(c.Severity), c.Subject)
		ch <- prometheus.MustNewConstMetric(rootCauseAffectedDesc, prometheus.GaugeValue, float64(len(c.Affected)), c.Cause, string(c.Severity), c.Subject)
	}
}

// unixSeconds is t as a Unix time in seconds, whole for whole-second times.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
