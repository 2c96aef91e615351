package diagnosis

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// delegationVerdict is what the directory allows on one front-end → back-end path.
type delegationVerdict int

const (
	delegationOK           delegationVerdict = iota
	delegationMissing                        // no mechanism allows it
	delegationCrossDomain                    // only constrained delegation, which does not cross domains
	delegationCrossForest                    // only unconstrained, across domains of unrelated DNS trees
	delegationUnknownFacts                   // an account could not be read
)

// judgeDelegation decides whether the front end's account may delegate to
// the back end. Any one of unconstrained, constrained listing the back end's
// SPN, or RBCD on the back end is enough within a domain; across domains
// classic constrained delegation does not work (RBCD does), and unconstrained
// delegation across a forest trust is blocked by default since 2019.
func (in *input) judgeDelegation(p facts.DelegationPath) delegationVerdict {
	if !p.Known {
		return delegationUnknownFacts
	}
	if p.RBCD {
		return delegationOK
	}
	from := in.accountDomain(p.FromAccount, p.FromInstance)
	to := in.accountDomain(p.ToAccount, p.ToTarget)
	if from == "" || to == "" || from == to {
		if p.Unconstrained || p.ConstrainedListed {
			return delegationOK
		}
		return delegationMissing
	}
	switch {
	case p.Unconstrained && sameDNSTree(from, to):
		return delegationOK
	case p.Unconstrained:
		return delegationCrossForest
	case p.ConstrainedListed:
		return delegationCrossDomain
	}
	return delegationMissing
}

// sameDNSTree: one domain is the other's parent or child, as within one
// forest's domain tree. Domains of unrelated names may still share a forest,
// so this only softens the verdict.
func sameDNSTree(a, b string) bool {
	return strings.HasSuffix(a, "."+b) || strings.HasSuffix(b, "."+a)
}

// delegationFindings judges every self-mapped linked server's delegation
// path. A correct constrained or RBCD setup raises nothing.
func delegationFindings(in *input) []Finding {
	verdicts := make([]delegationVerdict, len(in.snap.DelegationPaths))
	for i, p := range in.snap.DelegationPaths {
		verdicts[i] = in.judgeDelegation(p)
	}
	rbcd := in.rbcdScripts(verdicts)
	var out []Finding
	for i, p := range in.snap.DelegationPaths {
		target := linkTarget(p.FromInstance, p.LinkedServer)
		switch verdicts[i] {
		case delegationMissing:
			out = append(out, in.delegationMissing(p, target, rbcd[in.backEndKey(p)]))
		case delegationCrossDomain:
			f := Finding{
				Check: "delegation_cross_domain", Severity: Critical, Target: target, Instance: in.group(p.FromInstance),
				Subject: in.accountSubject(p.FromAccount),
				Summary: fmt.Sprintf("%s may delegate to %s only by constrained delegation, which does not cross domains", p.FromAccount, p.ToTarget),
				Detail: fmt.Sprintf("%s (%s) lists %s's SPN in msDS-AllowedToDelegateTo, but %s runs as %s in another domain (%s). Classic constrained delegation works only within one domain, so the second hop of linked server %s fails with %s.",
					p.FromAccount, in.accountDomain(p.FromAccount, p.FromInstance), p.ToTarget, p.ToTarget, p.ToAccount, in.accountDomain(p.ToAccount, p.ToTarget), p.LinkedServer, anonymousLogon),
				Fix:    fmt.Sprintf("Use resource-based constrained delegation, which crosses domains: allow %s on %s's account.", p.FromAccount, p.ToTarget),
				Script: rbcd[in.backEndKey(p)].command(),
			}
			out = append(out, f)
		case delegationCrossForest:
			out = append(out, Finding{
				Check: "delegation_cross_domain", Severity: Warning, Target: target, Instance: in.group(p.FromInstance),
				Subject: in.accountSubject(p.FromAccount),
				Summary: fmt.Sprintf("%s delegates to %s in another domain by unconstrained delegation only", p.FromAccount, p.ToTarget),
				Detail: fmt.Sprintf("%s (%s) and %s's account %s (%s) are in different domains. Unconstrained delegation works within a forest, but across a forest trust it is blocked by default since the July 2019 updates (EnableTGTDelegation = No), and the second hop then fails with %s.",
					p.FromAccount, in.accountDomain(p.FromAccount, p.FromInstance), p.ToTarget, p.ToAccount, in.accountDomain(p.ToAccount, p.ToTarget), anonymousLogon),
				Fix:    fmt.Sprintf("Use resource-based constrained delegation, which works across domains and forests: allow %s on %s's account. It is also safer than unconstrained delegation.", p.FromAccount, p.ToTarget),
				Script: rbcd[in.backEndKey(p)].command(),
			})
		}
	}
	return out
}

func (in *input) delegationMissing(p facts.DelegationPath, target string, rbcd rbcdScript) Finding {
	f := Finding{
		Check: "delegation_missing", Severity: Critical, Target: target, Instance: in.group(p.FromInstance),
		Subject: in.accountSubject(p.FromAccount),
		Summary: fmt.Sprintf("%s may not delegate users' credentials to %s (linked server %s)", p.FromAccount, p.ToTarget, p.LinkedServer),
		Detail: fmt.Sprintf("Linked server %s on %s connects to %s with the caller's own credentials, so %s must be allowed to delegate them: by constrained delegation listing %s, by resource-based constrained delegation on %s, or (least safe) unconstrained delegation. None is set, so %s cannot pass the user's Kerberos ticket on and %s answers the second hop with %s.",
			p.LinkedServer, p.FromInstance, p.ToTarget, p.FromAccount, listing(p.TargetSPNs), p.ToAccount, p.FromInstance, p.ToTarget, anonymousLogon),
	}
	from, to := in.accountDomain(p.FromAccount, p.FromInstance), in.accountDomain(p.ToAccount, p.ToTarget)
	if from != "" && to != "" && from != to {
		f.Fix = fmt.Sprintf("The accounts are in different domains (%s, %s): use resource-based constrained delegation, allowing %s on %s. Then purge %s's cached tickets (restart its SQL Server service).", from, to, p.FromAccount, p.ToAccount, p.FromInstance)
		f.Script = rbcd.command()
		return f
	}
	f.Fix = fmt.Sprintf("Trust %s for delegation to the specified services only (constrained delegation, Kerberos only) and list %s's SPNs; or allow it by resource-based constrained delegation on %s. Then purge %s's cached tickets (restart its SQL Server service).", p.FromAccount, p.ToTarget, p.ToAccount, p.FromInstance)
	if len(p.TargetSPNs) > 0 {
		f.Script = append(f.Script, in.setAD(p.FromAccount)+" -Add @{'msDS-AllowedToDelegateTo'="+joinQuoted(p.TargetSPNs)+"}")
	}
	// The alternative rides on its own line, so that the lines of several
	// back ends stay each with its own when a cause gathers them.
	f.Script = append(f.Script, rbcd.alternative()...)
	return f
}

// rbcdScript is the one resource-based constrained delegation line for a
// back-end account, and the notes a reviewer needs to read with it.
type rbcdScript struct {
	line  string
	notes []string
}

// command is the line to run, after its notes.
func (r rbcdScript) command() []string {
	if r.line == "" {
		return nil
	}
	return append(append([]string(nil), r.notes...), r.line)
}

// alternative is the line commented out, as an alternative to constrained
// delegation, followed by its notes.
func (r rbcdScript) alternative() []string {
	if r.line == "" {
		return nil
	}
	return append([]string{"# or, instead, resource-based constrained delegation on the back end: " + r.line}, r.notes...)
}

// backEndKey names a path's back-end account the same way however the
// path spells it.
func (in *input) backEndKey(p facts.DelegationPath) string {
	if a := in.account(p.ToAccount); a != nil && a.Name != "" {
		return strings.ToLower(a.Name)
	}
	return strings.ToLower(in.accountSubject(p.ToAccount))
}

// rbcdScripts builds, once all paths are judged, the resource-based
// constrained delegation line of every back-end account a finding proposes
// it for. -PrincipalsAllowedToDelegateToAccount replaces the whole list, so
// two lines for one back end would leave only the second front end
// allowed, and a line naming only the front end would drop whoever the back
// end allows today. Each back end therefore gets one line that keeps the
// principals already allowed and adds every front end that needs it; every
// finding about that back end carries the same text, so causes and the fix
// script write it once.
func (in *input) rbcdScripts(verdicts []delegationVerdict) map[string]rbcdScript {
	type plan struct {
		backEnd string // as the line names it
		fronts  []string
	}
	plans := map[string]*plan{}
	var order []string
	for i, p := range in.snap.DelegationPaths {
		switch verdicts[i] {
		case delegationMissing, delegationCrossDomain, delegationCrossForest:
		default:
			continue
		}
		key := in.backEndKey(p)
		pl := plans[key]
		if pl == nil {
			pl = &plan{backEnd: p.ToAccount}
			if a := in.account(p.ToAccount); a != nil && a.Found && a.Name != "" {
				pl.backEnd = a.Name
			}
			plans[key] = pl
			order = append(order, key)
		}
		if !slices.ContainsFunc(pl.fronts, func(f string) bool { return in.sameAccount(f, p.FromAccount) }) {
			pl.fronts = append(pl.fronts, p.FromAccount)
		}
	}
	out := make(map[string]rbcdScript, len(plans))
	for _, key := range order {
		pl := plans[key]
		sort.SliceStable(pl.fronts, func(i, j int) bool { return strings.ToLower(pl.fronts[i]) < strings.ToLower(pl.fronts[j]) })
		out[key] = in.rbcdLine(pl.backEnd, pl.fronts)
	}
	return out
}

// rbcdLine allows fronts on backEnd's account, keeping the principals it
// allows today: by name when the directory named them (as an account the
// exporter read, or as the bare identity, which the cmdlet resolves in the
// back end's domain whatever its kind: user, computer, gMSA or group), by
// SID string when it could not.
func (in *input) rbcdLine(backEnd string, fronts []string) rbcdScript {
	var principals, kept, unnamed, added []string
	a := in.account(backEnd)
	if a != nil {
		for _, allowed := range a.RBCDAllowed {
			expr, name, named := in.rbcdPrincipal(allowed)
			principals = append(principals, expr)
			kept = append(kept, name)
			if !named {
				unnamed = append(unnamed, allowed)
			}
			fronts = slices.DeleteFunc(fronts, func(f string) bool { return in.sameAccount(f, name) })
		}
	}
	for _, f := range fronts {
		principals = append(principals, in.getAD(f))
		added = append(added, f)
	}
	r := rbcdScript{line: in.setAD(backEnd) + " -PrincipalsAllowedToDelegateToAccount " + strings.Join(principals, ",")}
	const replaces = "# -PrincipalsAllowedToDelegateToAccount replaces the whole list of "
	switch {
	case a == nil || !a.RBCDRead:
		r.notes = append(r.notes, fmt.Sprintf("%s%s, and the exporter could not read it: add whoever it allows today to this line (Get-%s %s -Properties PrincipalsAllowedToDelegateToAccount)",
			replaces, backEnd, in.adKind(backEnd), in.adIdentity(backEnd)))
	case len(kept) > 0 && len(added) > 0:
		r.notes = append(r.notes, fmt.Sprintf("%s%s: the line keeps the %d it allows today (%s) and adds %s",
			replaces, backEnd, len(kept), strings.Join(kept, ", "), strings.Join(added, ", ")))
	case len(kept) > 0:
		r.notes = append(r.notes, fmt.Sprintf("%s%s: the line keeps the %d it allows today (%s)",
			replaces, backEnd, len(kept), strings.Join(kept, ", ")))
	case len(added) > 1:
		r.notes = append(r.notes, fmt.Sprintf("%s%s: the line allows at once every front end that needs it (%s)",
			replaces, backEnd, strings.Join(added, ", ")))
	}
	if len(unnamed) > 0 {
		r.notes = append(r.notes, fmt.Sprintf("# the directory could not name %s (an account of another domain or forest, or a deleted one): the line keeps each by SID, and the cmdlet changes nothing if it cannot find one; drop a SID from the line only if that account should no longer be allowed",
			strings.Join(unnamed, ", ")))
	}
	return r
}

// rbcdPrincipal is how the line names one principal the back end allows
// today (an entry of RBCDAllowed), the name to show for it, and whether the
// directory could name it at all.
func (in *input) rbcdPrincipal(allowed string) (expr, name string, named bool) {
	if strings.HasPrefix(strings.ToUpper(allowed), "S-1-") {
		if a := in.accountBySID(allowed); a != nil {
			return in.getAD(a.Name), a.Name, true
		}
		return psQuote(allowed), allowed, false
	}
	if a := in.account(allowed); a != nil && a.Found {
		return in.getAD(a.Name), a.Name, true
	}
	return psQuote(samOf(allowed)), allowed, true
}

// accountBySID is the account read whose objectSid is sid, nil if none.
func (in *input) accountBySID(sid string) *facts.Account {
	for i := range in.snap.Accounts {
		if in.snap.Accounts[i].SID != "" && strings.EqualFold(in.snap.Accounts[i].SID, sid) {
			return &in.snap.Accounts[i]
		}
	}
	return nil
}

// userFindings: the users whose identity must flow over the second hop must
// be delegable. This applies to users, never to the service accounts.
func userFindings(in *input) []Finding {
	var out []Finding
	for _, u := range in.snap.Users {
		if u.LookupError != "" {
			continue
		}
		who := u.Name
		if u.Group {
			who = "members of group " + u.Name
		}
		if !u.Found {
			out = append(out, Finding{
				Check: "delegated_user_not_found", Severity: Info, Target: u.Name,
				Summary: fmt.Sprintf("Delegated principal %s does not exist in the directory", u.Name),
				Detail:  "The configuration lists it under delegated_principals, but the directory has no such user or group, so the exporter cannot check that its tickets may be delegated.",
				Fix:     "Correct the name in delegated_principals (DOMAIN\\sAMAccountName) or remove it.",
			})
			continue
		}
		if u.Sensitive {
			out = append(out, Finding{
				Check: "user_sensitive", Severity: Warning, Target: u.Name,
				Summary: fmt.Sprintf("%s is marked \"Account is sensitive and cannot be delegated\"", u.Name),
				Detail:  fmt.Sprintf("The flag (userAccountControl 0x100000) makes the tickets of %s non-forwardable, so no service may act for them on a second hop, whatever the delegation settings: their queries through a linked server that uses their own credentials fail with %s, while other users' work.", who, anonymousLogon),
				Fix:     fmt.Sprintf("If %s does not need this protection (it is meant for administrators), clear the flag; otherwise they must query the back end directly.", u.Name),
				Script:  []string{"Set-ADAccountControl -AccountNotDelegated $false -Identity " + in.adIdentity(u.Name)},
			})
		}
		if u.ProtectedUsers {
			out = append(out, Finding{
				Check: "user_protected_users", Severity: Warning, Target: u.Name,
				Summary: fmt.Sprintf("%s is in Protected Users, whose tickets are never delegated", u.Name),
				Detail:  fmt.Sprintf("Members of Protected Users get no forwardable tickets (and may not use NTLM, DES or RC4), so %s can never have their identity carried over a second hop: their linked-server queries fail with %s.", who, anonymousLogon),
				Fix:     fmt.Sprintf("If %s does not need Protected Users (it is meant for privileged accounts), remove them from the group; otherwise they must query the back end directly.", u.Name),
				Script:  []string{"Remove-ADGroupMember -Identity 'Protected Users' -Members " + in.adIdentity(u.Name) + " -Confirm:$false"},
			})
		}
	}
	return out
}
