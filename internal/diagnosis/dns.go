package diagnosis

import (
	"fmt"
	"net"
	"strings"
)

// dnsFindings: a host's name must resolve, and each of its addresses must
// resolve back to it, or clients that canonicalise names ask for a ticket
// to another host's SPN.
func dnsFindings(in *input) []Finding {
	var out []Finding
	for _, h := range in.snap.DNS {
		group := in.hostGroup(h.Host)
		if h.ForwardError != "" {
			out = append(out, dnsForwardFailed(h.Host, h.ForwardError, h.NotFound, group))
			continue
		}
		if h.ReverseMatches {
			continue
		}
		// An alias's addresses belong to its canonical host: their PTR
		// records must name that host, not the alias.
		owner := h.NameBehind()
		var wrong, missing []string
		var script []string
		for _, addr := range h.Addresses {
			names := h.PTR[addr]
			if len(names) == 0 {
				missing = append(missing, addr)
				script = append(script, ptrScript(addr, owner, nil, false)...)
				continue
			}
			if others := otherHosts(names, owner); len(others) > 0 {
				wrong = append(wrong, fmt.Sprintf("%s → %s", addr, strings.Join(trimDots(names), ", ")))
				script = append(script, ptrScript(addr, owner, others, containsHost(names, owner))...)
			}
		}
		switch {
		case len(wrong) > 0:
			out = append(out, Finding{
				Check: "dns_reverse_mismatch", Severity: Warning, Target: h.Host, Instance: group,
				Summary: fmt.Sprintf("The reverse lookup of %s names another host", h.Host),
				Detail:  fmt.Sprintf("%s resolves to %s, but the PTR records say %s. Clients that canonicalise the server name by reverse lookup (MIT Kerberos with rdns, some drivers and tools) build the SPN from the other name (with several PTR records, from whichever comes first) and get no ticket or a ticket for the wrong service: NTLM fallback or KRB_AP_ERR_MODIFIED.", h.Host, strings.Join(h.Addresses, ", "), strings.Join(wrong, "; ")),
				Fix:     fmt.Sprintf("Make every address of %s point back to it (and remove stale PTR records of former names).", h.Host),
				Script:  script,
			})
		case len(missing) > 0 || h.ReverseError != "":
			detail := fmt.Sprintf("No PTR record names %s for %s", h.Host, orDefault(strings.Join(missing, ", "), strings.Join(h.Addresses, ", ")))
			if h.ReverseError != "" {
				detail += " (" + h.ReverseError + ")"
			}
			if len(script) == 0 {
				for _, addr := range h.Addresses {
					script = append(script, ptrScript(addr, owner, nil, false)...)
				}
			}
			out = append(out, Finding{
				Check: "dns_reverse_missing", Severity: Warning, Target: h.Host, Instance: group,
				Summary: fmt.Sprintf("%s has no reverse lookup", h.Host),
				Detail:  detail + ". Clients and tools that canonicalise names by reverse lookup (ping -a, MIT Kerberos with rdns) cannot find the FQDN the SPN is built from.",
				Fix:     fmt.Sprintf("Add a PTR record for each address of %s in its reverse zone.", h.Host),
				Script:  script,
			})
		}
	}
	return out
}

// dnsForwardFailed: a name that does not exist is critical; a lookup that
// failed otherwise (timeout, server failure) says nothing certain about the
// name and is a warning.
func dnsForwardFailed(host, lookupErr string, notFound bool, group string) Finding {
	f := Finding{
		Check: "dns_forward_failed", Severity: Critical, Target: host, Instance: group,
		Summary: fmt.Sprintf("%s does not resolve", host),
		Detail:  fmt.Sprintf("Looking up %s failed (%s). Clients cannot connect by that name, and the SPN built from it is useless to them.", host, lookupErr),
		Fix:     fmt.Sprintf("Add (or repair) the A record of %s in the domain's DNS zone.", host),
		Script:  []string{fmt.Sprintf("# Add-DnsServerResourceRecordA -ZoneName %s -Name %s -IPv4Address <address of %s>", psQuote(zoneOf(host)), psQuote(firstLabel(host)), host)},
	}
	if !notFound {
		f.Severity = Warning
		f.Summary = fmt.Sprintf("The exporter could not look %s up", host)
		f.Detail = fmt.Sprintf("Looking up %s failed (%s): the DNS server did not give an answer, so the exporter cannot tell whether the name exists. Clients that meet the same failure cannot connect by that name.", host, lookupErr)
		f.Fix = "Check that the DNS servers the exporter asks (dns.servers, or the system resolver) answer, and that they serve the domain's zone."
		f.Script = nil
	}
	return f
}

// ptrScript makes addr's PTR name host: stale names are removed, and the
// host's own record added unless present. The /24 reverse zone is a guess,
// said so in the script.
func ptrScript(addr, host string, stale []string, present bool) []string {
	ip := net.ParseIP(addr).To4()
	if ip == nil {
		return []string{fmt.Sprintf("# add a PTR record for %s naming %s in its ip6.arpa zone", addr, host)}
	}
	zone := fmt.Sprintf("%d.%d.%d.in-addr.arpa", ip[2], ip[1], ip[0])
	name := fmt.Sprint(ip[3])
	var out []string
	for _, s := range stale {
		out = append(out, fmt.Sprintf("Remove-DnsServerResourceRecord -ZoneName %s -RRType Ptr -Name %s -RecordData %s -Force  # stale name of %s", psQuote(zone), psQuote(name), psQuote(s+"."), addr))
	}
	if present {
		return out
	}
	return append(out, fmt.Sprintf("Add-DnsServerResourceRecordPtr -ZoneName %s -Name %s -PtrDomainName %s  # adjust the zone if it is not a /24", psQuote(zone), psQuote(name), psQuote(strings.TrimSuffix(host, ".")+".")))
}

// otherHosts are the PTR names that are not host.
func otherHosts(names []string, host string) []string {
	var out []string
	for _, n := range names {
		if !containsHost([]string{n}, host) {
			out = append(out, strings.TrimSuffix(n, "."))
		}
	}
	return out
}

func containsHost(names []string, host string) bool {
	for _, n := range names {
		if strings.EqualFold(strings.TrimSuffix(n, "."), strings.TrimSuffix(host, ".")) {
			return true
		}
	}
	return false
}

func trimDots(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSuffix(n, ".")
	}
	return out
}

func firstLabel(host string) string {
	l, _, _ := strings.Cut(host, ".")
	return l
}

func zoneOf(host string) string {
	_, z, _ := strings.Cut(strings.TrimSuffix(host, "."), ".")
	return z
}

// hostGroup is the instance or service a host name serves, "" if none or several.
func (in *input) hostGroup(host string) string {
	var groups []string
	for _, inst := range in.cfg.SQLInstances {
		if strings.EqualFold(inst.Host, host) || strings.EqualFold(inst.AGListener, host) {
			groups = append(groups, inst.Name)
		}
	}
	for _, s := range in.cfg.Services {
		for _, h := range s.Hosts {
			if strings.EqualFold(h, host) {
				groups = append(groups, s.Name)
			}
		}
	}
	if len(groups) == 1 {
		return groups[0]
	}
	return ""
}

// dcFindings: a DC the exporter cannot reach; critical when no DC of its
// domain answers (see noDCAnswered).
func dcFindings(in *input) []Finding {
	var out []Finding
	for _, dc := range in.snap.DCs {
		if dc.Up {
			continue
		}
		f := Finding{
			Check: "dc_unreachable", Severity: Warning, Target: dc.Address,
			Summary: fmt.Sprintf("Domain controller %s does not answer", dc.Address),
			Detail:  fmt.Sprintf("The exporter could not reach %s over LDAP (%s). The directory checks of %s use the other domain controllers; clients that the DC locator sends to this one cannot get tickets from it until it answers.", dc.Address, orDefault(dc.Error, "no answer"), dc.Domain),
			Fix:     fmt.Sprintf("Check that %s runs and that LDAP (389/636) and Kerberos (88) reach it from the exporter's network.", dc.Address),
		}
		if in.noDCAnswered(dc.Domain) {
			f.Severity, f.Subject = Critical, in.canonicalDomain(dc.Domain) // the whole domain is out of reach
			f.Detail = fmt.Sprintf("The exporter could not reach %s over LDAP (%s), nor any other domain controller of %s: the SPN, delegation and account checks of that domain are silent, and if clients cannot reach them either, nobody gets Kerberos tickets.", dc.Address, orDefault(dc.Error, "no answer"), dc.Domain)
		}
		out = append(out, f)
	}
	return out
}
