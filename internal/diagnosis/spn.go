package diagnosis

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

// Messages quoted in details, as users meet them.
const (
	anonymousLogon = `"Login failed for user 'NT AUTHORITY\ANONYMOUS LOGON'" (error 18456)`
	sspiContext    = `"The target principal name is incorrect. Cannot generate SSPI context."`
)

// spnFindings judges each expected SPN (missing, on the wrong account, held
// by several accounts) and the forest-wide duplicates beyond them.
func spnFindings(in *input) []Finding {
	var out []Finding
	expected := map[string]bool{}
	for _, e := range in.snap.SPNs {
		if e.LookupError != "" {
			continue // no verdict without an answer; the collector's status says why
		}
		expected[spn.Key(e.SPN)] = true
		holders, _ := in.spnHolders(e.SPN)
		switch {
		case len(holders) <= 1 && in.aliasJudged(e.Target, e.SPN):
			// its host is a DNS alias: clients ask for the canonical host's
			// SPN, which spn_cname_mismatch judges
		case len(holders) == 0:
			out = append(out, in.spnMissing(e))
		case len(holders) > 1:
			out = append(out, in.spnDuplicate(e.SPN, e.ExpectedAccount, holders, e.Target, true))
		case e.ExpectedAccount != "" && !in.sameAccount(holders[0], e.ExpectedAccount):
			out = append(out, in.spnWrongAccount(e, holders[0]))
		}
	}
	if d := in.snap.Duplicates; d != nil && d.Scanned {
		for _, dup := range d.Top {
			if !expected[spn.Key(dup.SPN)] && len(dup.Accounts) > 1 {
				out = append(out, in.spnDuplicate(dup.SPN, "", dup.Accounts, "", false))
			}
		}
	}
	return out
}

// isSecondarySQLSPN: an MSSQLSvc SPN without a port, or on a short host
// name. TCP clients using the FQDN, which are most clients, never ask for it.
func isSecondarySQLSPN(name string) bool {
	p, err := spn.Parse(name)
	if err != nil || !strings.EqualFold(p.ServiceClass, "MSSQLSvc") {
		return false
	}
	return p.Port == 0 || !strings.Contains(p.Host, ".")
}

// unionAccounts merges two holder lists, case-insensitively, in order.
func unionAccounts(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range append(append([]string{}, a...), b...) {
		if k := strings.ToLower(n); !seen[k] {
			seen[k] = true
			out = append(out, n)
		}
	}
	return out
}

func (in *input) spnMissing(e facts.ExpectedSPN) Finding {
	sev := Warning
	if in.expectsKerberos(e.Target) && !isSecondarySQLSPN(e.SPN) {
		sev = Critical
	}
	detail := fmt.Sprintf("No account in the forest holds %s. A client asking the KDC for a ticket to it gets KDC_ERR_S_PRINCIPAL_UNKNOWN (error 7) and Windows silently falls back to NTLM: the connection works, but auth_scheme is NTLM, and a linked server that uses the caller's credentials fails with %s because NTLM credentials cannot be delegated.", e.SPN, anonymousLogon)
	if isSecondarySQLSPN(e.SPN) {
		detail += " Only some clients ask for this form: those on named pipes or shared memory (no port), or connecting by a short name they do not canonicalise; TCP clients that use the FQDN ask for MSSQLSvc/<FQDN>:<port>."
	}
	if in.ticketError(e.SPN) == 7 {
		detail += " The exporter's own ticket request for it failed with error 7, which confirms it."
	}
	if r := in.failedRegistration(e.Target, e.SPN); r != nil {
		detail += fmt.Sprintf(" SQL Server tried to register it at start-up and could not (error 26067, return code %s): see spn_registration_failed.", r.ReturnCode)
	}
	f := Finding{
		Check: "spn_missing", Severity: sev, Target: e.SPN, Instance: in.group(e.Target),
		Summary: fmt.Sprintf("SPN %s is not registered on any account", e.SPN),
		Detail:  detail,
	}
	switch {
	case isSecondarySQLSPN(e.SPN):
		// one decision for the domain: register these forms everywhere or not
		f.Cause, f.Subject = "spn_form_policy", in.domainSubject(e.ExpectedAccount, e.Target)
	case e.ExpectedAccount != "":
		f.Subject = in.accountSubject(e.ExpectedAccount)
	default:
		f.Subject = e.Target
	}
	if e.ExpectedAccount != "" {
		f.Fix = fmt.Sprintf("Register the SPN on %s, the account the service runs as, with setspn -S (it refuses to create a duplicate); or let SQL Server register it itself by granting its account the right to write its own SPNs, then restart it.", e.ExpectedAccount)
		f.Script = []string{setspn("-S", e.SPN, e.ExpectedAccount)}
	} else {
		f.Fix = "Register the SPN with setspn -S on the account the service runs as. The exporter does not know that account: set service_account in the configuration."
		f.Script = []string{"# setspn -S " + psArg(e.SPN) + " DOMAIN\\<service account>"}
	}
	return f
}

func (in *input) spnWrongAccount(e facts.ExpectedSPN, holder string) Finding {
	return Finding{
		Check: "spn_wrong_account", Severity: Critical, Target: e.SPN, Instance: in.group(e.Target),
		Subject: in.accountSubject(e.ExpectedAccount),
		Summary: fmt.Sprintf("SPN %s is registered on %s, not on %s that runs the service", e.SPN, holder, e.ExpectedAccount),
		Detail: fmt.Sprintf("Clients get tickets for %s encrypted with the key of %s, which the service running as %s cannot decrypt. This is worse than a missing SPN: there is no fallback to NTLM, the logon fails with KRB_AP_ERR_MODIFIED and clients see %s",
			e.SPN, holder, e.ExpectedAccount, sspiContext),
		Fix: fmt.Sprintf("Remove the SPN from %s and register it on %s.", holder, e.ExpectedAccount),
		Script: []string{
			setspn("-D", e.SPN, holder),
			setspn("-S", e.SPN, e.ExpectedAccount),
		},
	}
}

// spnDuplicate: expected is true for an SPN a configured target needs
// (critical), false for one only the forest-wide scan found (warning).
func (in *input) spnDuplicate(spn, expectedAccount string, holders []string, target string, expected bool) Finding {
	sev := Warning
	if expected {
		sev = Critical
	}
	keeper := expectedAccount
	if keeper == "" {
		var known []string
		for _, h := range holders {
			if in.isServiceAccount(h) {
				known = append(known, h)
			}
		}
		if len(known) == 1 {
			keeper = known[0]
		}
	}
	f := Finding{
		Check: "spn_duplicate", Severity: sev, Target: spn, Instance: in.group(target),
		Summary: fmt.Sprintf("SPN %s is held by %d accounts: %s", spn, len(holders), strings.Join(holders, ", ")),
		Detail: fmt.Sprintf("SPNs must be unique in the forest; when several accounts hold one, neither works properly. A Windows KDC refuses to choose (event 11, KDC_ERR_S_PRINCIPAL_UNKNOWN) and clients fall back to NTLM; a KDC that picks one account makes the service running as the other fail with KRB_AP_ERR_MODIFIED. Holders: %s.",
			strings.Join(holders, ", ")),
	}
	if keeper != "" {
		f.Subject = in.accountSubject(keeper)
	} else {
		f.Subject = strings.Join(sortedFold(holders), ", ") // the accounts that share it
	}
	if keeper == "" {
		f.Fix = "Keep the SPN on the account the service runs as and delete it from every other account (setspn -D). The exporter cannot tell which account runs it: check the service's logon account first."
		f.Script = []string{"# keep " + spn + " on the account the service runs as; delete it from the others:"}
		for _, h := range holders {
			f.Script = append(f.Script, "# setspn -D "+psArg(spn)+" "+psArg(h))
		}
		return f
	}
	f.Fix = fmt.Sprintf("Keep the SPN on %s, the account the service runs as, and delete it from the other %s.", keeper, plural(len(holders)-1, "account", "accounts"))
	kept := false
	for _, h := range holders {
		if in.sameAccount(h, keeper) {
			kept = true
			continue
		}
		f.Script = append(f.Script, setspn("-D", spn, h))
	}
	if !kept {
		f.Script = append(f.Script, setspn("-S", spn, keeper))
	}
	return f
}

// ticketError is the KRB-ERROR code of the exporter's ticket request for an
// SPN, 0 when it succeeded or was not made.
func (in *input) ticketError(name string) int32 {
	for _, t := range in.snap.Tickets {
		if spn.Equal(t.SPN, name) && !t.OK {
			return t.ErrorCode
		}
	}
	return 0
}

// failedRegistration is the instance's last start-up 26067 line for an SPN,
// nil when it registered, was not logged, or the log was not readable.
func (in *input) failedRegistration(instance, name string) *facts.SPNRegistration {
	el := in.snap.ErrorLogs[instance]
	if el == nil || !el.Readable {
		return nil
	}
	for _, r := range latestRegistrations(el) {
		if spn.Equal(r.SPN, name) && !r.Registered {
			return &r
		}
	}
	return nil
}

// latestRegistrations keeps the last line per SPN, sorted by SPN.
func latestRegistrations(el *facts.ErrorLog) []facts.SPNRegistration {
	last := map[string]facts.SPNRegistration{}
	for _, r := range el.Registrations {
		k := spn.Key(r.SPN)
		if prev, ok := last[k]; !ok || !r.Time.Before(prev.Time) {
			last[k] = r
		}
	}
	out := make([]facts.SPNRegistration, 0, len(last))
	for _, k := range sortedKeys(last) {
		out = append(out, last[k])
	}
	return out
}

// registrationFindings reads the SPN registration messages of each
// instance's last start-up. An unreadable log makes registration unknown,
// never failed; a failed registration whose SPN exists anyway (registered
// by hand) is only information.
func registrationFindings(in *input) []Finding {
	var out []Finding
	for _, name := range sortedKeys(in.snap.ErrorLogs) {
		el := in.snap.ErrorLogs[name]
		if !el.Readable {
			out = append(out, in.registrationUnknown(name, el))
			continue
		}
		var failed, absent []facts.SPNRegistration
		for _, r := range latestRegistrations(el) {
			if r.Registered {
				continue
			}
			failed = append(failed, r)
			if holders, _ := in.spnHolders(r.SPN); len(holders) == 0 {
				absent = append(absent, r)
			}
		}
		if len(failed) == 0 {
			continue
		}
		out = append(out, in.registrationFailed(name, failed, absent))
	}
	return out
}

// registrationUnknown: the log could not be read, so registration is
// unknown, never failed.
func (in *input) registrationUnknown(instance string, el *facts.ErrorLog) Finding {
	f := Finding{
		Check: "spn_registration_unknown", Severity: Info, Target: instance, Instance: in.group(instance),
		Subject: in.exporterSubject(instance),
		Summary: "SPN registration at start-up is unknown: the exporter may not read the error log",
		Fix:     "Grant the exporter's login VIEW ANY ERROR LOG (SQL Server 2022 and later) or membership of securityadmin (earlier versions), which sp_readerrorlog requires.",
	}
	reason := "the exporter may not read the error log"
	if !el.PermissionDenied && el.Error != "" {
		f.Summary = "SPN registration at start-up is unknown: the exporter could not read the error log"
		reason = "the exporter could not read the error log"
		f.Fix = "Look into the error quoted here: the log could not be read for another reason than a missing grant."
	}
	if el.Error != "" {
		reason += " (" + el.Error + ")"
	}
	f.Detail = "SQL Server logs at start-up whether it could register its SPNs (message 26059) or not (26067), but " + reason +
		". This says nothing about whether registration failed; the SPN checks still tell whether the SPNs exist."
	return f
}

func (in *input) registrationFailed(instance string, failed, absent []facts.SPNRegistration) Finding {
	spns := make([]string, len(failed))
	codes := map[string]bool{}
	for i, r := range failed {
		spns[i] = r.SPN
		codes[r.ReturnCode] = true
	}
	account := in.directoryAccount(instance)
	who := "its service account"
	if account != "" {
		who = account
	}
	detail := fmt.Sprintf("At its last start-up SQL Server could not register %s (error 26067, Windows return code %s). %s",
		listing(spns), strings.Join(sortedKeys(codes), ", "), returnCodeMeaning(sortedKeys(codes), who))
	f := Finding{Check: "spn_registration_failed", Target: instance, Instance: in.group(instance), Subject: instance}
	if account != "" {
		f.Subject = in.accountSubject(account)
	}
	if len(absent) == 0 {
		f.Severity = Info
		f.Summary = fmt.Sprintf("SQL Server could not register its %s at start-up, but %s registered by hand", plural(len(failed), "SPN", "SPNs"), plural(len(failed), "it is", "they are"))
		f.Detail = detail + " The SPNs exist, so Kerberos works; but SQL Server will not update them if its port or account changes, and the message repeats at every start-up."
		f.Fix = fmt.Sprintf("Nothing is broken. To let SQL Server manage its SPNs itself, grant %s Read/Write servicePrincipalName and \"Validated write to service principal name\" on its own account object.", who)
		return f
	}
	f.Severity = Warning
	f.Summary = fmt.Sprintf("SQL Server could not register %s at start-up and %s missing", listing(spnsOf(absent)), plural(len(absent), "it is", "they are"))
	f.Detail = detail + " Registration failure is only informational to SQL Server, and nothing else registers the SPN: clients fall back to NTLM until it is registered (see spn_missing)."
	f.Fix = fmt.Sprintf("Grant %s Read/Write servicePrincipalName and \"Validated write to service principal name\" on its own account object, then restart SQL Server so it registers its SPNs; or register them by hand with setspn -S.", who)
	if account == "" {
		f.Script = []string{
			"# the exporter does not know the service account: put its distinguished name in place of <DN>",
			"# dsacls '<DN>' /G 'SELF:RPWP;servicePrincipalName'",
			"# dsacls '<DN>' /G 'SELF:WS;Validated write to service principal name'",
		}
		return f
	}
	dn := in.accountDN(account)
	f.Script = []string{
		"dsacls " + dn + " /G 'SELF:RPWP;servicePrincipalName'",
		"dsacls " + dn + " /G 'SELF:WS;Validated write to service principal name'",
		"# then restart the SQL Server service of " + instance + " so that it registers its SPNs",
	}
	return f
}

func spnsOf(rs []facts.SPNRegistration) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.SPN
	}
	sort.Strings(out)
	return out
}

// returnCodeMeaning explains the Windows return codes of 26067.
func returnCodeMeaning(codes []string, who string) string {
	var parts []string
	for _, c := range codes {
		switch strings.ToLower(c) {
		case "0x2098":
			parts = append(parts, fmt.Sprintf("0x2098 is ERROR_DS_INSUFF_ACCESS_RIGHTS: %s lacks \"Validated write to service principal name\" on its own account object.", who))
		case "0xffffffff":
			parts = append(parts, fmt.Sprintf("0xffffffff is a generic failure, usually the same lack of permission of %s, or no domain controller reachable at start-up.", who))
		}
	}
	return strings.Join(parts, " ")
}

// psPlain are arguments PowerShell passes through unquoted.
var psPlain = regexp.MustCompile(`^[A-Za-z0-9._:/\\-]+$`)

// setspn writes one setspn command, or a comment saying why it was not
// written. setspn is a native program: PowerShell's quoting protects the
// script, not setspn's own parsing, so an SPN or account name from the
// directory that starts with - or / would be read as another switch (-D for
// -S), and Windows PowerShell 5.1 passes an embedded double quote (or a
// trailing backslash in a value with a space) unescaped, splitting the value
// into several arguments. No real SPN needs any of these, and a service
// account rarely does; such a value is left for a person to look at.
func setspn(op, spn, account string) string {
	for _, v := range []string{spn, account} {
		if reason := nativeArgProblem(v); reason != "" {
			return "# not written: " + reason + "; setspn " + op + " " + psArg(spn) + " " + psArg(account)
		}
	}
	return "setspn " + op + " " + psArg(spn) + " " + psArg(account)
}

// nativeArgProblem says why v cannot be passed safely to a native command
// such as setspn, or "" when it can.
func nativeArgProblem(v string) string {
	if v == "" {
		return "an empty value"
	}
	// PowerShell reads the typographic dashes as '-' too.
	if first, _ := utf8.DecodeRuneInString(v); strings.ContainsRune("-/\u2013\u2014\u2015", first) {
		return "a value that starts like a switch"
	}
	if strings.ContainsAny(v, "\"\u201C\u201D\u201E") {
		return "a value with a double quote"
	}
	// Windows PowerShell 5.1 wraps a value with a space in "..." without
	// escaping a backslash before the closing quote, which then escapes the
	// quote: the value runs into the next argument and can carry a switch.
	if strings.ContainsFunc(v, unicode.IsSpace) || strings.HasSuffix(v, `\`) {
		return "a value with a space or a trailing backslash"
	}
	return ""
}

// psArg quotes a command argument when PowerShell would read it otherwise
// (a $ in a computer account's name, spaces, …).
func psArg(s string) string {
	if psPlain.MatchString(s) {
		return s
	}
	return psQuote(s)
}

// sortedFold sorts names case-insensitively, in a copy.
func sortedFold(names []string) []string {
	out := append([]string(nil), names...)
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
	return out
}
