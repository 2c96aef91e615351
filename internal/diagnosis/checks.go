package diagnosis

import (
	"fmt"
	"sort"
	"strings"
)

// Check declares one rule of the diagnosis: its name (the label check of
// kerberos_finding), the severities it can report, what it means, and the
// alert that fires for its findings. Checks is the one list of them; the
// diagnosis, the alerting rules' catch-all exclusions, the documentation's tables,
// the runbooks and the end-to-end tests are checked against it.
//
// To add a check:
//  1. add a Check to Checks below (keep the list sorted by name);
//  2. report it from a rule with Finding{Check: "<name>", Severity: ...}, only
//     with the severities declared here (TestChecksRegistered and the rule
//     tests enforce both);
//  3. leave Alert empty and it is covered by the catch-all alert of the
//     finding's severity (KerberosFindingCritical, -Warning, -Info): add a
//     row for it to docs/runbooks/KerberosFinding<Severity>.md. Or name a
//     dedicated alert in Alert (or per severity in AlertBySeverity), select
//     the check in that alert's expression in alerts/kerberos_exporter.rules.yml
//     and add it to the catch-alls' check!~ exclusion, which must equal
//     CatchAllExclusion();
//  4. list it in the CauseKinds entry (causes.go) whose cause its findings
//     belong to, setting Finding.Subject (and Finding.Cause, CausedBy) where
//     the kind's default does not fit;
//  5. regenerate docs/checks.md (go test ./e2e -run TestDocsGenerated -update),
//     alerts/README.md's table from AlertTable() and docs/causes.md's from
//     CauseTable();
//  6. run `go test ./internal/diagnosis ./e2e ./cmd/kerberos_exporter`: they
//     say what is out of step, and the end-to-end test checks that the rules
//     fire exactly one alert, of the declared severity, per finding.
type Check struct {
	Name string
	// Severities it can be reported with, most severe first.
	Severities []Severity
	// SeverityRule says when which severity applies ("" when there is one).
	SeverityRule string
	// Meaning: when it fires, and what its target names (in brackets).
	Meaning string
	// Alert is the dedicated alert for its findings, which carries the
	// finding's severity; "" for the catch-all of the finding's severity.
	Alert string
	// AlertBySeverity names a dedicated alert per severity instead (a warning
	// and a critical alert of one condition).
	AlertBySeverity map[Severity]string
	// Pages: the alert is a page (severity "page") rather than the finding's
	// severity: Kerberos is measurably not used, users get NTLM now.
	Pages bool
}

// Checks is the registry of every check, sorted by name.
var Checks = []Check{
	{Name: "account_disabled", Severities: sev(Critical), Meaning: "a service account is disabled (account)"},
	{Name: "account_locked", Severities: sev(Critical), Meaning: "a service account is locked out (account)"},
	{Name: "account_no_aes_keys", Severities: sev(Critical, Warning), SeverityRule: "critical on KDC error 14, or with `kerberos.rc4_enforced` when msDS-SupportedEncryptionTypes does not allow RC4 explicitly; else warning", Meaning: "the password predates the domain's AES support (`pwdLastSet` before the RID 521 group's creation), or KDC error 14 on an account that allows AES; reset the password, then msDS-SupportedEncryptionTypes 0x18 (account)",
		AlertBySeverity: map[Severity]string{Critical: "KerberosRC4EnforcementBroken", Warning: "KerberosRC4EnforcementRisk"}},
	{Name: "account_not_found", Severities: sev(Warning), Meaning: "the service account is not in the directory (account)"},
	{Name: "account_rc4_only", Severities: sev(Critical, Warning), SeverityRule: "warning; critical on KDC error 14", Meaning: "encryption types set without AES (account)"},
	{Name: "clock_skew_dc", Severities: sev(Critical, Warning), SeverityRule: "warning at 60 s, critical at 240 s (configurable)", Meaning: "a DC's clock is off the exporter's (DC)",
		AlertBySeverity: map[Severity]string{Critical: "KerberosDCClockSkewCritical", Warning: "KerberosDCClockSkewWarning"}},
	{Name: "clock_skew_hop", Severities: sev(Critical, Warning), SeverityRule: "warning at 60 s, critical at 240 s (configurable)", Meaning: "a linked server's two ends are apart (`instance/linked server`)",
		AlertBySeverity: map[Severity]string{Critical: "KerberosLinkedServerClockSkewCritical", Warning: "KerberosLinkedServerClockSkewWarning"}},
	{Name: "clock_skew_sql", Severities: sev(Critical, Warning), SeverityRule: "warning at 60 s, critical at 240 s (configurable)", Meaning: "a SQL host's clock is off the exporter's (instance)",
		AlertBySeverity: map[Severity]string{Critical: "KerberosSQLClockSkewCritical", Warning: "KerberosSQLClockSkewWarning"}},
	{Name: "dc_unreachable", Severities: sev(Critical, Warning), SeverityRule: "warning; critical if no DC of the domain answers", Meaning: "a DC does not answer LDAP (DC)",
		AlertBySeverity: map[Severity]string{Critical: "KerberosAllDCsUnreachable", Warning: "KerberosDCUnreachable"}},
	{Name: "delegated_user_not_found", Severities: sev(Info), Meaning: "a configured delegated user does not exist (user)"},
	{Name: "delegation_cross_domain", Severities: sev(Critical, Warning), SeverityRule: "critical (constrained across domains), warning (unconstrained to another tree)", Meaning: "the delegation path crosses domains; RBCD is the proposed fix (`instance/linked server`)"},
	{Name: "delegation_missing", Severities: sev(Critical), Meaning: "none of unconstrained, constrained or RBCD allows a self-mapped linked server's path (`instance/linked server`)", Alert: "KerberosDelegationBroken"},
	{Name: "delegation_unconstrained", Severities: sev(Warning), Meaning: "an account trusted for delegation to any service (account)"},
	{Name: "dns_forward_failed", Severities: sev(Critical, Warning), SeverityRule: "critical (\"no such host\"), warning (timeouts)", Meaning: "a host's name does not resolve (host)"},
	{Name: "dns_reverse_mismatch", Severities: sev(Warning), Meaning: "the PTR of a host's address names another host (host)"},
	{Name: "dns_reverse_missing", Severities: sev(Warning), Meaning: "a host's address has no PTR (host)"},
	{Name: "exporter_local", Severities: sev(Info), Meaning: "the exporter runs on the SQL host, so the auth-scheme check is skipped (instance)"},
	{Name: "exporter_permission_denied", Severities: sev(Info), Meaning: "a query was refused for lack of a grant (instance)", Alert: "KerberosSQLPermissionDenied"},
	{Name: "first_hop_ntlm", Severities: sev(Critical), Meaning: "Kerberos expected, measured remotely over TCP, auth scheme NTLM; names the causes it sees (instance)", Alert: "KerberosSQLNTLMFallback", Pages: true},
	{Name: "kdc_clock_skew", Severities: sev(Critical), Meaning: "KDC error 37 not already covered by a DC skew finding (realm)", Alert: "KerberosKDCTicketFailing"},
	{Name: "kdc_principal_unknown", Severities: sev(Critical, Warning), SeverityRule: "warning, critical if Kerberos expected", Meaning: "KDC error 7 not already covered by `spn_missing`/`spn_duplicate` (SPN)", Alert: "KerberosKDCTicketFailing"},
	{Name: "kdc_ticket_failed", Severities: sev(Warning), Meaning: "another KRB error for an expected SPN (SPN)", Alert: "KerberosKDCTicketFailing"},
	{Name: "kdc_unreachable", Severities: sev(Warning), Meaning: "no KDC answered the exporter's ticket requests (realm)"},
	{Name: "krbtgt_no_aes_keys", Severities: sev(Critical, Warning), SeverityRule: "critical with `kerberos.rc4_enforced`, else warning", Meaning: "a domain's krbtgt password predates its AES support; reset it twice (domain)",
		AlertBySeverity: map[Severity]string{Critical: "KerberosRC4EnforcementBroken", Warning: "KerberosRC4EnforcementRisk"}},
	{Name: "linked_server_hop_anonymous", Severities: sev(Critical), Meaning: "a self-mapped link fails with ANONYMOUS LOGON; names the causes (`instance/linked server`)", Alert: "KerberosLinkedServerAnonymousLogon", Pages: true},
	{Name: "linked_server_hop_ntlm", Severities: sev(Critical), Meaning: "a self-mapped hop succeeded over NTLM (`instance/linked server`)", Alert: "KerberosLinkedServerHopNTLM", Pages: true},
	{Name: "linked_server_test_failed", Severities: sev(Warning), Meaning: "any other test or hop failure; fixed-login links never raise delegation findings (`instance/linked server`)", Alert: "KerberosLinkedServerTestFailing"},
	{Name: "ntlm_clients", Severities: sev(Warning), Meaning: "NTLM-over-TCP clients, named (instance)"},
	{Name: "service_account_local", Severities: sev(Critical, Warning), SeverityRule: "critical if Kerberos is expected, else warning", Meaning: "LocalService or a local account runs SQL Server: no network identity (instance)"},
	{Name: "spn_cname_mismatch", Severities: sev(Critical, Warning), SeverityRule: "critical if Kerberos is expected, else warning", Meaning: "an expected SPN's host is a DNS alias and the canonical host's SPN, which Windows clients ask for, is not on the service account; the fix prefers an A record for the alias (SPN)", Alert: "KerberosSPNAliasMismatch"},
	{Name: "spn_duplicate", Severities: sev(Critical, Warning), SeverityRule: "critical for an expected SPN, warning for one only the forest-wide scan found", Meaning: "more than one holder; the script has `setspn -D` for the stray ones (SPN)", Alert: "KerberosSPNDuplicate"},
	{Name: "spn_missing", Severities: sev(Critical, Warning), SeverityRule: "critical if Kerberos is expected (expect_kerberos, a linked server's back end, a configured service), else warning; port-less and short-name forms warning", Meaning: "an expected SPN has no holder (SPN)", Alert: "KerberosSPNMissing"},
	{Name: "spn_rc4_ticket", Severities: sev(Warning), Meaning: "the KDC issued an RC4 ticket for an expected SPN, offered what a Windows client offers: Kerberoastable, and broken under the 2026 RC4 enforcement if the account lacks AES keys; reset the password, then 0x18 (SPN)", Alert: "KerberosRC4EnforcementRisk"},
	{Name: "spn_registration_failed", Severities: sev(Warning, Info), SeverityRule: "warning; info if the SPNs exist anyway", Meaning: "26067 at the last start-up, only when the error log was readable (instance)", Alert: "KerberosSPNRegistrationFailed"},
	{Name: "spn_registration_unknown", Severities: sev(Info), Meaning: "the error log is unreadable (instance)", Alert: "KerberosSQLErrorLogUnreadable"},
	{Name: "spn_wrong_account", Severities: sev(Critical), Meaning: "the single holder is not the expected account; nothing when the expected account is unknown (SPN)", Alert: "KerberosSPNOnWrongAccount"},
	{Name: "sql_unreachable", Severities: sev(Warning), Meaning: "the exporter cannot log in, with the cause (instance)", Alert: "KerberosSQLLoginFailing"},
	{Name: "transport_not_tcp", Severities: sev(Warning), Meaning: "the session is not TCP (instance)"},
	{Name: "user_protected_users", Severities: sev(Warning), Meaning: "a delegated user is in Protected Users (user)"},
	{Name: "user_sensitive", Severities: sev(Warning), Meaning: "a delegated user is sensitive and cannot be delegated (user)"},
}

// OtherAlert is an alert that no finding drives: the exporter's own health,
// or a trend over time that one snapshot cannot judge.
type OtherAlert struct {
	Name     string
	Severity string
	// Beside names the check whose findings it may accompany (a second
	// alert for the same cause, on purpose), "" when none.
	Beside string
}

// OtherAlerts are the alerts outside the registry of checks. Against a
// healthy exporter with a steady history none of them fires.
var OtherAlerts = []OtherAlert{
	{Name: "KerberosSQLNTLMClientsRising", Severity: "page", Beside: "ntlm_clients"},
	{Name: "KerberosExporterDown", Severity: "critical"},
	{Name: "KerberosCollectorFailing", Severity: "warning"},
	{Name: "KerberosCollectorStale", Severity: "warning"},
	{Name: "KerberosCollectorIncomplete", Severity: "warning"},
	{Name: "KerberosExporterConfigReloadFailed", Severity: "warning"},
}

func sev(s ...Severity) []Severity { return s }

// LookupCheck returns the registered check of that name.
func LookupCheck(name string) (Check, bool) {
	i := sort.Search(len(Checks), func(i int) bool { return Checks[i].Name >= name })
	if i < len(Checks) && Checks[i].Name == name {
		return Checks[i], true
	}
	return Check{}, false
}

// Allows reports whether the check is declared with that severity.
func (c Check) Allows(s Severity) bool {
	for _, d := range c.Severities {
		if d == s {
			return true
		}
	}
	return false
}

// Dedicated: some of its findings have an alert of their own, so the
// catch-all alerts leave the check out.
func (c Check) Dedicated() bool { return c.Alert != "" || len(c.AlertBySeverity) > 0 }

// AlertFor is the alert that fires for a finding of this check and severity,
// and the severity that alert carries.
func (c Check) AlertFor(s Severity) (alert, alertSeverity string) {
	alertSeverity = string(s)
	if c.Pages {
		alertSeverity = "page"
	}
	switch {
	case c.AlertBySeverity[s] != "":
		return c.AlertBySeverity[s], alertSeverity
	case c.Alert != "":
		return c.Alert, alertSeverity
	default:
		return CatchAllAlert(s), alertSeverity
	}
}

// CatchAllAlert is the alert for findings of checks without a dedicated one.
func CatchAllAlert(s Severity) string {
	switch s {
	case Critical:
		return "KerberosFindingCritical"
	case Warning:
		return "KerberosFindingWarning"
	default:
		return "KerberosFindingInfo"
	}
}

// Runbook is the runbook path of an alert, relative to the repository.
func Runbook(alert string) string { return "docs/runbooks/" + alert + ".md" }

// CatchAllExclusion is the regular expression of the checks the catch-all
// alerts leave out (check!~"..."), in name order.
func CatchAllExclusion() string {
	var names []string
	for _, c := range Checks {
		if c.Dedicated() {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, "|")
}

// AlertSeverities lists, per alert, the severities it can carry, as the
// registry declares them.
func AlertSeverities() map[string][]string {
	out := map[string][]string{}
	add := func(alert, s string) {
		for _, have := range out[alert] {
			if have == s {
				return
			}
		}
		out[alert] = append(out[alert], s)
	}
	for _, c := range Checks {
		for _, s := range c.Severities {
			a, as := c.AlertFor(s)
			add(a, as)
		}
	}
	for _, s := range []Severity{Critical, Warning, Info} {
		add(CatchAllAlert(s), string(s))
	}
	for _, o := range OtherAlerts {
		add(o.Name, o.Severity)
	}
	for a := range out {
		sort.Slice(out[a], func(i, j int) bool { return severityRank(out[a][i]) < severityRank(out[a][j]) })
	}
	return out
}

func severityRank(s string) int {
	if s == "page" {
		return -1
	}
	return Severity(s).Rank()
}

// CheckTable is docs/checks.md's table of checks, rendered from the registry.
func CheckTable() string {
	var b strings.Builder
	b.WriteString("| check | severity | fires when (target) | alert |\n|---|---|---|---|\n")
	for _, c := range Checks {
		rule := c.SeverityRule
		if rule == "" {
			rule = joinSeverities(c.Severities)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", c.Name, rule, c.Meaning, alertsOf(c))
	}
	return b.String()
}

// AlertTable is alerts/README.md's table of which alert each finding
// raises, rendered from the registry.
func AlertTable() string {
	var b strings.Builder
	b.WriteString("| check | finding | alert | alert severity |\n|---|---|---|---|\n")
	for _, c := range Checks {
		for _, s := range c.Severities {
			a, as := c.AlertFor(s)
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", c.Name, s, a, as)
		}
	}
	return b.String()
}

func alertsOf(c Check) string {
	var names []string
	seen := map[string]bool{}
	for _, s := range c.Severities {
		a, as := c.AlertFor(s)
		if !seen[a] {
			seen[a] = true
			if as == "page" {
				a += " (page)"
			}
			names = append(names, a)
		}
	}
	return strings.Join(names, ", ")
}

func joinSeverities(ss []Severity) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}
