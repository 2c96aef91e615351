package diagnosis

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

// input is what every rule reads: the facts, the configuration, and lookups
// over both that several rules share.
type input struct {
	cfg  *config.Config
	snap *facts.Snapshot
	// dcSkipped: a DC check was skipped for lack of time, so a conclusion
	// about all the DCs (of a domain, or of every domain) is unknown.
	dcSkipped []facts.DomainController
}

func newInput(cfg *config.Config, snap *facts.Snapshot) *input {
	in := &input{cfg: cfg, snap: withoutSkipped(snap)}
	for _, dc := range snap.DCs {
		if dc.Skipped != "" {
			in.dcSkipped = append(in.dcSkipped, dc)
		}
	}
	return in
}

// withoutSkipped is snap without the checks that did not run (a host, DC
// or SPN the collector ran out of time for): the rules judge only what was
// seen, so a check that did not run is unknown, never a finding, and the
// same fact always has the same severity. The collector's own status says
// what it skipped.
func withoutSkipped(snap *facts.Snapshot) *facts.Snapshot {
	skipped := func(s string) bool { return s != "" }
	if !slices.ContainsFunc(snap.DNS, func(h facts.HostDNS) bool { return skipped(h.Skipped) }) &&
		!slices.ContainsFunc(snap.DCs, func(d facts.DomainController) bool { return skipped(d.Skipped) }) &&
		!slices.ContainsFunc(snap.Tickets, func(t facts.TicketProbe) bool { return skipped(t.Skipped) }) {
		return snap
	}
	c := *snap
	c.DNS = slices.DeleteFunc(slices.Clone(snap.DNS), func(h facts.HostDNS) bool { return skipped(h.Skipped) })
	c.DCs = slices.DeleteFunc(slices.Clone(snap.DCs), func(d facts.DomainController) bool { return skipped(d.Skipped) })
	c.Tickets = slices.DeleteFunc(slices.Clone(snap.Tickets), func(t facts.TicketProbe) bool { return skipped(t.Skipped) })
	return &c
}

// instance is the configured SQL instance of that name, nil if none.
func (in *input) instance(name string) *config.SQLInstance {
	for i := range in.cfg.SQLInstances {
		if in.cfg.SQLInstances[i].Name == name {
			return &in.cfg.SQLInstances[i]
		}
	}
	return nil
}

// service is the configured service of that name, nil if none.
func (in *input) service(name string) *config.Service {
	for i := range in.cfg.Services {
		if in.cfg.Services[i].Name == name {
			return &in.cfg.Services[i]
		}
	}
	return nil
}

// group is the report group a target name belongs to: a configured instance
// or service keeps its name, anything else is fleet-wide ("").
func (in *input) group(target string) string {
	if in.instance(target) != nil || in.service(target) != nil {
		return target
	}
	return ""
}

// expectsKerberos says whether Kerberos must work for a target: instances
// say so in expect_kerberos or by being a linked server's back end reached
// with delegated credentials; a configured service's SPNs are expected by
// definition.
func (in *input) expectsKerberos(target string) bool {
	if in.service(target) != nil {
		return true
	}
	inst := in.instance(target)
	if inst == nil {
		return false
	}
	if inst.ExpectKerberos != nil && *inst.ExpectKerberos {
		return true
	}
	for _, p := range in.snap.DelegationPaths {
		if p.ToTarget == target {
			return true
		}
	}
	return false
}

// serviceAccount is the account the instance's Database Engine runs as:
// the configured one, else the one SQL Server reported; "" when unknown.
func (in *input) serviceAccount(instance string) string {
	if inst := in.instance(instance); inst != nil && inst.ServiceAccount != "" {
		return inst.ServiceAccount
	}
	if s := in.snap.SQL[instance]; s != nil {
		return s.EngineAccount
	}
	return ""
}

// directoryAccount is the directory account whose SPNs and rights matter
// for an instance (DOMAIN\sam): the one the SPN collector expected, else the
// configured or reported account when it is a domain account; "" when
// unknown or when the service acts as its computer account unseen.
func (in *input) directoryAccount(instance string) string {
	for _, e := range in.expectedSPNs(instance) {
		if e.ExpectedAccount != "" {
			return e.ExpectedAccount
		}
	}
	raw := in.serviceAccount(instance)
	if acct, err := spn.ParseAccount(raw, ""); err == nil {
		if k := acct.OnHost(in.hostNetBIOS(instance)).Kind; k == spn.DomainUser || k == spn.ManagedOrComputer {
			return raw
		}
	}
	return ""
}

// account is the directory's view of an account, nil when it was not read.
func (in *input) account(name string) *facts.Account {
	for i := range in.snap.Accounts {
		if in.sameAccount(in.snap.Accounts[i].Name, name) {
			return &in.snap.Accounts[i]
		}
	}
	return nil
}

// splitAccount splits DOMAIN\sam and sam@domain; domain is "" when absent.
func splitAccount(name string) (domain, sam string) {
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		return name[:i], name[i+1:]
	}
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		return name[i+1:], name[:i]
	}
	return "", name
}

// samOf is the sAMAccountName part of an account name.
func samOf(name string) string {
	_, sam := splitAccount(name)
	return sam
}

// canonicalDomain maps a domain's DNS or NetBIOS name to the configured
// domain's DNS name, lower-cased (config.FindDomain); unknown names are
// lower-cased.
func (in *input) canonicalDomain(d string) string {
	if cd := in.cfg.FindDomain(d); cd != nil {
		return strings.ToLower(cd.Name)
	}
	return strings.ToLower(d)
}

// accountDomain is the domain an account lives in, from its DOMAIN\ or @
// part, else from the configured domain of the instance it serves.
func (in *input) accountDomain(account, instance string) string {
	if d, _ := splitAccount(account); d != "" && !isMachineLocalPrefix(d) {
		return in.canonicalDomain(d)
	}
	if inst := in.instance(instance); inst != nil {
		return in.canonicalDomain(inst.Domain)
	}
	return ""
}

// isMachineLocalPrefix: prefixes that name no domain.
func isMachineLocalPrefix(d string) bool {
	switch strings.ToUpper(d) {
	case ".", "NT AUTHORITY", "NT SERVICE", "BUILTIN":
		return true
	}
	return false
}

// sameAccount compares account names case-insensitively; a side without a
// domain matches any domain.
func (in *input) sameAccount(a, b string) bool {
	da, sa := splitAccount(a)
	db, sb := splitAccount(b)
	if !strings.EqualFold(sa, sb) {
		return false
	}
	return da == "" || db == "" || in.canonicalDomain(da) == in.canonicalDomain(db)
}

// accountGroup is the report group of an account's findings: the one
// instance or service that uses it, fleet-wide when shared or unknown.
func (in *input) accountGroup(account string) string {
	users := map[string]bool{}
	for _, inst := range in.cfg.SQLInstances {
		if a := in.directoryAccount(inst.Name); a != "" && in.sameAccount(a, account) {
			users[inst.Name] = true
		}
	}
	for _, s := range in.cfg.Services {
		if in.sameAccount(s.Account, account) {
			users[s.Name] = true
		}
	}
	for _, e := range in.snap.SPNs {
		if e.ExpectedAccount != "" && in.sameAccount(e.ExpectedAccount, account) && in.group(e.Target) != "" {
			users[e.Target] = true
		}
	}
	if len(users) != 1 {
		return ""
	}
	for name := range users {
		return name
	}
	return ""
}

// expectedSPNs are the expected SPN facts of one target.
func (in *input) expectedSPNs(target string) []facts.ExpectedSPN {
	var out []facts.ExpectedSPN
	for _, e := range in.snap.SPNs {
		if e.Target == target {
			out = append(out, e)
		}
	}
	return out
}

// spnFact is the directory's answer for an SPN, nil when it was not asked
// or could not be.
func (in *input) spnFact(name string) *facts.ExpectedSPN {
	for i := range in.snap.SPNs {
		e := &in.snap.SPNs[i]
		if spn.Equal(e.SPN, name) && e.LookupError == "" {
			return e
		}
	}
	return nil
}

// scanDuplicate is the forest-wide duplicate scan's entry for an SPN, nil
// when the scan did not list it.
func (in *input) scanDuplicate(name string) *facts.DuplicateSPN {
	if d := in.snap.Duplicates; d != nil {
		for i := range d.Top {
			if spn.Equal(d.Top[i].SPN, name) {
				return &d.Top[i]
			}
		}
	}
	return nil
}

// spnHolders are the accounts the directory says hold an SPN: the
// expected-SPN lookup's and the forest-wide duplicate scan's, merged (the
// scan may see a holder the lookup did not); known is false when neither
// saw the SPN. Every rule asks this one question the same way.
func (in *input) spnHolders(name string) (holders []string, known bool) {
	var lookup, scanned []string
	if e := in.spnFact(name); e != nil {
		lookup, known = e.Holders, true
	}
	if dup := in.scanDuplicate(name); dup != nil {
		scanned, known = dup.Accounts, true
	}
	return unionAccounts(lookup, scanned), known
}

// isServiceAccount says whether a configured instance or service runs as it.
func (in *input) isServiceAccount(account string) bool {
	for _, inst := range in.cfg.SQLInstances {
		if a := in.directoryAccount(inst.Name); a != "" && in.sameAccount(a, account) {
			return true
		}
	}
	for _, s := range in.cfg.Services {
		if in.sameAccount(s.Account, account) {
			return true
		}
	}
	return false
}

// linkTarget names a linked server of an instance as findings do.
func linkTarget(instance, linkedServer string) string { return instance + "/" + linkedServer }

// skewThresholds are the configured warning and critical clock skews, with
// the defaults for a configuration that was not loaded through config.Load.
func (in *input) skewThresholds() (warn, crit time.Duration) {
	warn, crit = in.cfg.Thresholds.ClockSkewWarning.Duration(), in.cfg.Thresholds.ClockSkewCritical.Duration()
	if warn <= 0 {
		warn = config.DefaultSkewWarning
	}
	if crit <= 0 {
		crit = config.DefaultSkewCritical
	}
	return warn, crit
}

// ---- PowerShell for the fix script ----

// psQuote quotes a PowerShell verbatim string literal. PowerShell reads
// U+2018, U+2019, U+201A and U+201B as single quotes too (the language
// specification's single-quote-character), so each of them is doubled as
// U+0027 is; a name like O’Brien would otherwise end the string early.
func psQuote(s string) string { return "'" + psSingleQuotes.Replace(s) + "'" }

var psSingleQuotes = strings.NewReplacer("'", "''", "\u2018", "\u2018\u2018", "\u2019", "\u2019\u2019", "\u201A", "\u201A\u201A", "\u201B", "\u201B\u201B")

// adKind is the ActiveDirectory module noun for an account: ADUser,
// ADComputer or ADServiceAccount.
func (in *input) adKind(account string) string {
	kind := ""
	if a := in.account(account); a != nil {
		kind = a.Kind
	}
	switch {
	case kind == "managed":
		return "ADServiceAccount"
	case kind == "computer", kind != "user" && strings.HasSuffix(samOf(account), "$"):
		return "ADComputer"
	default:
		return "ADUser"
	}
}

// adIdentity is the -Identity argument for an account, with -Server when it
// lives in another configured domain than the first (the one the script is
// most likely run in).
func (in *input) adIdentity(account string) string {
	id := psQuote(samOf(account))
	d, _ := splitAccount(account)
	if d == "" || len(in.cfg.Domains) < 2 {
		return id
	}
	if dns := in.canonicalDomain(d); dns != strings.ToLower(in.cfg.Domains[0].Name) && strings.Contains(dns, ".") {
		return id + " -Server " + psQuote(dns)
	}
	return id
}

// getAD is "(Get-ADUser 'sam')" for the account.
func (in *input) getAD(account string) string {
	return "(Get-" + in.adKind(account) + " " + in.adIdentity(account) + ")"
}

// setAD starts a Set-ADUser/Set-ADComputer/Set-ADServiceAccount line.
func (in *input) setAD(account string) string {
	return "Set-" + in.adKind(account) + " " + in.adIdentity(account)
}

// accountDN is the account's distinguished name when the directory gave it,
// else a PowerShell expression that looks it up.
func (in *input) accountDN(account string) string {
	if a := in.account(account); a != nil && a.DN != "" {
		return psQuote(a.DN)
	}
	return in.getAD(account) + ".DistinguishedName"
}

// joinQuoted joins names as 'a','b'.
func joinQuoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = psQuote(n)
	}
	return strings.Join(q, ",")
}

// plural picks the singular or plural form.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// listing joins names for prose: "a", "a and b", "a, b and c".
func listing(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// sortedKeys are a map's keys in order, for deterministic iteration.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fmtSkew writes a skew as "4m10s ahead of" / "behind".
func fmtSkew(d time.Duration) string {
	dir := "ahead of"
	if d < 0 {
		dir, d = "behind", -d
	}
	return fmt.Sprintf("%s %s", d.Round(time.Second), dir)
}

// ---- what causes are about (see Causes) ----

// accountSubject spells an account the same way wherever a finding names
// it as the subject of its cause: NETBIOS\sam for an account of a
// configured domain, the name as given otherwise.
func (in *input) accountSubject(name string) string {
	d, sam := splitAccount(name)
	if d == "" && len(in.cfg.Domains) == 1 {
		d = in.cfg.Domains[0].Name
	}
	if d == "" || isMachineLocalPrefix(d) {
		return name
	}
	if cd := in.cfg.FindDomain(d); cd != nil {
		return strings.ToUpper(cd.NetBIOS()) + `\` + sam
	}
	return name
}

// domainSubject is the DNS name of the domain a target lives in: its
// account's, else its configured domain's, else the only configured one.
func (in *input) domainSubject(account, target string) string {
	if d := in.accountDomain(account, target); d != "" {
		return d
	}
	if s := in.service(target); s != nil {
		if d := in.accountDomain(s.Account, ""); d != "" {
			return d
		}
	}
	if len(in.cfg.Domains) > 0 {
		return strings.ToLower(in.cfg.Domains[0].Name)
	}
	return "the domain"
}

// exporterSubject names the exporter's login on an instance.
func (in *input) exporterSubject(instance string) string {
	return orDefault(in.exporterIdentity(instance), "the exporter")
}

// ref names a finding that explains another.
func ref(check, target string) FindingRef { return FindingRef{check, target} }
