package diagnosis

import (
	"fmt"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krberr"
)

// RC4 enforcement readiness (CVE-2026-20833). Since the April 2026 Windows
// updates, domain controllers stop issuing RC4 service tickets for accounts
// without msDS-SupportedEncryptionTypes, and from July 2026 that cannot be
// rolled back. An account whose password predates the domain's AES support
// has an RC4 key only: it then gets no ticket at all (KDC_ERR_ETYPE_NOSUPP),
// and clients fall back to NTLM.
//
// Whether the DCs enforce is the kerberos.rc4_enforced setting, which makes
// a missing AES key critical for accounts whose msDS-SupportedEncryptionTypes
// does not allow RC4 explicitly; a KDC that already refused a ticket for one
// of the account's SPNs with error 14 makes it critical in any case. Else a
// missing AES key is a warning.

// rc4Findings: SPNs whose tickets are RC4 today, accounts and krbtgt
// accounts without AES keys. Unknown facts raise nothing.
func rc4Findings(in *input) []Finding {
	var out []Finding
	for _, t := range in.snap.Tickets {
		if t.OK && isRC4(t.TicketEType) {
			out = append(out, in.rc4Ticket(t))
		}
	}
	domains := map[string]facts.DomainAES{}
	for _, d := range in.snap.AESDomains {
		domains[strings.ToLower(d.Domain)] = d
		if possible, known := d.AESKeysPossible(d.Krbtgt.PwdLastSet); d.Krbtgt.Found && known && !possible {
			out = append(out, in.krbtgtNoAES(d))
		}
	}
	for _, a := range in.snap.AccountKeys {
		if !a.Found {
			continue
		}
		d := domains[strings.ToLower(a.Domain)]
		if possible, known := d.AESKeysPossible(a.PwdLastSet); known && !possible {
			out = append(out, in.accountNoAES(a, d))
		}
	}
	return out
}

func isRC4(etype string) bool { return strings.HasPrefix(etype, "rc4-") }

// probedHolders are the accounts holding an SPN the KDC probe asked for:
// an expected SPN, or the canonical-host SPN of an alias.
func (in *input) probedHolders(spn string) []string {
	if h, known := in.spnHolders(spn); known {
		return h
	}
	for _, c := range in.snap.CanonicalSPNs {
		if strings.EqualFold(c.Requested, spn) && c.LookupError == "" {
			return c.Holders
		}
	}
	return nil
}

// accountKeys is the directory's view of an account's keys, nil if unread.
func (in *input) accountKeys(name string) (*facts.AccountKeys, facts.DomainAES) {
	for i := range in.snap.AccountKeys {
		a := &in.snap.AccountKeys[i]
		if a.Found && in.sameAccount(a.Name, name) {
			for _, d := range in.snap.AESDomains {
				if strings.EqualFold(d.Domain, a.Domain) {
					return a, d
				}
			}
			return a, facts.DomainAES{}
		}
	}
	return nil, facts.DomainAES{}
}

// rc4Refused: the KDC already refused a ticket for one of the account's
// SPNs for lack of a usable key (error 14).
func (in *input) rc4Refused(account string) bool {
	for _, t := range in.snap.Tickets {
		if t.ErrorCode != krberr.CodeETypeNoSupp {
			continue
		}
		for _, h := range in.probedHolders(t.SPN) {
			if in.sameAccount(h, account) {
				return true
			}
		}
	}
	return false
}

func (in *input) rc4Ticket(t facts.TicketProbe) Finding {
	f := Finding{
		Check: "spn_rc4_ticket", Severity: Warning, Target: t.SPN, Instance: in.group(t.Target),
		Summary: fmt.Sprintf("The KDC issues RC4 tickets for %s", t.SPN),
		Detail: fmt.Sprintf("Offered what a Windows client offers, the KDC encrypted the ticket for %s with %s (session key %s). Anyone in the domain can ask for such a ticket and crack the service account's password offline (Kerberoasting), and RC4 is being retired: since the April 2026 updates (CVE-2026-20833) domain controllers stop issuing RC4 tickets for accounts without msDS-SupportedEncryptionTypes, so an account without AES keys then gets no ticket at all and its clients fall back to NTLM.",
			t.SPN, t.TicketEType, orDefault(t.SessionKeyEType, "unknown")),
		Fix: "Reset the service account's password (give the service the new one; a gMSA changes its own), so that AES keys exist, then set its msDS-SupportedEncryptionTypes to 0x18 (24: AES128 and AES256), so that the KDC issues AES tickets.",
	}
	holders := in.probedHolders(t.SPN)
	if len(holders) != 1 {
		f.Script = []string{"# reset the password of the account holding " + psArg(t.SPN) + ", then set its msDS-SupportedEncryptionTypes to 24"}
		return f
	}
	holder := holders[0]
	f.Subject = in.accountSubject(holder)
	f.Detail += fmt.Sprintf(" The SPN is held by %s.", holder)
	reset := in.resetLine(holder)
	if a, d := in.accountKeys(holder); a != nil {
		possible, known := d.AESKeysPossible(a.PwdLastSet)
		switch {
		case known && possible && a.SupportedEncTypesSet && a.SupportedEncTypes&0x18 != 0:
			// AES allowed, offered by the client, and still RC4: the KDC
			// has no AES key for the account, whatever pwdLastSet says.
			f.Detail += fmt.Sprintf(" Its password was set on %s, after the domain could make AES keys, but its msDS-SupportedEncryptionTypes (0x%X) already allows AES and the KDC still chose RC4: the account has no AES keys after all, and the reset is needed.", a.PwdLastSet.UTC().Format("2006-01-02"), a.SupportedEncTypes)
			f.Fix = fmt.Sprintf("Reset the password of %s (give the service the new one; a gMSA changes its own): its msDS-SupportedEncryptionTypes already allows AES and the KDC still issued RC4, so its AES keys are missing although pwdLastSet is recent enough. Then keep msDS-SupportedEncryptionTypes at 0x18 (24: AES128 and AES256).", holder)
		case known && possible:
			f.Detail += fmt.Sprintf(" Its password was set on %s, after the domain could make AES keys, so the AES keys exist and only the encryption types need changing.", a.PwdLastSet.UTC().Format("2006-01-02"))
			reset = "# " + strings.TrimPrefix(reset, "# ") + " (not needed: its password already made AES keys)"
			f.Fix = fmt.Sprintf("Set msDS-SupportedEncryptionTypes of %s to 0x18 (24: AES128 and AES256), so that the KDC issues AES tickets; its password already made AES keys, so no reset is needed.", holder)
		case known && d.BelowAESLevel():
			f.Detail += fmt.Sprintf(" Its domain is at functional level %d, below Windows Server 2008: it has an RC4 key only, and the domain must be raised to 2008 or higher before the reset.", d.FunctionalLevel)
		case known:
			f.Detail += fmt.Sprintf(" Its password was last set on %s, before the domain could make AES keys: it has an RC4 key only, and the reset must come first.", a.PwdLastSet.UTC().Format("2006-01-02"))
		}
	}
	f.Script = []string{reset, in.setAD(holder) + " -Replace @{'msDS-SupportedEncryptionTypes'=24}"}
	if a, d := in.accountKeys(holder); a != nil && d.BelowAESLevel() {
		f.Script = append([]string{raiseLevelLine(d.Domain)}, f.Script...)
	}
	return f
}

func (in *input) accountNoAES(a facts.AccountKeys, d facts.DomainAES) Finding {
	f := Finding{
		Check: "account_no_aes_keys", Severity: Warning, Target: a.Name, Instance: in.accountGroup(a.Name),
		Subject: in.accountSubject(a.Name),
		Summary: fmt.Sprintf("%s has no AES keys: its password predates the domain's AES support", a.Name),
		Detail: fmt.Sprintf("The password of %s was last set on %s, before %s could make AES keys (its Read-only Domain Controllers group was created on %s), so the account has an RC4 key only. Once the domain controllers enforce AES (the 2026 updates for CVE-2026-20833 do so for accounts without msDS-SupportedEncryptionTypes) the KDC answers KDC_ERR_ETYPE_NOSUPP (error 14) for its SPNs: no ticket, NTLM fallback, and no delegation to linked servers.",
			a.Name, a.PwdLastSet.UTC().Format("2006-01-02"), d.Domain, d.AESSince.UTC().Format("2006-01-02")),
		Fix: "Reset the account's password (and give the service the new one; a gMSA changes its own) so that AES keys are made, then set msDS-SupportedEncryptionTypes to 0x18 (24).",
		Script: []string{
			in.resetLine(a.Name),
			in.setAD(a.Name) + " -Replace @{'msDS-SupportedEncryptionTypes'=24}",
		},
	}
	if d.BelowAESLevel() {
		f.Summary = fmt.Sprintf("%s has no AES keys: its domain is below the Windows Server 2008 functional level", a.Name)
		f.Detail = fmt.Sprintf("%s is at domain functional level %d (msDS-Behavior-Version), below Windows Server 2008 (3): its domain controllers make no AES keys for any password, so %s has an RC4 key only. Once the domain controllers enforce AES (the 2026 updates for CVE-2026-20833 do so for accounts without msDS-SupportedEncryptionTypes) the KDC answers KDC_ERR_ETYPE_NOSUPP (error 14) for its SPNs: no ticket, NTLM fallback, and no delegation to linked servers.",
			d.Domain, d.FunctionalLevel, a.Name)
		f.Fix = "Raise the domain functional level to Windows Server 2008 or higher (every DC must run 2008 or later), then reset the account's password (and give the service the new one; a gMSA changes its own) so that AES keys are made, then set msDS-SupportedEncryptionTypes to 0x18 (24)."
		f.Script = append([]string{raiseLevelLine(d.Domain)}, f.Script...)
	}
	// The 2026 enforcement refuses RC4 to accounts whose
	// msDS-SupportedEncryptionTypes does not allow it (unset or 0 mean the
	// default); an account that allows RC4 explicitly keeps getting RC4
	// tickets until the KDC is seen refusing one.
	allowsRC4 := a.SupportedEncTypesSet && a.SupportedEncTypes&0x4 != 0
	switch {
	case in.rc4Refused(a.Name):
		f.Severity = Critical
		f.Detail += " The KDC already refused a ticket for one of its SPNs with error 14: Kerberos to this account is broken."
	case in.cfg.Kerberos.RC4Enforced && !allowsRC4:
		f.Severity = Critical
		f.Detail += " The domain controllers enforce AES now (kerberos.rc4_enforced) and its msDS-SupportedEncryptionTypes does not allow RC4: Kerberos to this account is broken."
	case in.cfg.Kerberos.RC4Enforced:
		f.Detail += fmt.Sprintf(" Its msDS-SupportedEncryptionTypes (0x%X) allows RC4 explicitly, so the enforcement (kerberos.rc4_enforced) does not refuse it yet; it stays Kerberoastable and breaks once RC4 is removed from it or from the domain.", a.SupportedEncTypes)
	}
	return f
}

// resetLine is the password reset that makes an account's AES keys: a
// command for a user account. A computer account's password is reset on
// the host (a reset in the directory alone breaks its secure channel), and
// a gMSA changes its own, so for those it is a comment.
func (in *input) resetLine(account string) string {
	switch in.adKind(account) {
	case "ADComputer":
		return "# " + psArg(account) + " is a computer account: reset its password on that host with Test-ComputerSecureChannel -Repair (or Reset-ComputerMachinePassword); a reset in the directory alone breaks its secure channel"
	case "ADServiceAccount":
		return "# " + psArg(account) + " is a gMSA and changes its own password: force a rotation or wait for the next one, then check its keys again"
	}
	return "Set-ADAccountPassword -Identity " + in.adIdentity(account) + " -Reset  # then give the service the new password"
}

func (in *input) krbtgtNoAES(d facts.DomainAES) Finding {
	f := Finding{
		Check: "krbtgt_no_aes_keys", Severity: Warning, Target: d.Domain,
		Summary: fmt.Sprintf("The krbtgt account of %s has no AES keys", d.Domain),
		Detail: fmt.Sprintf("The password of %s was last set on %s, before the domain could make AES keys (%s): ticket-granting tickets are RC4-encrypted, and once the domain controllers refuse RC4 the domain's Kerberos breaks for everyone.",
			d.Krbtgt.Name, d.Krbtgt.PwdLastSet.UTC().Format("2006-01-02"), d.AESSince.UTC().Format("2006-01-02")),
		Fix: "Reset the krbtgt password twice, letting it replicate to every DC in between (Microsoft's New-KrbtgtKeys.ps1 does this safely); each reset makes AES keys.",
		Script: []string{
			"Set-ADAccountPassword -Identity 'krbtgt' -Server " + psQuote(d.Domain) + " -Reset -NewPassword (Read-Host -AsSecureString 'any password; the DC replaces it')  # the first reset",
			"# wait until it has replicated to every DC (repadmin /showobjmeta), then reset once more",
		},
	}
	if d.BelowAESLevel() {
		f.Detail = fmt.Sprintf("%s is at domain functional level %d (msDS-Behavior-Version), below Windows Server 2008 (3): its domain controllers make no AES keys for any password, so %s has an RC4 key only. Ticket-granting tickets are RC4-encrypted, and once the domain controllers refuse RC4 the domain's Kerberos breaks for everyone.",
			d.Domain, d.FunctionalLevel, d.Krbtgt.Name)
		f.Fix = "Raise the domain functional level to Windows Server 2008 or higher (every DC must run 2008 or later): the raise resets the krbtgt password once and so makes its AES keys; check them afterwards, and reset it twice more (Microsoft's New-KrbtgtKeys.ps1) if they are still missing."
		f.Script = []string{raiseLevelLine(d.Domain), "# then check the krbtgt account's keys again"}
	}
	if in.cfg.Kerberos.RC4Enforced {
		f.Severity = Critical
	}
	return f
}

// raiseLevelLine raises a domain to the Windows Server 2008 functional level,
// the lowest at which domain controllers make AES keys.
func raiseLevelLine(domain string) string {
	return "Set-ADDomainMode -Identity " + psQuote(domain) + " -DomainMode Windows2008Domain  # every DC must run Windows Server 2008 or later"
}
