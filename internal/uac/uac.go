// Package uac decodes the two Active Directory account attributes that decide
// how the KDC treats a service account: userAccountControl (disabled?
// delegation allowed? sensitive?) and msDS-SupportedEncryptionTypes (which
// keys the KDC may encrypt service tickets with).
package uac

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Flags is a userAccountControl value ([MS-ADTS] 2.2.16).
type Flags uint32

// userAccountControl bits.
const (
	Script                  Flags = 0x00000001
	AccountDisable          Flags = 0x00000002
	HomedirRequired         Flags = 0x00000008
	Lockout                 Flags = 0x00000010 // not maintained by AD: see Flags.Names
	PasswordNotRequired     Flags = 0x00000020
	PasswordCantChange      Flags = 0x00000040
	EncryptedTextPwdAllowed Flags = 0x00000080
	TempDuplicateAccount    Flags = 0x00000100
	NormalAccount           Flags = 0x00000200
	InterdomainTrustAccount Flags = 0x00000800
	WorkstationTrustAccount Flags = 0x00001000
	ServerTrustAccount      Flags = 0x00002000
	DontExpirePassword      Flags = 0x00010000
	MNSLogonAccount         Flags = 0x00020000
	SmartcardRequired       Flags = 0x00040000
	// TrustedForDelegation is unconstrained delegation.
	TrustedForDelegation Flags = 0x00080000
	// NotDelegated is "Account is sensitive and cannot be delegated".
	NotDelegated       Flags = 0x00100000
	UseDESKeyOnly      Flags = 0x00200000
	DontRequirePreauth Flags = 0x00400000
	PasswordExpired    Flags = 0x00800000 // computed, like Lockout
	// TrustedToAuthForDelegation is protocol transition ("use any
	// authentication protocol" for constrained delegation).
	TrustedToAuthForDelegation Flags = 0x01000000
	NoAuthDataRequired         Flags = 0x02000000
	PartialSecretsAccount      Flags = 0x04000000 // read-only domain controller
	UseAESKeys                 Flags = 0x08000000
)

var flagNames = []struct {
	flag Flags
	name string
}{
	{Script, "SCRIPT"},
	{AccountDisable, "ACCOUNTDISABLE"},
	{HomedirRequired, "HOMEDIR_REQUIRED"},
	{Lockout, "LOCKOUT"},
	{PasswordNotRequired, "PASSWD_NOTREQD"},
	{PasswordCantChange, "PASSWD_CANT_CHANGE"},
	{EncryptedTextPwdAllowed, "ENCRYPTED_TEXT_PWD_ALLOWED"},
	{TempDuplicateAccount, "TEMP_DUPLICATE_ACCOUNT"},
	{NormalAccount, "NORMAL_ACCOUNT"},
	{InterdomainTrustAccount, "INTERDOMAIN_TRUST_ACCOUNT"},
	{WorkstationTrustAccount, "WORKSTATION_TRUST_ACCOUNT"},
	{ServerTrustAccount, "SERVER_TRUST_ACCOUNT"},
	{DontExpirePassword, "DONT_EXPIRE_PASSWORD"},
	{MNSLogonAccount, "MNS_LOGON_ACCOUNT"},
	{SmartcardRequired, "SMARTCARD_REQUIRED"},
	{TrustedForDelegation, "TRUSTED_FOR_DELEGATION"},
	{NotDelegated, "NOT_DELEGATED"},
	{UseDESKeyOnly, "USE_DES_KEY_ONLY"},
	{DontRequirePreauth, "DONT_REQ_PREAUTH"},
	{PasswordExpired, "PASSWORD_EXPIRED"},
	{TrustedToAuthForDelegation, "TRUSTED_TO_AUTH_FOR_DELEGATION"},
	{NoAuthDataRequired, "NO_AUTH_DATA_REQUIRED"},
	{PartialSecretsAccount, "PARTIAL_SECRETS_ACCOUNT"},
	{UseAESKeys, "USE_AES_KEYS"},
}

// ParseFlags parses userAccountControl as LDAP returns it: a decimal string.
// The attribute is a signed 32-bit integer, so values with the top bit set may
// arrive negative; they are read as their two's-complement bit pattern.
func ParseFlags(s string) (Flags, error) {
	v, err := parseInt32Attribute(s)
	return Flags(v), err
}

// Disabled reports ACCOUNTDISABLE: the KDC issues no tickets for the account.
func (f Flags) Disabled() bool { return f&AccountDisable != 0 }

// TrustedForDelegation reports unconstrained delegation: services running as
// this account receive forwardable TGTs of their clients.
func (f Flags) TrustedForDelegation() bool { return f&TrustedForDelegation != 0 }

// TrustedToAuthForDelegation reports protocol transition: the KDC makes the
// account's S4U2Self tickets forwardable, so its constrained delegation also
// works for users who did not authenticate to it with Kerberos.
func (f Flags) TrustedToAuthForDelegation() bool { return f&TrustedToAuthForDelegation != 0 }

// NotDelegated reports that the account is marked sensitive: no service may
// delegate its credentials, whatever the service's own delegation settings.
func (f Flags) NotDelegated() bool { return f&NotDelegated != 0 }

// IsComputer reports a workstation or server (domain controller) trust
// account. Managed service accounts (MSA, gMSA) are computer-derived and
// carry WORKSTATION_TRUST_ACCOUNT too.
func (f Flags) IsComputer() bool { return f&(WorkstationTrustAccount|ServerTrustAccount) != 0 }

// Names lists the set bits by their [MS-ADTS] names, lowest bit first;
// undefined bits appear as hexadecimal.
//
// LOCKOUT and PASSWORD_EXPIRED are listed if set, but AD does not maintain
// them in userAccountControl: lockout is read from lockoutTime or from
// msDS-User-Account-Control-Computed (bit 0x10), which has the same layout.
func (f Flags) Names() []string {
	return names(uint32(f), func(bit uint32) string {
		for _, n := range flagNames {
			if uint32(n.flag) == bit {
				return n.name
			}
		}
		return ""
	})
}

// EncTypes is an msDS-SupportedEncryptionTypes value ([MS-KILE] 2.2.7).
type EncTypes uint32

// msDS-SupportedEncryptionTypes bits. The low bits are encryption types;
// AES256SK and the bits from 0x10000 up are capabilities, not ticket etypes.
const (
	DESCBCCRC EncTypes = 0x01
	DESCBCMD5 EncTypes = 0x02
	RC4HMAC   EncTypes = 0x04
	AES128    EncTypes = 0x08
	AES256    EncTypes = 0x10
	// AES256SK asks for AES session keys even when the ticket is RC4 or DES.
	AES256SK                       EncTypes = 0x20
	FASTSupported                  EncTypes = 0x10000
	CompoundIdentitySupported      EncTypes = 0x20000
	ClaimsSupported                EncTypes = 0x40000
	ResourceSIDCompressionDisabled EncTypes = 0x80000
)

var encTypeNames = []struct {
	enc  EncTypes
	name string
}{
	{DESCBCCRC, "DES_CBC_CRC"},
	{DESCBCMD5, "DES_CBC_MD5"},
	{RC4HMAC, "RC4_HMAC"},
	{AES128, "AES128_CTS_HMAC_SHA1_96"},
	{AES256, "AES256_CTS_HMAC_SHA1_96"},
	{AES256SK, "AES256_CTS_HMAC_SHA1_96_SK"},
	{FASTSupported, "FAST_SUPPORTED"},
	{CompoundIdentitySupported, "COMPOUND_IDENTITY_SUPPORTED"},
	{ClaimsSupported, "CLAIMS_SUPPORTED"},
	{ResourceSIDCompressionDisabled, "RESOURCE_SID_COMPRESSION_DISABLED"},
}

// ParseEncTypes parses msDS-SupportedEncryptionTypes as LDAP returns it, a
// decimal string; like userAccountControl it is a signed 32-bit attribute.
// An absent attribute has no string to parse: use EncTypes(0).
func ParseEncTypes(s string) (EncTypes, error) {
	v, err := parseInt32Attribute(s)
	return EncTypes(v), err
}

// Unset reports a zero value, which is what an absent attribute means too.
// The KDC then substitutes its DefaultDomainSupportedEncTypes setting:
// unconfigured, that was 0x27 (DES, RC4, AES session keys: an RC4-encrypted
// service ticket) from the November 2022 updates on, and becomes AES-only
// (0x18) with the 2026 RC4 hardening updates (CVE-2026-20833). Before 2022 the
// KDC assumed RC4.
func (e EncTypes) Unset() bool { return e == 0 }

// HasAES reports AES128 or AES256 for tickets. AES256SK alone does not count:
// it only affects session keys.
func (e EncTypes) HasAES() bool { return e&(AES128|AES256) != 0 }

// WithoutAES: the types are set (not left to the domain's default) and
// allow no AES, so tickets and keys are RC4 or DES only.
func (e EncTypes) WithoutAES() bool { return !e.Unset() && !e.HasAES() }

// HasRC4 reports RC4_HMAC.
func (e EncTypes) HasRC4() bool { return e&RC4HMAC != 0 }

// RC4Only reports RC4 without AES. DES bits are ignored: DES is disabled on
// every supported Windows version, so RC4 is then the only usable key.
func (e EncTypes) RC4Only() bool { return e.HasRC4() && !e.HasAES() }

// Names lists the set bits, lowest first; undefined bits appear as hexadecimal.
func (e EncTypes) Names() []string {
	return names(uint32(e), func(bit uint32) string {
		for _, n := range encTypeNames {
			if uint32(n.enc) == bit {
				return n.name
			}
		}
		return ""
	})
}

// names walks the set bits of v from the lowest, naming each with nameOf or,
// when it has no name, as 0x followed by hex digits.
func names(v uint32, nameOf func(bit uint32) string) []string {
	var out []string
	for i := range 32 {
		bit := uint32(1) << i
		if v&bit == 0 {
			continue
		}
		if n := nameOf(bit); n != "" {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("0x%X", bit))
		}
	}
	return out
}

// parseInt32Attribute reads an LDAP Integer-syntax value of a 32-bit
// attribute. AD returns it signed, but tools often print the unsigned form, so
// both -2^31..-1 and 2^31..2^32-1 are accepted for the high bit.
func parseInt32Attribute(s string) (uint32, error) {
	t := strings.TrimSpace(s)
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < math.MinInt32 || v > math.MaxUint32 {
		return 0, fmt.Errorf("uac: %q is not a 32-bit integer", s)
	}
	return uint32(v), nil
}
