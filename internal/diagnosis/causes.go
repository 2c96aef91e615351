package diagnosis

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Cause is one root cause: the findings that share one thing to fix (one
// account, one missing delegation, one DC clock, one enc-type setting, one
// SPN form policy) and the one fix for it. A person reads causes first;
// the findings stay available underneath.
type Cause struct {
	// Cause is the kind of cause (label cause of kerberos_root_cause),
	// e.g. "service_account_cannot_delegate": one of CauseKinds.
	Cause    string   `json:"cause"`
	Severity Severity `json:"severity"` // the worst of its findings
	// Subject is the one thing the fix changes: an account, a DC, a
	// domain, a host (label subject).
	Subject string `json:"subject"`
	Summary string `json:"summary"` // one line
	Detail  string `json:"detail"`  // why it matters
	Fix     string `json:"fix"`     // what to do, in words, once
	// Script is the fix's reviewable commands, each once.
	Script []string `json:"script,omitempty"`
	// Runbook is the alert whose runbook applies (docs/runbooks/NAME.md).
	Runbook string `json:"runbook,omitempty"`
	// Affected are the distinct targets of its findings; Instances the
	// distinct instances they belong to ("" excluded), both sorted.
	Affected  []string `json:"affected"`
	Instances []string `json:"instances"`
	// Findings are the findings it explains, in SortFindings order.
	Findings []Finding `json:"findings"`
	// FirstSeen is when the cause was first seen (zero when unknown).
	FirstSeen time.Time `json:"first_seen,omitzero"`
}

// Key identifies a cause across cycles: its kind and subject.
func (c Cause) Key() string { return c.Cause + "\x00" + strings.ToLower(c.Subject) }

// CauseKind declares one kind of root cause: what its subject is, which
// checks' findings it gathers, and how it reads when it gathers several.
// CauseKinds is the one list of them; docs/causes.md is generated from it
// (CauseTable) and the tests keep both in step.
//
// A finding belongs to the kind its rule names in Finding.Cause, else to the
// first kind that lists its check; and to the cause of that kind whose
// subject is its Finding.Subject (else its target). A finding whose
// CausedBy names a finding present in the same snapshot joins that
// finding's cause instead.
type CauseKind struct {
	Name string
	// Subject says what the subject names.
	Subject string
	// Checks whose findings it gathers.
	Checks []string
	// Meaning: what is wrong, for the documentation.
	Meaning string
	// Summary and Fix are used when the cause gathers findings whose own
	// words differ; {subject} is replaced by the subject, {n} by the number
	// of affected targets.
	Summary string
	Fix     string
	// Why explains, for a cause of several findings, what happens because
	// of it.
	Why string
}

// CauseKinds is the registry of every kind of root cause, sorted by name.
var CauseKinds = []CauseKind{
	{
		Name: "clock_skew", Subject: "the host to resynchronise: a DC, a SQL host, a linked server's back end, a realm, or the exporter's host",
		Checks:  []string{"clock_skew_dc", "clock_skew_sql", "clock_skew_hop", "kdc_clock_skew"},
		Meaning: "one host's clock is off",
		Summary: "The clock of {subject} is off ({n} affected)",
		Fix:     "Resynchronise {subject} with the domain time hierarchy (the PDC emulator should follow a reliable external source).",
		Why:     skewConsequence,
	},
	{
		Name: "dc_unreachable", Subject: "the DC, or its domain when none of the domain's DCs answers",
		Checks:  []string{"dc_unreachable"},
		Meaning: "domain controllers do not answer LDAP",
		Summary: "Domain controllers of {subject} do not answer ({n} affected)",
		Fix:     "Check that the domain controllers of {subject} run and that LDAP (389/636) and Kerberos (88) reach them from the exporter's network.",
		Why:     "The directory checks of the domain are silent while no DC answers, and clients sent to a DC that does not answer get no tickets from it.",
	},
	{
		Name: "delegated_user", Subject: "the user or group",
		Checks:  []string{"user_sensitive", "user_protected_users", "delegated_user_not_found"},
		Meaning: "a user whose identity must cross a second hop cannot be delegated",
		Summary: "{subject} cannot be delegated over a second hop",
		Fix:     "Clear the flag or group membership of {subject} if it does not need that protection; otherwise it must query the back ends directly.",
		Why:     "Its tickets are not forwardable, so linked servers that use the caller's credentials fail for it with ANONYMOUS LOGON.",
	},
	{
		Name: "exporter_access", Subject: "the exporter's login",
		Checks:  []string{"exporter_permission_denied", "spn_registration_unknown"},
		Meaning: "the exporter may not read some facts on instances, so their checks are silent",
		Summary: "The exporter's login {subject} may not read everything it needs ({n} instances)",
		Fix:     "Grant {subject} VIEW SERVER STATE (VIEW SERVER PERFORMANCE STATE on SQL Server 2022), VIEW ANY DEFINITION and VIEW ANY ERROR LOG (securityadmin before SQL Server 2022) on the instances listed.",
		Why:     "The queries refused for lack of a grant leave their facts missing, and the checks that need them say nothing.",
	},
	{
		Name: "exporter_placement", Subject: "the instance",
		Checks:  []string{"exporter_local", "transport_not_tcp"},
		Meaning: "the exporter measures an instance from where its measurement says nothing about remote TCP clients",
		Summary: "The exporter cannot measure {subject} as remote TCP clients connect",
		Fix:     "Run the exporter on another host of the domain and point it at host:port over TCP, as clients connect.",
		Why:     "Local connections and non-TCP transports authenticate differently from remote TCP clients, so the first-hop check is void for the instance.",
	},
	{
		Name: "host_dns", Subject: "the host name",
		Checks:  []string{"dns_forward_failed", "dns_reverse_mismatch", "dns_reverse_missing"},
		Meaning: "a host's DNS records are missing or wrong",
		Summary: "The DNS records of {subject} are wrong",
		Fix:     "Repair the A and PTR records of {subject} (the script has each record once).",
		Why:     "Clients build the SPN from the name they resolve: a name that does not resolve, or resolves back to another host, leads them to no ticket or the wrong one.",
	},
	{
		Name: "kdc_refuses_tickets", Subject: "the realm",
		Checks:  []string{"kdc_ticket_failed", "kdc_principal_unknown"},
		Meaning: "the KDC refuses tickets for reasons the directory does not show (replication, policy)",
		Summary: "The KDC of {subject} refuses tickets the directory says it should issue ({n} SPNs)",
		Fix:     "Read the KDC's reasons in the findings; check replication to every DC (repadmin /syncall) and which domain holds the SPNs.",
		Why:     "Clients asking that KDC get no ticket and fall back to NTLM.",
	},
	{
		Name: "kdc_unreachable", Subject: "the realm",
		Checks:  []string{"kdc_unreachable"},
		Meaning: "no KDC answered the exporter's ticket requests",
		Summary: "No KDC of {subject} answered the exporter",
		Fix:     "Check that the exporter reaches the domain controllers on port 88 (TCP and UDP) and that its krb5 configuration names them.",
		Why:     "The KDC checks are silent, and clients that cannot reach a KDC cannot use Kerberos at all.",
	},
	{
		Name: "kerberos_not_used", Subject: "the instance",
		Checks:  []string{"first_hop_ntlm", "ntlm_clients"},
		Meaning: "connections use NTLM where Kerberos is expected, and the exporter sees no cause in the directory",
		Summary: "Connections to {subject} use NTLM",
		Fix:     "Have clients connect by the FQDN and port the SPN is built from, and purge stale tickets (klist purge).",
		Why:     "NTLM credentials cannot be delegated: linked servers that use the caller's identity fail with ANONYMOUS LOGON.",
	},
	{
		Name: "krbtgt_rc4", Subject: "the domain",
		Checks:  []string{"krbtgt_no_aes_keys"},
		Meaning: "a domain's krbtgt account has no AES keys",
		Summary: "The krbtgt account of {subject} has no AES keys",
		Fix:     "Reset the krbtgt password of {subject} twice, letting it replicate in between.",
		Why:     "Ticket-granting tickets are RC4-encrypted, and once the domain controllers refuse RC4 the domain's Kerberos breaks for everyone.",
	},
	{
		Name: "linked_server_broken", Subject: "the linked servers' back end",
		Checks:  []string{"linked_server_test_failed"},
		Meaning: "linked servers fail for another reason than delegation",
		Summary: "Linked servers to {subject} fail their test ({n} affected)",
		Fix:     "Check that {subject} answers, and the linked servers' remote logins and mappings.",
		Why:     "The failure is not the ANONYMOUS LOGON of a broken delegation: the back end's availability, the remote login or the mapping is at fault.",
	},
	{
		Name: "second_hop_fails", Subject: "the middle instance",
		Checks:  []string{"linked_server_hop_anonymous", "linked_server_hop_ntlm"},
		Meaning: "a self-mapped second hop fails or uses NTLM, and the exporter sees no cause in the directory",
		Summary: "Second hops through {subject} do not use Kerberos ({n} linked servers)",
		Fix:     "Check that the data sources are the back ends' FQDNs, that recent changes have replicated, and purge the middle server's cached tickets (restart its SQL Server service).",
		Why:     "Users of these linked servers fail with ANONYMOUS LOGON, or succeed only when they sit on the middle server itself.",
	},
	{
		Name: "service_account_cannot_delegate", Subject: "the front end's service account",
		Checks:  []string{"delegation_missing", "delegation_cross_domain"},
		Meaning: "a service account may not delegate users' credentials to the back ends its linked servers reach",
		Summary: "{subject} may not delegate users' credentials to its linked servers' back ends ({n} affected)",
		Fix:     "Trust {subject} for constrained delegation (Kerberos only) to the back ends' SPNs, or allow it by resource-based constrained delegation on the back ends' accounts (across domains, only the latter works); then restart the front ends' SQL Server services to purge their cached tickets.",
		Why:     "The front ends cannot pass the user's Kerberos ticket on, so every linked server that uses the caller's credentials fails with ANONYMOUS LOGON.",
	},
	{
		Name: "service_account_local", Subject: "the instance",
		Checks:  []string{"service_account_local"},
		Meaning: "an instance runs as an account with no network identity",
		Summary: "{subject} runs as an account with no network identity",
		Fix:     "Run the Database Engine of {subject} as a domain account, a gMSA, or a virtual account (which acts as the computer account).",
		Why:     "No SPN can be registered on a local account, remote logons use NTLM, and no user's identity can be delegated.",
	},
	{
		Name: "service_account_rc4", Subject: "the service account",
		Checks:  []string{"spn_rc4_ticket", "account_no_aes_keys", "account_rc4_only"},
		Meaning: "a service account's tickets are RC4: no AES keys, or no AES allowed",
		Summary: "{subject} gets RC4 tickets: it has no AES keys or allows no AES ({n} affected)",
		Fix:     "Reset the password of {subject} if it predates the domain's AES support (give the service the new one; a gMSA changes its own), then set its msDS-SupportedEncryptionTypes to 0x18 (24: AES128 and AES256).",
		Why:     "RC4 tickets are Kerberoastable, and since the 2026 RC4 enforcement (CVE-2026-20833) an account without AES keys gets no ticket at all: its clients fall back to NTLM.",
	},
	{
		Name: "service_account_spns", Subject: "the service account (the instance or service when the account is unknown)",
		Checks:  []string{"spn_missing", "spn_wrong_account", "spn_duplicate", "spn_cname_mismatch", "spn_registration_failed", "kdc_principal_unknown"},
		Meaning: "the SPNs clients ask for are not (only) on the account the service runs as",
		Summary: "The SPNs of {subject} are missing or misplaced ({n} affected)",
		Fix:     "Register the SPNs listed on {subject} and remove them from other accounts (the script has each setspn line once); or let SQL Server register its own by granting its account write access to its SPNs, then restart it.",
		Why:     "Clients asking for these SPNs get no ticket, or one the service cannot decrypt: they fall back to NTLM or fail, and their credentials cannot be delegated to a linked server.",
	},
	{
		Name: "service_account_unconstrained", Subject: "the service account",
		Checks:  []string{"delegation_unconstrained"},
		Meaning: "a service account is trusted for delegation to any service",
		Summary: "{subject} is trusted for unconstrained delegation",
		Fix:     "Replace the unconstrained delegation of {subject} with constrained or resource-based constrained delegation to its back ends.",
		Why:     "Every user connecting to the service leaves a forwardable TGT with it, usable against any service in the forest.",
	},
	{
		Name: "service_account_unusable", Subject: "the service account",
		Checks:  []string{"account_disabled", "account_locked", "account_not_found"},
		Meaning: "a service account is disabled, locked out or absent",
		Summary: "{subject} cannot log on",
		Fix:     "Enable or unlock {subject} (after finding what uses a stale password), or correct the configured account.",
		Why:     "The KDC issues no tickets for a disabled account's SPNs, and a service running as it will not start again.",
	},
	{
		Name: "spn_form_policy", Subject: "the domain",
		Checks:  []string{"spn_missing"},
		Meaning: "the port-less and short-name MSSQLSvc SPN forms are not registered: one decision for the domain, not one per SPN",
		Summary: "Port-less and short-name SPN forms are not registered in {subject} ({n} SPNs)",
		Fix:     "Decide once for {subject}: register the short-name and port-less forms for every instance (the setspn lines below), or accept that only clients connecting by FQDN and port over TCP use Kerberos.",
		Why:     "Only some clients ask for these forms: named pipes and shared memory (no port), or a short server name they do not canonicalise. TCP clients using the FQDN ask for MSSQLSvc/<FQDN>:<port>.",
	},
	{
		Name: "sql_unreachable", Subject: "the instance",
		Checks:  []string{"sql_unreachable"},
		Meaning: "the exporter cannot log in to an instance, for a reason the directory does not explain",
		Summary: "The exporter cannot log in to {subject}",
		Fix:     "Check that {subject} runs and listens on the configured address and port, and the exporter's login.",
		Why:     "The checks that need the instance's answers are silent until it answers.",
	},
}

// LookupCauseKind returns the registered kind of that name.
func LookupCauseKind(name string) (CauseKind, bool) {
	i := sort.Search(len(CauseKinds), func(i int) bool { return CauseKinds[i].Name >= name })
	if i < len(CauseKinds) && CauseKinds[i].Name == name {
		return CauseKinds[i], true
	}
	return CauseKind{}, false
}

// Lists says whether the kind gathers findings of that check.
func (k CauseKind) Lists(check string) bool {
	for _, c := range k.Checks {
		if c == check {
			return true
		}
	}
	return false
}

// DefaultCauseKind is the kind a check's findings belong to when their rule
// names none: the first kind that lists the check, "" when none does.
func DefaultCauseKind(check string) string {
	for _, k := range CauseKinds {
		if k.Lists(check) {
			return k.Name
		}
	}
	return ""
}

// CauseTable is docs/causes.md's table of kinds of causes, rendered from
// the registry.
func CauseTable() string {
	var b strings.Builder
	b.WriteString("| cause | subject | gathers the checks | what is wrong |\n|---|---|---|---|\n")
	for _, k := range CauseKinds {
		checks := make([]string, len(k.Checks))
		for i, c := range k.Checks {
			checks[i] = "`" + c + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Name, k.Subject, strings.Join(checks, ", "), k.Meaning)
	}
	return b.String()
}

// kindOf is the kind of cause a finding belongs to by itself.
func kindOf(f Finding) string {
	if f.Cause != "" {
		return f.Cause
	}
	if k := DefaultCauseKind(f.Check); k != "" {
		return k
	}
	return f.Check // an unregistered check stands for itself
}

// subjectOf is what a finding's own cause changes.
func subjectOf(f Finding) string { return orDefault(f.Subject, f.Target) }

func refKey(check, target string) string { return check + "\x00" + strings.ToLower(target) }

// Causes groups findings into root causes, ordered by severity, then by
// blast radius (more affected first), then by cause and subject. Every
// finding belongs to exactly one cause: the cause of the first finding
// named in its CausedBy that is present (followed to the end), else its own
// kind and subject.
func Causes(findings []Finding) []Cause {
	if len(findings) == 0 {
		return nil
	}
	fs := append([]Finding(nil), findings...)
	SortFindings(fs)
	byRef := map[string]int{}
	for i, f := range fs {
		if _, ok := byRef[refKey(f.Check, f.Target)]; !ok {
			byRef[refKey(f.Check, f.Target)] = i
		}
	}
	// root[i] is the finding whose own cause finding i joins.
	root := make([]int, len(fs))
	for i := range fs {
		root[i] = -1
	}
	var resolve func(i int, visiting map[int]bool) int
	resolve = func(i int, visiting map[int]bool) int {
		if root[i] >= 0 {
			return root[i]
		}
		visiting[i] = true
		r := i
		for _, ref := range fs[i].CausedBy {
			j, ok := byRef[refKey(ref.Check, ref.Target)]
			if !ok || visiting[j] {
				continue
			}
			r = resolve(j, visiting)
			break
		}
		delete(visiting, i)
		root[i] = r
		return r
	}
	index := map[string]int{}
	var out []Cause
	var own [][]Finding // per cause, the findings that are there by themselves
	for i := range fs {
		r := resolve(i, map[int]bool{})
		kind, subject := kindOf(fs[r]), subjectOf(fs[r])
		key := kind + "\x00" + strings.ToLower(subject)
		ci, ok := index[key]
		if !ok {
			ci = len(out)
			index[key] = ci
			out = append(out, Cause{Cause: kind, Subject: subject})
			own = append(own, nil)
		}
		out[ci].Findings = append(out[ci].Findings, fs[i])
		if r == i {
			own[ci] = append(own[ci], fs[i])
		}
	}
	for i := range out {
		finishCause(&out[i], own[i])
	}
	SortCauses(out)
	return out
}

// finishCause fills a cause's severity, words, script, runbook, Affected
// and Instances from its findings (in SortFindings order) and the ones
// among them that are there by themselves, not explained by another.
func finishCause(c *Cause, own []Finding) {
	c.Severity = Info
	for _, f := range c.Findings {
		if f.Severity.Rank() < c.Severity.Rank() {
			c.Severity = f.Severity
		}
	}
	c.Runbook = runbookOf(own[0]) // the runbook of what is wrong, not of a symptom it explains
	// The script: the findings' lines, each once, the cause's own findings
	// first (most severe first).
	seen := map[string]bool{}
	c.Script = nil
	for _, group := range [][]Finding{own, c.Findings} {
		for _, f := range group {
			for _, l := range f.Script {
				if !seen[l] {
					seen[l] = true
					c.Script = append(c.Script, l)
				}
			}
		}
	}
	targets, instances := map[string]bool{}, map[string]bool{}
	c.Affected, c.Instances = nil, nil
	for _, f := range c.Findings {
		if !targets[strings.ToLower(f.Target)] {
			targets[strings.ToLower(f.Target)] = true
			c.Affected = append(c.Affected, f.Target)
		}
		if f.Instance != "" && !instances[f.Instance] {
			instances[f.Instance] = true
			c.Instances = append(c.Instances, f.Instance)
		}
	}
	sort.Slice(c.Affected, func(i, j int) bool { return strings.ToLower(c.Affected[i]) < strings.ToLower(c.Affected[j]) })
	sort.Strings(c.Instances)

	k, registered := LookupCauseKind(c.Cause)
	if len(own) == 1 || !registered {
		c.Summary, c.Detail, c.Fix = own[0].Summary, own[0].Detail, own[0].Fix
		return
	}
	words := strings.NewReplacer("{subject}", c.Subject, "{n}", fmt.Sprint(len(c.Affected)))
	c.Summary, c.Detail, c.Fix = words.Replace(k.Summary), k.Why, words.Replace(k.Fix)
	if allSame(own, func(f Finding) string { return f.Fix }) && own[0].Fix != "" {
		c.Fix = own[0].Fix
	}
}

func allSame(fs []Finding, field func(Finding) string) bool {
	for _, f := range fs[1:] {
		if field(f) != field(fs[0]) {
			return false
		}
	}
	return true
}

// runbookOf is the alert whose runbook covers a finding.
func runbookOf(f Finding) string {
	c, ok := LookupCheck(f.Check)
	if !ok {
		return ""
	}
	a, _ := c.AlertFor(f.Severity)
	return a
}

// SortCauses orders causes most severe first, then by blast radius, then
// by cause and subject: the one order of causes everywhere they are shown.
func SortCauses(cs []Cause) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() < b.Severity.Rank()
		}
		if len(a.Affected) != len(b.Affected) {
			return len(a.Affected) > len(b.Affected)
		}
		if a.Cause != b.Cause {
			return a.Cause < b.Cause
		}
		return strings.ToLower(a.Subject) < strings.ToLower(b.Subject)
	})
}
