package diagnosis

import (
	"fmt"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// cnameFindings: an expected SPN whose host is a DNS alias. A Windows client
// resolves the alias and asks for the SPN of the canonical host (MIT
// clients too, unless dns_canonicalize_hostname = false); if the service's
// account does not hold that SPN, the client gets no ticket (NTLM fallback)
// or a ticket for another account (KRB_AP_ERR_MODIFIED). When the canonical
// host's SPN sits on the right account, the alias is fine.
func cnameFindings(in *input) []Finding {
	var out []Finding
	for _, c := range in.snap.CanonicalSPNs {
		if c.LookupError != "" || c.ExpectedAccount == "" {
			continue // unknown stays unknown
		}
		if len(c.Holders) == 1 && in.sameAccount(c.Holders[0], c.ExpectedAccount) {
			continue
		}
		out = append(out, in.cnameSPN(c))
	}
	return out
}

// aliasJudged: the expected SPN's host is an alias whose requested SPN the
// cname rule judges, so the alias SPN itself is not what clients ask for.
func (in *input) aliasJudged(target, spn string) bool {
	for _, c := range in.snap.CanonicalSPNs {
		if c.Target == target && strings.EqualFold(c.SPN, spn) && c.LookupError == "" && c.ExpectedAccount != "" {
			return true
		}
	}
	return false
}

// requestedJudged: an SPN the KDC probe asked for in place of an alias SPN,
// judged by the cname rule.
func (in *input) requestedJudged(spn string) bool {
	for _, c := range in.snap.CanonicalSPNs {
		if strings.EqualFold(c.Requested, spn) && c.LookupError == "" && c.ExpectedAccount != "" {
			return true
		}
	}
	return false
}

func (in *input) cnameSPN(c facts.CanonicalSPN) Finding {
	sev := Warning
	if in.expectsKerberos(c.Target) {
		sev = Critical
	}
	f := Finding{
		Check: "spn_cname_mismatch", Severity: sev, Target: c.SPN, Instance: in.group(c.Target),
		Subject: in.accountSubject(c.ExpectedAccount),
		Summary: fmt.Sprintf("Clients reaching %s through the alias %s ask for %s, which %s", c.Target, c.Alias, c.Requested, describeHolders(c.Holders, c.ExpectedAccount)),
	}
	consequence := "they get no ticket and fall back to NTLM, whose credentials cannot be delegated to a second hop"
	if len(c.Holders) > 0 {
		consequence = "they get a ticket encrypted for another account, which the service cannot decrypt (KRB_AP_ERR_MODIFIED), and fall back to NTLM or fail"
	}
	f.Detail = fmt.Sprintf("%s is a DNS alias (CNAME) of %s. A Windows client resolves the alias and asks for a ticket for the canonical host's SPN, %s, not for %s. The service runs as %s, but %s holds %s: %s.",
		c.Alias, c.CanonicalHost, c.Requested, c.SPN, c.ExpectedAccount, orDefault(strings.Join(c.Holders, ", "), "nobody"), c.Requested, consequence)
	f.Fix = fmt.Sprintf("Replace the CNAME %s with an A record (the load balancer's or the service's address): clients then ask for %s, which belongs on the service's shared account %s. Prefer this: %s is a machine's own name, whose SPNs belong to that machine, and the alias may later point elsewhere. Only if %s is a name dedicated to this service, register %s on %s instead.",
		c.Alias, c.SPN, c.ExpectedAccount, c.CanonicalHost, c.CanonicalHost, c.Requested, c.ExpectedAccount)
	f.Script = []string{
		"# fill in the address of the service or its load balancer, then run both lines together:",
		fmt.Sprintf("# Remove-DnsServerResourceRecord -ZoneName %s -RRType CName -Name %s -Force", psQuote(zoneOf(c.Alias)), psQuote(firstLabel(c.Alias))),
		fmt.Sprintf("# Add-DnsServerResourceRecordA -ZoneName %s -Name %s -IPv4Address <address>", psQuote(zoneOf(c.Alias)), psQuote(firstLabel(c.Alias))),
		fmt.Sprintf("# or, only if %s serves this service alone: %s", c.CanonicalHost, setspn("-S", c.Requested, c.ExpectedAccount)),
	}
	if c.ExpectedAccount != "" {
		if held, _ := in.spnHolders(c.SPN); len(held) == 0 {
			f.Script = append(f.Script, setspn("-S", c.SPN, c.ExpectedAccount)+"  # the alias's own SPN, for clients that then ask for it")
		}
	}
	return f
}

func describeHolders(holders []string, expected string) string {
	switch len(holders) {
	case 0:
		return "no account holds"
	case 1:
		return "is held by " + holders[0] + ", not " + expected
	}
	return "several accounts hold"
}
