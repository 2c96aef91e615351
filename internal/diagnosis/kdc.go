package diagnosis

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krberr"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
	"github.com/kerberos-exporter/kerberos_exporter/internal/uac"
)

// kdcFindings judges the exporter's own service-ticket requests. Error 7 on
// an SPN the directory checks already report missing or duplicated adds
// nothing (spn_missing and spn_duplicate quote it); error 37 is reported
// once per realm unless a DC clock finding already covers it.
func kdcFindings(in *input) []Finding {
	tickets := append([]facts.TicketProbe(nil), in.snap.Tickets...)
	sort.SliceStable(tickets, func(i, j int) bool { return spn.Key(tickets[i].SPN) < spn.Key(tickets[j].SPN) })

	var out []Finding
	skewed := map[string][]string{}      // realm → SPNs refused for skew
	unreachable := map[string][]string{} // realm → SPNs whose request got no KRB-ERROR
	noAES := map[string][]string{}       // holding account → SPNs refused for encryption type
	for _, t := range tickets {
		if t.OK {
			continue
		}
		realm := orDefault(t.Realm, in.cfg.Kerberos.Realm)
		switch t.ErrorCode {
		case krberr.CodePrincipalUnknown:
			if in.requestedJudged(t.SPN) {
				continue // the canonical SPN of an alias: spn_cname_mismatch says it
			}
			holders, known := in.spnHolders(t.SPN)
			if known && len(holders) != 1 {
				continue
			}
			out = append(out, in.kdcPrincipalUnknown(t, holders))
		case krberr.CodeSkew:
			skewed[realm] = append(skewed[realm], t.SPN)
		case krberr.CodeETypeNoSupp:
			holders, _ := in.spnHolders(t.SPN)
			if len(holders) != 1 {
				noAES[t.SPN] = append(noAES[t.SPN], t.SPN)
				continue
			}
			if a := in.account(holders[0]); a != nil && uac.EncTypes(a.SupportedEncTypes).WithoutAES() {
				continue // account_rc4_only reports it, made critical by this error
			}
			noAES[holders[0]] = append(noAES[holders[0]], t.SPN)
		case 0:
			unreachable[realm] = append(unreachable[realm], t.SPN)
		default:
			out = append(out, in.kdcTicketFailed(t))
		}
	}
	for _, realm := range sortedKeys(skewed) {
		if in.dcClockReported(realm) {
			continue
		}
		spns := skewed[realm]
		out = append(out, Finding{
			Check: "kdc_clock_skew", Severity: Critical, Target: realm,
			Summary: fmt.Sprintf("The KDC of %s refuses the exporter's ticket requests for clock skew", realm),
			Detail:  fmt.Sprintf("The KDC answered KRB_AP_ERR_SKEW (error 37) for %s: the exporter's clock and the KDC's differ by more than the tolerance. %s", listing(spns), skewConsequence),
			Fix:     "Resynchronise the exporter's host and the domain controllers with the domain time hierarchy.",
			Script:  []string{"w32tm /resync /rediscover  # on the exporter's host, and on the DCs if they drifted"},
		})
	}
	for _, realm := range sortedKeys(unreachable) {
		spns := unreachable[realm]
		out = append(out, Finding{
			Check: "kdc_unreachable", Severity: Warning, Target: realm,
			Summary: fmt.Sprintf("The exporter could not ask the KDC of %s for service tickets", realm),
			Detail:  fmt.Sprintf("The ticket requests for %s got no answer from a KDC (no KRB-ERROR): the KDC checks are silent. Clients that cannot reach a KDC either cannot use Kerberos at all.", listing(spns)),
			Fix:     "Check that the exporter reaches the domain controllers on port 88 (TCP and UDP) and that its krb5 configuration names them.",
		})
	}
	for _, holder := range sortedKeys(noAES) {
		spns := noAES[holder]
		out = append(out, Finding{
			Check: "account_no_aes_keys", Severity: Critical, Target: holder, Instance: in.accountGroup(holder), Subject: in.accountSubject(holder),
			Summary: fmt.Sprintf("The KDC has no usable key for %s (KDC_ERR_ETYPE_NOSUPP)", holder),
			Detail:  fmt.Sprintf("The exporter's ticket requests for %s failed with KDC_ERR_ETYPE_NOSUPP (error 14): the account holding them has no key of a type the KDC and the client share. Typically its password was last set before the domain could make AES keys, so it has only RC4 keys, and RC4 is not allowed. Clients fall back to NTLM.", listing(spns)),
			Fix:     "Reset the account's password (and give the service the new one; a gMSA does this itself), so that AES keys are made, and allow AES on it.",
			Script:  in.noAESScript(holder),
		})
	}
	return out
}

func (in *input) noAESScript(holder string) []string {
	if strings.Contains(holder, "/") { // an SPN whose holder is unknown
		return nil
	}
	return []string{
		in.resetLine(holder),
		in.setAD(holder) + " -KerberosEncryptionType AES128,AES256",
	}
}

func (in *input) kdcPrincipalUnknown(t facts.TicketProbe, holders []string) Finding {
	f := Finding{
		Check: "kdc_principal_unknown", Target: t.SPN, Instance: in.group(t.Target),
		Summary: fmt.Sprintf("The KDC does not know SPN %s (KDC_ERR_S_PRINCIPAL_UNKNOWN)", t.SPN),
	}
	f.Severity = Warning
	if len(holders) == 1 {
		f.Cause, f.Subject = "kdc_refuses_tickets", orDefault(t.Realm, in.cfg.Kerberos.Realm)
		f.Detail = fmt.Sprintf("The directory shows %s on %s, but the KDC that answered the exporter says it does not know it (error 7). Either the SPN has not replicated to that DC yet, or it is held in another domain whose KDC the request was not referred to. Clients asking that KDC fall back to NTLM.", t.SPN, holders[0])
		f.Fix = "Check replication to every DC (repadmin /syncall, or wait for it) and which domain holds the SPN."
		return f
	}
	if in.expectsKerberos(t.Target) && !isSecondarySQLSPN(t.SPN) {
		f.Severity = Critical
	}
	// a missing SPN whose account the directory checks could not name
	f.Cause = "service_account_spns"
	f.Subject = orDefault(in.directoryAccount(t.Target), t.Target)
	if f.Subject != t.Target {
		f.Subject = in.accountSubject(f.Subject)
	}
	f.Detail = fmt.Sprintf("The KDC answered KDC_ERR_S_PRINCIPAL_UNKNOWN (error 7) for %s: no account holds it as far as the KDC knows. Clients get no ticket and silently fall back to NTLM, and their credentials cannot be delegated to a linked server (%s).", t.SPN, anonymousLogon)
	f.Fix = "Register the SPN on the account the service runs as with setspn -S (the exporter's directory checks did not look it up, so it cannot name the account)."
	f.Script = []string{"# setspn -S " + psArg(t.SPN) + " DOMAIN\\<service account>"}
	return f
}

func (in *input) kdcTicketFailed(t facts.TicketProbe) Finding {
	name := orDefault(t.ErrorName, krberr.Name(t.ErrorCode))
	// The client of this request is the exporter's own principal.
	detail := fmt.Sprintf("The KDC refused the exporter a ticket for %s with %s (error %d): %s", t.SPN, name, t.ErrorCode, krberr.Meaning(t.ErrorCode))
	if t.Error != "" {
		detail += ". " + t.Error
	}
	var causedBy []FindingRef
	if holders, _ := in.spnHolders(t.SPN); len(holders) == 1 {
		if a := in.account(holders[0]); a != nil {
			causedBy = append(causedBy, ref("account_disabled", a.Name), ref("account_locked", a.Name), ref("account_rc4_only", a.Name), ref("account_no_aes_keys", a.Name))
		}
	}
	return Finding{
		Subject: orDefault(t.Realm, in.cfg.Kerberos.Realm), CausedBy: causedBy,
		Check: "kdc_ticket_failed", Severity: Warning, Target: t.SPN, Instance: in.group(t.Target),
		Summary: fmt.Sprintf("The KDC refused a ticket for %s: %s", t.SPN, name),
		Detail:  detail + ".",
		Fix:     "Read the KDC's reason above; errors about the exporter's own principal are fixed in its kerberos configuration, the others on the service's account.",
	}
}

// dcClockReported: some DC of the realm's domain differs from the exporter
// by at least the warning threshold, so clock_skew_dc already says it.
func (in *input) dcClockReported(realm string) bool {
	warn, _ := in.skewThresholds()
	domain := in.realmDomain(realm)
	for _, d := range in.dcSkews() {
		if in.canonicalDomain(d.dc.Domain) == domain && abs(d.skew) >= warn {
			return true
		}
	}
	return false
}
