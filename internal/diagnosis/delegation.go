package diagnosis

import (
	"fmt"
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
	var out []Finding
	for _, p := range in.snap.DelegationPaths {
		target := linkTarget(p.FromInstance, p.LinkedServer)
		switch in.judgeDelegation(p) {
		case delegationMissing:
			out = append(out, in.delegationMissing(p, target))
		case delegationCrossDomain:
			f := Finding{
				Check: "delegation_cross_domain", Severity: Critical, Target: target, Instance: in.group(p.FromInstance),
				Subject: in.accountSubject(p.FromAccount),
				Summary: fmt.Sprintf("%s may delegate to %s only by constrained delegation, which does not cross domains", p.FromAccount, p.ToTarget),
				Detail: fmt.Sprintf("%s (%s) lists %s's SPN in msDS-AllowedToDelegateTo, but %s runs as %s in another domain (%s). Classic constrained delegation works only within one domain, so the second hop of linked server %s fails with %s.",
					p.FromAccount, in.accountDomain(p.FromAccount, p.FromInstance), p.ToTarget, p.ToTarget, p.ToAccount, in.accountDomain(p.ToAccount, p.ToTarget), p.LinkedServer, anonymousLogon),
				Fix:    fmt.Sprintf("Use resource-based constrained delegation, which crosses domains: allow %s on %s's account.", p.FromAccount, p.ToTarget),
				Script: in.rbcdScript(p),
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
				Script: in.rbcdScript(p),
			})
		}
	}
	return out
}

func (in *input) delegationMissing(p facts.DelegationPath, target string) Finding {
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
		f.Script = in.rbcdScript(p)
		return f
	}
	f.Fix = fmt.Sprintf("Trust %s for delegation to the specified services only (constrained delegation, Kerberos only) and list %s's SPNs; or allow it by resource-based constrained delegation on %s. Then purge %s's cached tickets (restart its SQL Server service).", p.FromAccount, p.ToTarget, p.ToAccount, p.FromInstance)
	if len(p.TargetSPNs) > 0 {
		f.Script = append(f.Script, in.setAD(p.FromAccount)+" -Add @{'msDS-AllowedToDelegateTo'="+joinQuoted(p.TargetSPNs)+"}")
	}
	// The alternative rides on its own line, so that the lines of several
	// back ends stay each with its own when a cause gathers them.
	for _, l := range in.rbcdScript(p) {
		f.Script = append(f.Script, "# or, instead, resource-based constrained delegation on the back end: "+l)
	}
	return f
}

// rbcdScript allows the front end's account on the back end's account.
// -PrincipalsAllowedToDelegateToAccount replaces the list, so the line keeps
// the principals already allowed.
func (in *input) rbcdScript(p facts.DelegationPath) []string {
	principals := in.getAD(p.FromAccount)
	if a := in.account(p.ToAccount); a != nil {
		for _, allowed := range a.RBCDAllowed {
			if !in.sameAccount(allowed, p.FromAccount) {
				principals += "," + in.getAD(allowed)
			}
		}
	}
	return []string{in.setAD(p.ToAccount) + " -PrincipalsAllowedToDelegateToAccount " + principals}
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
