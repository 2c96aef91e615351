package diagnosis

import (
	"fmt"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krberr"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
	"github.com/kerberos-exporter/kerberos_exporter/internal/uac"
)

// accountFindings judges the service accounts the directory returned:
// existence, disabled, locked, encryption types, unconstrained delegation.
func accountFindings(in *input) []Finding {
	var out []Finding
	for _, a := range in.snap.Accounts {
		if a.LookupError != "" || a.Kind == "local" || a.Kind == "virtual" {
			continue // no answer, or no directory object to judge (see service_account_local)
		}
		group := in.accountGroup(a.Name)
		if !a.Found {
			out = append(out, Finding{
				Check: "account_not_found", Severity: Warning, Target: a.Name, Instance: group, Subject: in.accountSubject(a.Name),
				Summary: fmt.Sprintf("Service account %s does not exist in the directory", a.Name),
				Detail:  fmt.Sprintf("No directory object is named %s, so no SPN can be registered on it and none of its delegation settings can be checked. Either the configuration names the wrong account or the service runs as an account that was deleted.", a.Name),
				Fix:     "Check the service's logon account and correct service_account in the configuration, or the account itself.",
			})
			continue
		}
		if a.Disabled {
			out = append(out, Finding{
				Check: "account_disabled", Severity: Critical, Target: a.Name, Instance: group, Subject: in.accountSubject(a.Name),
				Summary: fmt.Sprintf("Service account %s is disabled", a.Name),
				Detail:  fmt.Sprintf("The KDC issues no tickets for the SPNs of a disabled account, so Kerberos logons to its services fail or fall back to NTLM, and a service running as %s will not start again after a restart.", a.Name),
				Fix:     "Enable the account, if it is still the service's account.",
				Script:  []string{"Enable-ADAccount -Identity " + in.adIdentity(a.Name)},
			})
		}
		if a.Locked {
			out = append(out, Finding{
				Check: "account_locked", Severity: Critical, Target: a.Name, Instance: group, Subject: in.accountSubject(a.Name),
				Summary: fmt.Sprintf("Service account %s is locked out", a.Name),
				Detail:  fmt.Sprintf("A locked account cannot log on: the service running as %s will not start again, cannot get its own tickets (so cannot delegate), and something is trying wrong passwords for it (a stale password on another host or task).", a.Name),
				Fix:     "Find what uses the old password (the DC's security log, event 4740, names the source), correct it, then unlock the account.",
				Script:  []string{"Unlock-ADAccount -Identity " + in.adIdentity(a.Name)},
			})
		}
		if uac.EncTypes(a.SupportedEncTypes).WithoutAES() {
			out = append(out, in.rc4Only(a, group))
		}
		if a.TrustedForDelegation {
			out = append(out, in.unconstrained(a, group))
		}
	}
	return out
}

func (in *input) rc4Only(a facts.Account, group string) Finding {
	f := Finding{
		Check: "account_rc4_only", Severity: Warning, Target: a.Name, Instance: group, Subject: in.accountSubject(a.Name),
		Summary: fmt.Sprintf("%s allows no AES encryption (msDS-SupportedEncryptionTypes 0x%x)", a.Name, a.SupportedEncTypes),
		Detail:  fmt.Sprintf("Tickets for the SPNs of %s can only be encrypted with RC4 (or DES). Where RC4 is disabled for Kerberos — by policy, or on clients and DCs hardened by the Windows updates that retire RC4 — the KDC answers KDC_ERR_ETYPE_NOSUPP and clients fall back to NTLM.", a.Name),
		Fix:     "Allow AES128 and AES256 on the account; if its password predates the domain's AES support, reset it (and give the service the new password) so that AES keys exist.",
		Script:  []string{in.setAD(a.Name) + " -KerberosEncryptionType AES128,AES256"},
	}
	for _, spn := range a.SPNs {
		if in.ticketError(spn) == krberr.CodeETypeNoSupp {
			f.Severity = Critical
			f.Detail += fmt.Sprintf(" This is happening now: the KDC refused the exporter a ticket for %s with KDC_ERR_ETYPE_NOSUPP (error 14).", spn)
			break
		}
	}
	return f
}

func (in *input) unconstrained(a facts.Account, group string) Finding {
	f := Finding{
		Check: "delegation_unconstrained", Severity: Warning, Target: a.Name, Instance: group, Subject: in.accountSubject(a.Name),
		Summary: fmt.Sprintf("%s is trusted for delegation to any service (unconstrained)", a.Name),
		Detail:  fmt.Sprintf("Unconstrained delegation works, but every user who connects to a service running as %s leaves a forwardable TGT with it, usable against any service in the forest by whoever controls that service. It also stops at forest trusts since 2019.", a.Name),
		Fix:     "Replace it with constrained delegation to the back ends' SPNs (Kerberos only) or resource-based constrained delegation, then turn unconstrained delegation off.",
	}
	// One line per back end's SPNs, however many linked servers (of one
	// or several front ends running as the account) reach it.
	var spnSets []string
	links := map[string][]string{}
	for _, p := range in.snap.DelegationPaths {
		if in.sameAccount(p.FromAccount, a.Name) && !p.ConstrainedListed && !p.RBCD && len(p.TargetSPNs) > 0 {
			set := joinQuoted(p.TargetSPNs)
			if links[set] == nil {
				spnSets = append(spnSets, set)
			}
			links[set] = append(links[set], linkTarget(p.FromInstance, p.LinkedServer))
		}
	}
	for _, set := range spnSets {
		f.Script = append(f.Script, fmt.Sprintf("%s -Add @{'msDS-AllowedToDelegateTo'=%s}  # keeps %s %s working", in.setAD(a.Name), set, plural(len(links[set]), "linked server", "linked servers"), listing(links[set])))
	}
	f.Script = append(f.Script, "Set-ADAccountControl -TrustedForDelegation $false -Identity "+in.adIdentity(a.Name))
	return f
}

// localAccountFindings: an instance whose engine runs as LocalService or a
// machine-local account has no identity on the network.
func localAccountFindings(in *input) []Finding {
	var out []Finding
	for _, inst := range in.cfg.SQLInstances {
		account := in.serviceAccount(inst.Name)
		if account == "" || !in.isLocalAccount(inst.Name, account) {
			continue
		}
		sev := Warning
		if in.expectsKerberos(inst.Name) {
			sev = Critical
		}
		out = append(out, Finding{
			Check: "service_account_local", Severity: sev, Target: inst.Name, Instance: inst.Name,
			Summary: fmt.Sprintf("%s runs as %s, which has no network identity", inst.Name, account),
			Detail:  fmt.Sprintf("LocalService presents anonymous credentials on the network and a machine-local account exists only on its host: neither is in the directory, so no SPN for %s can be registered on it, remote Windows logons use NTLM, and it can never delegate a user's identity to a linked server.", inst.Name),
			Fix:     "Run the Database Engine as a domain account, a group managed service account, or a virtual account / NETWORK SERVICE (which act as the computer account on the network), using SQL Server Configuration Manager; then register the SPNs on that account.",
		})
	}
	return out
}

// isLocalAccount: LocalService and machine-local accounts (.\user,
// HOST\user) have no identity in the directory, read as the collectors read
// service accounts.
func (in *input) isLocalAccount(instance, account string) bool {
	if a := in.account(account); a != nil && a.Kind == "local" {
		return true
	}
	acct, err := spn.ParseAccount(account, "")
	if err != nil {
		return false // a bare name: a domain account of the default domain
	}
	kind := acct.OnHost(in.hostNetBIOS(instance)).Kind
	return kind == spn.LocalService || kind == spn.Local
}

// hostNetBIOS is the instance host's NetBIOS name: the cycle's target's,
// else (a snapshot made without the cycle) read as the cycle reads it.
func (in *input) hostNetBIOS(instance string) string {
	for _, t := range in.snap.Targets {
		if t.SQL && t.Name == instance {
			return t.HostNetBIOS
		}
	}
	var configured, fqdn, physical, machine string
	if inst := in.instance(instance); inst != nil {
		configured, fqdn = inst.NetBIOSName, inst.Host
	}
	if s := in.snap.SQL[instance]; s != nil {
		physical, machine = s.PhysicalNetBIOS, s.MachineName
	}
	return spn.HostNetBIOS(configured, physical, machine, fqdn)
}
