package diagnosis

import (
	"fmt"
	"strings"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// kerberosMaxSkew is the default tolerance of Kerberos (the "Maximum
// tolerance for computer clock synchronization" policy).
const kerberosMaxSkew = 5 * time.Minute

const skewConsequence = "Kerberos refuses tickets and authenticators whose time differs from the receiver's by more than 5 minutes (300 s by default): past that, the KDC answers KRB_AP_ERR_SKEW (error 37) and logons fail or fall back to NTLM."

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// skewSeverity applies the configured thresholds; ok is false below warning.
func (in *input) skewSeverity(skew time.Duration) (Severity, bool) {
	warn, crit := in.skewThresholds()
	switch a := abs(skew); {
	case a >= crit:
		return Critical, true
	case a >= warn:
		return Warning, true
	}
	return "", false
}

// clockFindings compares the clocks of the DCs, the SQL instances and the
// two ends of each linked server.
func clockFindings(in *input) []Finding {
	var out []Finding
	dcSkews := in.dcSkews()
	warn, _ := in.skewThresholds()
	// Blaming the exporter's host needs every DC's clock: one skipped for
	// lack of time may agree with the exporter.
	allDCsOff := len(dcSkews) > 0 && len(in.dcSkipped) == 0
	sign := 0
	for _, d := range dcSkews {
		s := 1
		if d.skew < 0 {
			s = -1
		}
		if abs(d.skew) < warn || (sign != 0 && s != sign) {
			allDCsOff = false
		}
		sign = s
	}
	for _, d := range dcSkews {
		sev, ok := in.skewSeverity(d.skew)
		if !ok {
			continue
		}
		detail := fmt.Sprintf("%s's clock is %s the exporter's (by %s). %s", d.dc.Address, fmtSkew(d.skew), d.source, skewConsequence)
		where := d.dc.Address
		if allDCsOff && len(dcSkews) > 1 {
			detail += " Every DC differs from the exporter in the same way: the exporter's own host has probably drifted, and its ticket requests are the ones at risk."
			where = "the exporter's host"
		} else {
			detail += " If the DC drifted, every client and server that it answers is at risk; if the exporter's host drifted, only its own measurements are."
		}
		out = append(out, Finding{
			Check: "clock_skew_dc", Severity: sev, Target: d.dc.Address, Subject: where,
			Summary: fmt.Sprintf("%s's clock is %s the exporter's", d.dc.Address, fmtSkew(d.skew)),
			Detail:  detail,
			Fix:     fmt.Sprintf("Resynchronise %s with the domain time hierarchy (the PDC emulator should follow a reliable external source).", where),
			Script:  []string{"w32tm /resync /rediscover  # on " + where},
		})
	}
	for _, inst := range in.cfg.SQLInstances {
		s := in.snap.SQL[inst.Name]
		if s == nil || !s.Up || !s.ClockMeasured {
			continue
		}
		sev, ok := in.skewSeverity(s.ClockSkew)
		if !ok {
			continue
		}
		detail := fmt.Sprintf("%s's clock is %s the exporter's. %s", inst.Name, fmtSkew(s.ClockSkew), skewConsequence)
		if dc, ok := in.domainDCSkew(inst.Domain, dcSkews); ok {
			rel := s.ClockSkew - dc
			detail += fmt.Sprintf(" Against the domain controllers it is %s theirs", fmtSkew(rel))
			if abs(rel) > kerberosMaxSkew {
				detail += ": beyond the tolerance, clients' tickets for it are refused now."
			} else {
				detail += "."
			}
		}
		out = append(out, Finding{
			Check: "clock_skew_sql", Severity: sev, Target: inst.Name, Instance: inst.Name, Subject: orDefault(inst.Host, inst.Name),
			Summary: fmt.Sprintf("%s's clock is %s the exporter's", inst.Name, fmtSkew(s.ClockSkew)),
			Detail:  detail,
			Fix:     fmt.Sprintf("Resynchronise %s's host with the domain time hierarchy.", inst.Name),
			Script:  []string{"w32tm /resync /rediscover  # on " + orDefault(inst.Host, inst.Name)},
		})
	}
	return append(out, in.hopClockFindings()...)
}

// hopClockFindings compares the two ends of each linked server, once per
// back end (several linked servers may reach the same one), and only when
// neither end is already reported against the exporter by clock_skew_sql.
func (in *input) hopClockFindings() []Finding {
	var out []Finding
	for _, name := range sortedKeys(in.snap.LinkedServers) {
		ls := in.snap.LinkedServers[name]
		if !ls.Readable || in.sqlClockReported(name) {
			continue
		}
		seen := map[string]bool{}
		for _, sv := range ls.Servers {
			back := orDefault(sv.TargetInstance, dataSourceHost(sv.DataSource))
			skew, ok := in.hopSkew(name, sv)
			if !ok || seen[strings.ToLower(back)] || in.sqlClockReported(sv.TargetInstance) {
				continue
			}
			sev, ok := in.skewSeverity(skew)
			if !ok {
				continue
			}
			seen[strings.ToLower(back)] = true
			out = append(out, Finding{
				Check: "clock_skew_hop", Severity: sev, Target: linkTarget(name, sv.Name), Instance: in.group(name), Subject: back,
				Summary: fmt.Sprintf("%s's clock is %s %s's (linked server %s)", back, fmtSkew(skew), name, sv.Name),
				Detail:  fmt.Sprintf("The two ends of linked server %s differ by %s. %s On a second hop that means %s.", sv.Name, abs(skew).Round(time.Second), skewConsequence, anonymousLogon),
				Fix:     "Resynchronise both hosts with the domain time hierarchy.",
				Script:  []string{"w32tm /resync /rediscover  # on " + name + " and on " + back},
			})
		}
	}
	return out
}

// sqlClockReported: clock_skew_sql reports this instance.
func (in *input) sqlClockReported(instance string) bool {
	s := in.snap.SQL[instance]
	if s == nil || !s.Up || !s.ClockMeasured || in.instance(instance) == nil {
		return false
	}
	_, ok := in.skewSeverity(s.ClockSkew)
	return ok
}

type dcSkew struct {
	dc     facts.DomainController
	skew   time.Duration
	source string
}

// dcSkews are the DCs' measured skews, SNTP preferred (LDAP's currentTime
// has one-second resolution).
func (in *input) dcSkews() []dcSkew {
	var out []dcSkew
	for _, dc := range in.snap.DCs {
		switch {
		case !dc.Up:
		case dc.NTPMeasured:
			out = append(out, dcSkew{dc, dc.NTPSkew, "SNTP"})
		case dc.LDAPMeasured:
			out = append(out, dcSkew{dc, dc.LDAPSkew, "LDAP currentTime"})
		}
	}
	return out
}

// domainDCSkew is the first measured skew of a DC of the domain.
func (in *input) domainDCSkew(domain string, skews []dcSkew) (time.Duration, bool) {
	for _, d := range skews {
		if in.canonicalDomain(d.dc.Domain) == in.canonicalDomain(domain) {
			return d.skew, true
		}
	}
	return 0, false
}

// hopSkew is the back end's clock minus the middle server's: measured over
// the hop when it worked, else derived from both instances' skews against
// the exporter.
func (in *input) hopSkew(instance string, sv facts.LinkedServer) (time.Duration, bool) {
	if sv.HopTested && sv.HopOK {
		return sv.HopClockSkew, true
	}
	a, b := in.snap.SQL[instance], in.snap.SQL[sv.TargetInstance]
	if sv.TargetInstance == "" || a == nil || b == nil || !a.ClockMeasured || !b.ClockMeasured {
		return 0, false
	}
	return b.ClockSkew - a.ClockSkew, true
}

// realmDomain maps a Kerberos realm to its configured domain's DNS name.
func (in *input) realmDomain(realm string) string {
	for _, d := range in.cfg.Domains {
		if strings.EqualFold(d.Name, realm) {
			return strings.ToLower(d.Name)
		}
	}
	return strings.ToLower(realm)
}
