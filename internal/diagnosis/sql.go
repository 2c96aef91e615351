package diagnosis

import (
	"fmt"
	"net"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krberr"
	"github.com/kerberos-exporter/kerberos_exporter/internal/uac"
)

// sqlFindings judges the first hop as the exporter measured it on each
// instance: reachability, where it measured from, transport, auth scheme,
// and the NTLM clients the instance sees.
func sqlFindings(in *input) []Finding {
	var out []Finding
	for _, inst := range in.cfg.SQLInstances {
		s := in.snap.SQL[inst.Name]
		if s == nil {
			continue
		}
		if !s.Up {
			out = append(out, in.sqlUnreachable(inst.Name, s))
			continue
		}
		denied := append([]string(nil), s.PermissionErrors...)
		if ls := in.snap.LinkedServers[inst.Name]; ls != nil && ls.PermissionDenied {
			denied = append(denied, "linked servers")
		}
		if len(denied) > 0 {
			out = append(out, Finding{
				Check: "exporter_permission_denied", Severity: Info, Target: inst.Name, Instance: inst.Name,
				Subject: in.exporterSubject(inst.Name),
				Summary: fmt.Sprintf("The exporter's login may not run %d of its queries on %s", len(denied), inst.Name),
				Detail:  fmt.Sprintf("These queries failed for lack of a grant, so the facts they read are missing and their checks stay silent: %s.", strings.Join(denied, ", ")),
				Fix:     "Grant the exporter's login VIEW SERVER STATE (VIEW SERVER PERFORMANCE STATE on SQL Server 2022) and VIEW ANY DEFINITION.",
			})
		}
		if s.Local {
			out = append(out, Finding{
				Check: "exporter_local", Severity: Info, Target: inst.Name, Instance: inst.Name,
				Summary: fmt.Sprintf("The exporter runs on %s's host, so its auth scheme measurement is void", inst.Name),
				Detail:  "Local connections always use NTLM (or shared memory), whatever the SPNs: the exporter's own session cannot show whether remote clients get Kerberos. The first-hop check is skipped for this instance.",
				Fix:     "Run the exporter on another host of the domain, as a remote client would connect.",
			})
			continue
		}
		if s.NetTransport != "" && !strings.EqualFold(s.NetTransport, "TCP") {
			out = append(out, Finding{
				Check: "transport_not_tcp", Severity: Warning, Target: inst.Name, Instance: inst.Name,
				Summary: fmt.Sprintf("The exporter reaches %s over %s, not TCP", inst.Name, s.NetTransport),
				Detail:  fmt.Sprintf("Over %s, SQL Server uses the instance-name SPN (or none, authenticating under the cover of SMB), not MSSQLSvc/host:port: the measurement says nothing about the Kerberos logons of TCP clients, which are most clients.", s.NetTransport),
				Fix:     "Point the exporter at host:port (TCP), as clients connect.",
			})
		}
		expect := in.expectsKerberos(inst.Name)
		if expect && strings.EqualFold(s.AuthScheme, "NTLM") {
			out = append(out, in.firstHopNTLM(inst.Name, s))
		}
		if clients := otherClients(s.NTLMClients); expect && len(clients) > 0 {
			f := ntlmClients(inst.Name, inst.Host, clients)
			f.CausedBy = in.kerberosCauseRefs(inst.Name)
			out = append(out, f)
		}
	}
	return out
}

func (in *input) sqlUnreachable(name string, s *facts.SQLInstance) Finding {
	why := map[string]string{
		"network":      "it cannot be reached over the network",
		"timeout":      "it did not answer in time",
		"tls":          "the TLS handshake failed",
		"login_failed": "it refused the exporter's login",
		"kerberos":     "the Kerberos logon failed",
	}[s.Cause]
	if why == "" {
		why = "the connection failed"
	}
	detail := fmt.Sprintf("The exporter could not log in to %s: %s", name, why)
	if s.ErrorNumber != 0 {
		detail += fmt.Sprintf(" (error %d)", s.ErrorNumber)
	}
	if s.ConnectError != "" {
		detail += ": " + strings.TrimSuffix(s.ConnectError, ".")
	}
	detail += "."
	fix := map[string]string{
		"login_failed": "Check the exporter's login and its password or keytab, and that the login exists on the instance.",
		"tls":          "Check the instance's certificate, or the encrypt and trust_server_certificate settings.",
	}[s.Cause]
	if fix == "" {
		fix = "Check that the instance runs and listens on the configured address and port, and that no firewall is in the way."
	}
	// A KRB-ERROR from the KDC is what clients meet too; a Kerberos failure
	// without one may be the exporter's own setup (krb5.conf, keytab).
	kerberosFailure := s.Cause == "kerberos" && s.KerberosErrorCode != 0
	if s.Cause == "kerberos" {
		fix = "Check the exporter's own Kerberos setup (krb5_config, keytab or password, and its reach to a KDC on port 88): no KDC refused this logon."
	}
	if s.Cause == "login_failed" && in.logsInWithKerberos(name) {
		detail += " The exporter logged in with Kerberos: a refused Kerberos logon is also what a ticket the service cannot decrypt (KRB_AP_ERR_MODIFIED) looks like."
	}
	if s.Cause == "kerberos" || (s.Cause == "login_failed" && in.logsInWithKerberos(name)) {
		if causes := append(in.kerberosCauses(name), in.spnHolderHints(name)...); len(causes) > 0 {
			detail += " Likely causes seen in this snapshot: " + strings.Join(causes, "; ") + "."
			kerberosFailure = true
		}
	}
	const silent = "the checks that need the instance's answers (auth scheme, linked servers, error log, clock) are silent until it answers."
	if kerberosFailure {
		detail += " Clients using Kerberos meet the same failure. Meanwhile " + silent
		fix = "Fix the SPN, account or clock findings of this instance; the exporter's logon works once clients' would."
	} else {
		detail += " This is not a Kerberos finding by itself, but " + silent
	}
	f := Finding{
		Check: "sql_unreachable", Severity: Warning, Target: name, Instance: name,
		Summary: fmt.Sprintf("The exporter cannot log in to %s: %s", name, why),
		Detail:  detail,
		Fix:     fix,
	}
	if kerberosFailure {
		f.CausedBy = in.kerberosCauseRefs(name)
	}
	return f
}

func (in *input) firstHopNTLM(name string, s *facts.SQLInstance) Finding {
	detail := fmt.Sprintf("The exporter connected to %s from another host over %s and was authenticated with NTLM, although Kerberos is expected. Clients get the same: they work, but their credentials cannot be delegated, so linked servers using the caller's identity fail with %s.", name, orDefault(s.NetTransport, "TCP"), anonymousLogon)
	if s.UsedNTLMFallback {
		detail += " The exporter could get no Kerberos ticket for the server"
		if s.KerberosError != "" {
			detail += " (" + s.KerberosError + ")"
		}
		detail += " and fell back to NTLM, as Windows' Negotiate does."
	}
	causes := in.kerberosCauses(name)
	if len(causes) > 0 {
		detail += " Likely causes seen in this snapshot: " + strings.Join(causes, "; ") + "."
	} else {
		detail += " The exporter sees no cause in the directory: check that clients use the name the SPN is built from (the FQDN, not an alias or an IP address), and purge stale tickets (klist purge)."
	}
	return Finding{
		Check: "first_hop_ntlm", Severity: Critical, Target: name, Instance: name,
		Summary:  fmt.Sprintf("Connections to %s use NTLM where Kerberos is expected", name),
		Detail:   detail,
		Fix:      "Fix the causes named here (their own findings carry the commands). New connections then use Kerberos; existing ones keep NTLM until they reconnect.",
		CausedBy: in.kerberosCauseRefs(name),
	}
}

// otherClients leaves out the exporter's own sessions.
func otherClients(clients []facts.NTLMClient) []facts.NTLMClient {
	var out []facts.NTLMClient
	for _, c := range clients {
		if c.Program != facts.ExporterProgram {
			out = append(out, c)
		}
	}
	return out
}

func ntlmClients(name, host string, clients []facts.NTLMClient) Finding {
	who := make([]string, len(clients))
	for i, c := range clients {
		who[i] = fmt.Sprintf("%s (login %s, program %q): %d %s", orDefault(c.Host, "unknown host"), orDefault(c.Login, "?"), c.Program, c.Connections, plural(c.Connections, "connection", "connections"))
	}
	return Finding{
		Check: "ntlm_clients", Severity: Warning, Target: name, Instance: name,
		Summary: fmt.Sprintf("%d %s reach %s over TCP with NTLM", len(clients), plural(len(clients), "client", "clients"), name),
		Detail: fmt.Sprintf("These clients authenticated with NTLM over TCP, so they could not get a Kerberos ticket for %s: usually they connect by a name or address that has no SPN (an IP address, an alias or CNAME, a port not in the SPN), or the instance's SPN is broken. Their sessions cannot be delegated to a linked server. Clients: %s.",
			name, strings.Join(who, "; ")),
		Fix: fmt.Sprintf("Have them connect by the FQDN and port the SPN is built from (%s), or register SPNs for the names they use.", orDefault(host, "the instance's FQDN")),
	}
}

// logsInWithKerberos: the exporter's login to the instance uses Kerberos.
func (in *input) logsInWithKerberos(instance string) bool {
	inst := in.instance(instance)
	return inst != nil && (inst.Auth.Method == "kerberos" || inst.Auth.Method == "windows")
}

// noDCAnswered: the exporter asked DCs of the domain and none answered.
// A domain one of whose DCs was skipped for lack of time is not known to
// be out of reach: the skipped DC may answer.
func (in *input) noDCAnswered(domain string) bool {
	for _, dc := range in.dcSkipped {
		if in.canonicalDomain(dc.Domain) == in.canonicalDomain(domain) {
			return false
		}
	}
	asked := false
	for _, dc := range in.snap.DCs {
		if in.canonicalDomain(dc.Domain) == in.canonicalDomain(domain) {
			if dc.Up {
				return false
			}
			asked = true
		}
	}
	return asked
}

// spnHolderHints: when the service account is unknown, the single holder of
// an instance's SPN is a candidate for a wrong-account SPN the exporter
// cannot judge.
func (in *input) spnHolderHints(instance string) []string {
	if in.directoryAccount(instance) != "" {
		return nil
	}
	var hints []string
	for _, e := range in.expectedSPNs(instance) {
		if e.LookupError == "" && e.ExpectedAccount == "" && len(e.Holders) == 1 && !isSecondarySQLSPN(e.SPN) {
			hints = append(hints, fmt.Sprintf("%s is held by %s: if %s does not run as that account, tickets for it cannot be decrypted (set service_account so that the exporter can check)", e.SPN, e.Holders[0], instance))
		}
	}
	return hints
}

// kerberosCauses names what in this snapshot keeps Kerberos from working
// for an instance: its SPNs, its account, its clock, its DNS.
func (in *input) kerberosCauses(instance string) []string {
	var causes []string
	causes = append(causes, in.spnCauses(instance)...)
	causes = append(causes, in.accountCauses(instance)...)
	_, crit := in.skewThresholds()
	s := in.snap.SQL[instance]
	if s != nil && s.ClockMeasured && abs(s.ClockSkew) >= crit {
		causes = append(causes, fmt.Sprintf("its clock is %s the exporter's", fmtSkew(s.ClockSkew)))
	}
	if inst := in.instance(instance); inst != nil && in.noDCAnswered(inst.Domain) {
		causes = append(causes, fmt.Sprintf("no domain controller of %s answered the exporter (dc_unreachable), so no ticket could be had", inst.Domain))
	}
	if s != nil && len(causes) == 0 {
		switch s.KerberosErrorCode {
		case krberr.CodePrincipalUnknown:
			causes = append(causes, "the KDC does not know the SPN the exporter asked for (error 7): clients use a name or port no SPN matches")
		case krberr.CodeSkew:
			causes = append(causes, "the KDC refused the exporter's ticket request for clock skew (error 37)")
		case krberr.CodeETypeNoSupp:
			causes = append(causes, "the KDC has no key of a usable encryption type for the service account (error 14)")
		}
	}
	if inst := in.instance(instance); inst != nil {
		for _, h := range in.snap.DNS {
			if strings.EqualFold(h.Host, inst.Host) && h.ForwardError == "" && !h.ReverseMatches && h.ReverseError == "" {
				causes = append(causes, fmt.Sprintf("the reverse lookup of %s names another host", inst.Host))
			}
		}
	}
	return causes
}

// accountCauses names what is wrong with the account an instance runs as.
func (in *input) accountCauses(instance string) []string {
	if raw := in.serviceAccount(instance); raw != "" && in.isLocalAccount(instance, raw) {
		return []string{fmt.Sprintf("it runs as %s, which has no network identity", raw)}
	}
	account := in.directoryAccount(instance)
	a := in.account(account)
	if account == "" || a == nil || !a.Found {
		return nil
	}
	var causes []string
	if a.Disabled || a.Locked {
		causes = append(causes, fmt.Sprintf("its account %s is disabled or locked", account))
	}
	if uac.EncTypes(a.SupportedEncTypes).WithoutAES() {
		causes = append(causes, fmt.Sprintf("its account %s allows no AES encryption", account))
	}
	return causes
}

// spnCauses names the problems of a target's expected SPNs.
func (in *input) spnCauses(target string) []string {
	var causes []string
	for _, e := range in.expectedSPNs(target) {
		if e.LookupError != "" || isSecondarySQLSPN(e.SPN) {
			continue // TCP clients by FQDN, as the exporter and linked servers connect, never ask for the others
		}
		holders, _ := in.spnHolders(e.SPN)
		switch {
		case len(holders) == 0:
			causes = append(causes, fmt.Sprintf("SPN %s is missing (spn_missing)", e.SPN))
		case len(holders) > 1:
			causes = append(causes, fmt.Sprintf("SPN %s is duplicated (spn_duplicate)", e.SPN))
		case e.ExpectedAccount != "" && !in.sameAccount(holders[0], e.ExpectedAccount):
			causes = append(causes, fmt.Sprintf("SPN %s is on the wrong account (spn_wrong_account)", e.SPN))
		}
	}
	return causes
}

// linkedServerFindings judges the second hop of each tested linked server.
// A fixed remote login needs no delegation and is never an error in itself.
func linkedServerFindings(in *input) []Finding {
	var out []Finding
	for _, name := range sortedKeys(in.snap.LinkedServers) {
		ls := in.snap.LinkedServers[name]
		if !ls.Readable {
			continue
		}
		for _, sv := range ls.Servers {
			target := linkTarget(name, sv.Name)
			failed := (sv.HopTested && !sv.HopOK) || (sv.Tested && !sv.TestOK)
			switch {
			case failed && sv.SelfMapped && isAnonymousFailure(sv):
				out = append(out, in.hopAnonymous(name, sv, target))
			case failed:
				out = append(out, in.linkedServerTestFailed(name, sv, target))
			case sv.SelfMapped && sv.HopTested && strings.EqualFold(sv.HopAuthScheme, "NTLM"):
				out = append(out, in.hopNTLM(name, sv, target))
			}
		}
	}
	return out
}

// isAnonymousFailure: the back end saw no user, the mark of credentials
// that could not be delegated ("(null)" on SQL Server 2000).
func isAnonymousFailure(sv facts.LinkedServer) bool {
	msg := strings.ToUpper(sv.ErrMsg + " " + sv.HopError)
	return sv.Cause == "delegation" || strings.Contains(msg, "ANONYMOUS LOGON") || strings.Contains(msg, "USER '(NULL)'")
}

func (in *input) hopAnonymous(instance string, sv facts.LinkedServer, target string) Finding {
	detail := fmt.Sprintf("Linked server %s on %s forwards the caller's own credentials, and the back end %s refused the hop", sv.Name, instance, orDefault(sv.TargetInstance, sv.DataSource))
	detail += linkError(sv)
	detail += fmt.Sprintf(". %s could not present the user's identity, so the back end saw ANONYMOUS LOGON; every user of the linked server fails the same way.", instance)
	return Finding{
		Check: "linked_server_hop_anonymous", Severity: Critical, Target: target, Instance: in.group(instance),
		Summary:  fmt.Sprintf("The second hop through %s fails with ANONYMOUS LOGON", target),
		Detail:   detail + " " + in.hopCauseSentence(instance, sv),
		Fix:      "Fix the causes named here (their own findings carry the commands), then purge the middle server's cached tickets (restart its SQL Server service) and test again.",
		Subject:  instance,
		CausedBy: in.hopCauseRefs(instance, sv),
	}
}

func (in *input) hopNTLM(instance string, sv facts.LinkedServer, target string) Finding {
	return Finding{
		Check: "linked_server_hop_ntlm", Severity: Critical, Target: target, Instance: in.group(instance),
		Summary: fmt.Sprintf("The second hop through %s uses NTLM", target),
		Detail: fmt.Sprintf("Linked server %s forwards the caller's credentials, and the back end %s saw the hop authenticated with NTLM over %s. That works only when the caller sits on %s itself (a single hop); users connecting from other machines get %s, because NTLM credentials cannot be delegated. %s",
			sv.Name, orDefault(sv.TargetInstance, sv.DataSource), orDefault(sv.HopTransport, "TCP"), instance, anonymousLogon, in.hopCauseSentence(instance, sv)),
		Fix:      "Fix the causes named here so that both hops use Kerberos over TCP.",
		Subject:  instance,
		CausedBy: in.hopCauseRefs(instance, sv),
	}
}

func (in *input) linkedServerTestFailed(instance string, sv facts.LinkedServer, target string) Finding {
	what := "sp_testlinkedserver"
	if sv.TestOK {
		what = "the query through it"
	}
	detail := fmt.Sprintf("Testing linked server %s on %s failed at %s", sv.Name, instance, what)
	if sv.Cause != "" {
		detail += " (" + sv.Cause + ")"
	}
	detail += linkError(sv)
	detail += ". The failure is not the ANONYMOUS LOGON of a broken delegation, so its cause is elsewhere: the back end's availability, the remote login, or the mapping."
	fix := map[string]string{
		"network":      "Check that the data source names a reachable instance and port.",
		"timeout":      "Check that the back end answers, and the linked server's timeouts.",
		"login_failed": "Check that the remote login exists on the back end and may connect.",
		"no_mapping":   "Add a login mapping for the login that uses the linked server (sp_addlinkedsrvlogin).",
	}[sv.Cause]
	if fix == "" {
		fix = "Run the linked server test on the middle server and read the full error."
	}
	return Finding{
		Check: "linked_server_test_failed", Severity: Warning, Target: target, Instance: in.group(instance),
		Subject: orDefault(sv.TargetInstance, orDefault(dataSourceHost(sv.DataSource), target)),
		Summary: fmt.Sprintf("Linked server %s fails its test", target),
		Detail:  detail,
		Fix:     fix,
	}
}

// linkError quotes the error of a failed linked-server test or hop query.
func linkError(sv facts.LinkedServer) string {
	switch {
	case sv.ErrMsg != "":
		return fmt.Sprintf(" with error %d: %s", sv.ErrNumber, strings.TrimSuffix(sv.ErrMsg, "."))
	case sv.HopError != "":
		return ": " + strings.TrimSuffix(sv.HopError, ".")
	}
	return ""
}

// hopCauseSentence names the likely causes of a failed or NTLM second hop
// found in the same snapshot.
func (in *input) hopCauseSentence(instance string, sv facts.LinkedServer) string {
	causes := in.hopCauses(instance, sv)
	if len(causes) == 0 {
		return "The exporter sees no cause in the directory: check that the data source is the back end's FQDN (the SPN is built from it), that recent changes have replicated to every DC, and purge the middle server's cached tickets (klist purge, or restart its SQL Server service)."
	}
	return "Likely causes seen in this snapshot: " + strings.Join(causes, "; ") + "."
}

func (in *input) hopCauses(instance string, sv facts.LinkedServer) []string {
	var causes []string
	if s := in.snap.SQL[instance]; s != nil && s.Up && !s.Local && !strings.EqualFold(s.AuthScheme, "KERBEROS") && s.AuthScheme != "" {
		causes = append(causes, fmt.Sprintf("the first hop (the exporter's own session to %s) is %s, not Kerberos, so there is no ticket to forward", instance, s.AuthScheme))
	}
	host := dataSourceHost(sv.DataSource)
	if net.ParseIP(host) != nil {
		causes = append(causes, fmt.Sprintf("the data source is an IP address (%s): no SPN matches it, so the hop falls back to NTLM", host))
	}
	if sv.TargetInstance != "" {
		for _, c := range in.spnCauses(sv.TargetInstance) {
			causes = append(causes, "on the back end, "+c)
		}
		if account := in.serviceAccount(sv.TargetInstance); account != "" && in.isLocalAccount(sv.TargetInstance, account) {
			causes = append(causes, fmt.Sprintf("the back end runs as %s, which has no network identity", account))
		}
	}
	for _, p := range in.snap.DelegationPaths {
		if p.FromInstance != instance || p.LinkedServer != sv.Name {
			continue
		}
		switch in.judgeDelegation(p) {
		case delegationMissing:
			causes = append(causes, fmt.Sprintf("%s may not delegate to %s (delegation_missing)", p.FromAccount, p.ToTarget))
		case delegationCrossDomain, delegationCrossForest:
			causes = append(causes, fmt.Sprintf("%s's delegation to %s does not cross domains (delegation_cross_domain)", p.FromAccount, p.ToTarget))
		}
	}
	if id := in.exporterIdentity(instance); id != "" {
		for _, u := range in.snap.Users {
			if u.Found && !u.Group && in.sameAccount(u.Name, id) {
				if u.Sensitive {
					causes = append(causes, fmt.Sprintf("the exporter's identity %s is marked sensitive and cannot be delegated", u.Name))
				}
				if u.ProtectedUsers {
					causes = append(causes, fmt.Sprintf("the exporter's identity %s is in Protected Users", u.Name))
				}
			}
		}
	}
	_, crit := in.skewThresholds()
	if skew, ok := in.hopSkew(instance, sv); ok && abs(skew) >= crit {
		causes = append(causes, fmt.Sprintf("the back end's clock is %s %s's", fmtSkew(skew), instance))
	}
	return causes
}

// exporterIdentity is the principal the exporter logs in to an instance
// with, which is the identity the linked-server test forwards.
func (in *input) exporterIdentity(instance string) string {
	if inst := in.instance(instance); inst != nil && inst.Auth.Username != "" {
		return inst.Auth.Username
	}
	return in.cfg.Kerberos.Principal
}

// dataSourceHost is the host part of a linked server's data source
// ("tcp:host,1433", `host\instance`).
func dataSourceHost(ds string) string {
	ds = strings.TrimSpace(ds)
	if i := strings.IndexByte(ds, ':'); i >= 0 && strings.EqualFold(ds[:i], "tcp") {
		ds = ds[i+1:]
	}
	if i := strings.IndexAny(ds, `,\`); i >= 0 {
		ds = ds[:i]
	}
	return ds
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// kerberosCauseRefs names the findings of this snapshot that
// kerberosCauses describes, in the same order: what keeps Kerberos from
// working for an instance.
func (in *input) kerberosCauseRefs(instance string) []FindingRef {
	refs := in.spnCauseRefs(instance)
	if raw := in.serviceAccount(instance); raw != "" && in.isLocalAccount(instance, raw) {
		refs = append(refs, ref("service_account_local", instance))
	} else if a := in.account(in.directoryAccount(instance)); in.directoryAccount(instance) != "" && a != nil && a.Found {
		refs = append(refs, ref("account_disabled", a.Name), ref("account_locked", a.Name), ref("account_rc4_only", a.Name), ref("account_no_aes_keys", a.Name))
	}
	_, crit := in.skewThresholds()
	if s := in.snap.SQL[instance]; s != nil && s.ClockMeasured && abs(s.ClockSkew) >= crit {
		refs = append(refs, ref("clock_skew_sql", instance))
	}
	if inst := in.instance(instance); inst != nil && in.noDCAnswered(inst.Domain) {
		for _, dc := range in.snap.DCs {
			refs = append(refs, ref("dc_unreachable", dc.Address))
		}
	}
	if inst := in.instance(instance); inst != nil {
		refs = append(refs, ref("dns_reverse_mismatch", inst.Host))
	}
	return refs
}

// spnCauseRefs names the SPN findings of a target's expected SPNs that
// spnCauses describes (the alias ones too).
func (in *input) spnCauseRefs(target string) []FindingRef {
	var refs []FindingRef
	for _, e := range in.expectedSPNs(target) {
		if e.LookupError != "" || isSecondarySQLSPN(e.SPN) {
			continue
		}
		holders, _ := in.spnHolders(e.SPN)
		switch {
		case len(holders) <= 1 && in.aliasJudged(e.Target, e.SPN):
			refs = append(refs, ref("spn_cname_mismatch", e.SPN))
		case len(holders) == 0:
			refs = append(refs, ref("spn_missing", e.SPN))
		case len(holders) > 1:
			refs = append(refs, ref("spn_duplicate", e.SPN))
		case e.ExpectedAccount != "" && !in.sameAccount(holders[0], e.ExpectedAccount):
			refs = append(refs, ref("spn_wrong_account", e.SPN))
		}
	}
	return refs
}

// hopCauseRefs names the findings of this snapshot that hopCauses
// describes, in the same order.
func (in *input) hopCauseRefs(instance string, sv facts.LinkedServer) []FindingRef {
	var refs []FindingRef
	if s := in.snap.SQL[instance]; s != nil && s.Up && !s.Local && strings.EqualFold(s.AuthScheme, "NTLM") {
		refs = append(refs, ref("first_hop_ntlm", instance))
	}
	if sv.TargetInstance != "" {
		refs = append(refs, in.spnCauseRefs(sv.TargetInstance)...)
		refs = append(refs, ref("service_account_local", sv.TargetInstance))
	}
	for _, p := range in.snap.DelegationPaths {
		if p.FromInstance == instance && p.LinkedServer == sv.Name {
			t := linkTarget(p.FromInstance, p.LinkedServer)
			refs = append(refs, ref("delegation_missing", t), ref("delegation_cross_domain", t))
		}
	}
	if id := in.exporterIdentity(instance); id != "" {
		for _, u := range in.snap.Users {
			if u.Found && !u.Group && in.sameAccount(u.Name, id) {
				refs = append(refs, ref("user_sensitive", u.Name), ref("user_protected_users", u.Name))
			}
		}
	}
	_, crit := in.skewThresholds()
	if skew, ok := in.hopSkew(instance, sv); ok && abs(skew) >= crit {
		refs = append(refs, ref("clock_skew_hop", linkTarget(instance, sv.Name)), ref("clock_skew_sql", instance), ref("clock_skew_sql", sv.TargetInstance))
	}
	return refs
}
