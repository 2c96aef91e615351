package diagnosis

import (
	"strings"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// A check the collector ran out of time for is unknown: no finding of any
// rule, whatever else the snapshot says, while the same fault on a host
// that was checked keeps its severity.
func TestSkippedChecksRaiseNothing(t *testing.T) {
	cfg, snap := healthyWorld()
	cfg.SQLInstances = append(cfg.SQLInstances, config.SQLInstance{Name: "sqlz", Host: "sqlz.corp.test"})
	for i := range snap.DNS {
		snap.DNS[i] = facts.HostDNS{Host: snap.DNS[i].Host, Skipped: facts.SkippedDeadline}
	}
	snap.DNS = append(snap.DNS, facts.HostDNS{Host: "sqlz.corp.test", ForwardError: "lookup sqlz.corp.test: no such host", NotFound: true})
	for i := range snap.DCs {
		snap.DCs[i] = facts.DomainController{Domain: snap.DCs[i].Domain, Address: snap.DCs[i].Address, Skipped: facts.SkippedDeadline}
	}
	for i := range snap.Tickets {
		snap.Tickets[i] = facts.TicketProbe{Target: snap.Tickets[i].Target, SPN: snap.Tickets[i].SPN, Skipped: facts.SkippedDeadline,
			Error: "service ticket for " + snap.Tickets[i].SPN + ": not asked: context deadline exceeded"}
	}
	if len(snap.Tickets) == 0 || len(snap.DCs) == 0 {
		t.Fatal("the healthy world has no tickets or DCs to skip")
	}
	var got []string
	for _, f := range Evaluate(cfg, snap) {
		if strings.HasPrefix(f.Check, "dns_") || strings.HasPrefix(f.Check, "kdc_") || strings.HasPrefix(f.Check, "dc_") || strings.HasPrefix(f.Check, "clock_") {
			got = append(got, f.Check+" "+string(f.Severity)+" "+f.Target)
		}
	}
	if want := "dns_forward_failed critical sqlz.corp.test"; strings.Join(got, "\n") != want {
		t.Errorf("findings:\n%s\nwant only:\n%s", strings.Join(got, "\n"), want)
	}
}
