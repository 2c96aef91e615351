package diagnosis

import (
	"strings"
	"testing"
	"time"

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

// A DC skipped for lack of time may answer: another DC of its domain that
// refused is a warning about that DC, not a domain out of reach, and the
// SQL findings do not blame the domain's DCs either.
func TestSkippedDCDoesNotMakeDomainUnreachable(t *testing.T) {
	cfg, snap := healthyWorld()
	snap.DCs = []facts.DomainController{
		{Domain: "corp.test", Address: "dc1.corp.test", Error: "dial tcp 127.0.0.1:389: connect: connection refused"},
		{Domain: "corp.test", Address: "dc2.corp.test", Skipped: facts.SkippedDeadline},
	}
	var got []string
	for _, f := range Evaluate(cfg, snap) {
		if strings.HasPrefix(f.Check, "dc_") {
			got = append(got, f.Check+" "+string(f.Severity)+" "+f.Target+" subject="+f.Subject)
		}
	}
	if want := "dc_unreachable warning dc1.corp.test subject="; strings.Join(got, "\n") != want {
		t.Errorf("findings:\n%s\nwant only:\n%s", strings.Join(got, "\n"), want)
	}
	for _, c := range Causes(Evaluate(cfg, snap)) {
		if strings.EqualFold(c.Subject, "corp.test") {
			t.Errorf("cause %s has the whole domain as its subject: %+v", c.Key(), c)
		}
	}

	// Every DC refused: the domain is out of reach (the rule still fires).
	snap.DCs[1] = facts.DomainController{Domain: "corp.test", Address: "dc2.corp.test", Error: "connection refused"}
	for _, f := range Evaluate(cfg, snap) {
		if f.Check == "dc_unreachable" && f.Severity != Critical {
			t.Errorf("both DCs refused: %s %s is %s, want critical", f.Check, f.Target, f.Severity)
		}
	}
}

// Blaming the exporter's own clock needs every DC's clock: one skipped for
// lack of time may agree with the exporter, so each drifted DC is reported
// as itself.
func TestSkippedDCDoesNotBlameExporterClock(t *testing.T) {
	cfg, snap := healthyWorld()
	off := func(addr string) facts.DomainController {
		return facts.DomainController{Domain: "corp.test", Address: addr, Up: true, NTPMeasured: true, NTPSkew: 10 * time.Minute}
	}
	snap.DCs = []facts.DomainController{off("dc1.corp.test"), off("dc2.corp.test"),
		{Domain: "corp.test", Address: "dc3.corp.test", Skipped: facts.SkippedDeadline}}
	subjects := func() []string {
		var out []string
		for _, f := range Evaluate(cfg, snap) {
			if f.Check == "clock_skew_dc" {
				out = append(out, f.Target+" subject="+f.Subject)
			}
		}
		return out
	}
	if got, want := strings.Join(subjects(), "\n"), "dc1.corp.test subject=dc1.corp.test\ndc2.corp.test subject=dc2.corp.test"; got != want {
		t.Errorf("with dc3 skipped, clock findings:\n%s\nwant:\n%s", got, want)
	}
	// Every DC measured and off the same way: the exporter's host drifted.
	snap.DCs[2] = off("dc3.corp.test")
	for _, s := range subjects() {
		if !strings.HasSuffix(s, "subject=the exporter's host") {
			t.Errorf("every DC off the same way: %s, want the exporter's host", s)
		}
	}
}
