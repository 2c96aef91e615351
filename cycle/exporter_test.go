package cycle

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// TestExporterDescribesEveryMetricItSends: Describe sends every collector's
// descriptors and the exporter's own, so a pedantic registry checks each
// metric a cycle yields against them (and would reject an undeclared one).
func TestExporterDescribesEveryMetricItSends(t *testing.T) {
	res := fleetResult(2)
	res.Findings = []diagnosis.Finding{{Check: "spn_missing", Severity: diagnosis.Critical, Target: "sql000"}}
	e := &Exporter{last: func() *Result { return res }, collectors: collector.Enabled()}

	described := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() { e.Describe(ch); close(ch) }()
	for d := range ch {
		described[d.String()] = true
	}
	for _, want := range []*prometheus.Desc{findingDesc, collectorSuccessDesc} {
		if !described[want.String()] {
			t.Errorf("Describe does not send %s", want)
		}
	}
	if len(described) < len(ownDescs)+20 {
		t.Errorf("Describe sent %d descriptors, want the exporter's own and every collector's", len(described))
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("a pedantic registry rejects the cycle's metrics: %v", err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"kerberos_spn_present", "kerberos_sql_up", "kerberos_linked_server_self_mapped", "kerberos_finding"} {
		if !names[want] {
			t.Errorf("%s was not gathered (got %d families)", want, len(mfs))
		}
	}
}
