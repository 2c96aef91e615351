package uac

import (
	"reflect"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		in   string
		want Flags
	}{
		{"512", NormalAccount},
		{" 66048 ", NormalAccount | DontExpirePassword},
		{"4096", WorkstationTrustAccount},
		{"532480", ServerTrustAccount | TrustedForDelegation},
		{"0", 0},
		{"+514", NormalAccount | AccountDisable},
		{"-2147483648", 0x80000000},
		{"2147483648", 0x80000000},
		{"-1", 0xFFFFFFFF},
		{"4294967295", 0xFFFFFFFF},
	}
	for _, tt := range tests {
		got, err := ParseFlags(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFlags(%q) = %#x, %v; want %#x", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", " ", "abc", "0x200", "1.5", "512 512", "4294967296", "-2147483649", "99999999999999999999"} {
		if got, err := ParseFlags(bad); err == nil {
			t.Errorf("ParseFlags(%q) = %#x, want error", bad, got)
		}
	}
}

func TestFlagsPredicates(t *testing.T) {
	tests := []struct {
		name                                                             string
		f                                                                Flags
		disabled, unconstrained, protocolTransition, sensitive, computer bool
	}{
		{"plain user", NormalAccount | DontExpirePassword, false, false, false, false, false},
		{"disabled user", NormalAccount | AccountDisable, true, false, false, false, false},
		{"sensitive admin", NormalAccount | NotDelegated, false, false, false, true, false},
		{"SQL host with unconstrained delegation", WorkstationTrustAccount | TrustedForDelegation, false, true, false, false, true},
		{"gMSA with protocol transition", WorkstationTrustAccount | TrustedToAuthForDelegation, false, false, true, false, true},
		{"domain controller", ServerTrustAccount | TrustedForDelegation, false, true, false, false, true},
		{"read-only DC", WorkstationTrustAccount | PartialSecretsAccount, false, false, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			if f.Disabled() != tt.disabled || f.TrustedForDelegation() != tt.unconstrained ||
				f.TrustedToAuthForDelegation() != tt.protocolTransition || f.NotDelegated() != tt.sensitive ||
				f.IsComputer() != tt.computer {
				t.Errorf("%#x: disabled=%v unconstrained=%v pt=%v sensitive=%v computer=%v", uint32(f),
					f.Disabled(), f.TrustedForDelegation(), f.TrustedToAuthForDelegation(), f.NotDelegated(), f.IsComputer())
			}
		})
	}
}

func TestFlagsNames(t *testing.T) {
	tests := []struct {
		f    Flags
		want []string
	}{
		{0, nil},
		{NormalAccount | DontExpirePassword, []string{"NORMAL_ACCOUNT", "DONT_EXPIRE_PASSWORD"}},
		{AccountDisable | Lockout | NormalAccount, []string{"ACCOUNTDISABLE", "LOCKOUT", "NORMAL_ACCOUNT"}},
		{WorkstationTrustAccount | TrustedToAuthForDelegation, []string{"WORKSTATION_TRUST_ACCOUNT", "TRUSTED_TO_AUTH_FOR_DELEGATION"}},
		{NotDelegated | UseDESKeyOnly | DontRequirePreauth, []string{"NOT_DELEGATED", "USE_DES_KEY_ONLY", "DONT_REQ_PREAUTH"}},
		{PartialSecretsAccount | ServerTrustAccount, []string{"SERVER_TRUST_ACCOUNT", "PARTIAL_SECRETS_ACCOUNT"}},
		{0x4 | 0x80000000, []string{"0x4", "0x80000000"}},
	}
	for _, tt := range tests {
		if got := tt.f.Names(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%#x.Names() = %v, want %v", uint32(tt.f), got, tt.want)
		}
	}
	// Every named constant has a distinct single bit and a name.
	seen := map[Flags]bool{}
	for _, n := range flagNames {
		if n.flag == 0 || n.flag&(n.flag-1) != 0 || seen[n.flag] || n.name == "" {
			t.Errorf("bad entry %#x %q", uint32(n.flag), n.name)
		}
		seen[n.flag] = true
	}
}

func TestParseEncTypes(t *testing.T) {
	tests := []struct {
		in                       string
		want                     EncTypes
		unset, aes, rc4, rc4Only bool
		names                    []string
	}{
		{"0", 0, true, false, false, false, nil},
		{"24", AES128 | AES256, false, true, false, false, []string{"AES128_CTS_HMAC_SHA1_96", "AES256_CTS_HMAC_SHA1_96"}},
		{"28", RC4HMAC | AES128 | AES256, false, true, true, false, []string{"RC4_HMAC", "AES128_CTS_HMAC_SHA1_96", "AES256_CTS_HMAC_SHA1_96"}},
		{"4", RC4HMAC, false, false, true, true, []string{"RC4_HMAC"}},
		{"7", DESCBCCRC | DESCBCMD5 | RC4HMAC, false, false, true, true, []string{"DES_CBC_CRC", "DES_CBC_MD5", "RC4_HMAC"}},
		{"39", 0x27, false, false, true, true, []string{"DES_CBC_CRC", "DES_CBC_MD5", "RC4_HMAC", "AES256_CTS_HMAC_SHA1_96_SK"}},
		{"3", DESCBCCRC | DESCBCMD5, false, false, false, false, []string{"DES_CBC_CRC", "DES_CBC_MD5"}},
		{"16", AES256, false, true, false, false, []string{"AES256_CTS_HMAC_SHA1_96"}},
		{"32", AES256SK, false, false, false, false, []string{"AES256_CTS_HMAC_SHA1_96_SK"}},
		// A domain controller: AES plus FAST, compound identity and claims.
		{"458776", AES128 | AES256 | FASTSupported | CompoundIdentitySupported | ClaimsSupported, false, true, false, false,
			[]string{"AES128_CTS_HMAC_SHA1_96", "AES256_CTS_HMAC_SHA1_96", "FAST_SUPPORTED", "COMPOUND_IDENTITY_SUPPORTED", "CLAIMS_SUPPORTED"}},
		{"-2147483644", 0x80000004, false, false, true, true, []string{"RC4_HMAC", "0x80000000"}},
	}
	for _, tt := range tests {
		e, err := ParseEncTypes(tt.in)
		if err != nil || e != tt.want {
			t.Errorf("ParseEncTypes(%q) = %#x, %v; want %#x", tt.in, e, err, tt.want)
			continue
		}
		if e.Unset() != tt.unset || e.HasAES() != tt.aes || e.HasRC4() != tt.rc4 || e.RC4Only() != tt.rc4Only {
			t.Errorf("%#x: unset=%v aes=%v rc4=%v rc4only=%v", uint32(e), e.Unset(), e.HasAES(), e.HasRC4(), e.RC4Only())
		}
		if got := e.Names(); !reflect.DeepEqual(got, tt.names) {
			t.Errorf("%#x.Names() = %v, want %v", uint32(e), got, tt.names)
		}
	}
	for _, bad := range []string{"", "AES", "0x18", "1e3", "24,16"} {
		if got, err := ParseEncTypes(bad); err == nil {
			t.Errorf("ParseEncTypes(%q) = %#x, want error", bad, got)
		}
	}
}

func TestEncTypesWithoutAES(t *testing.T) {
	for v, want := range map[EncTypes]bool{
		0:                  false, // unset: the domain's default, which has AES
		RC4HMAC:            true,
		DESCBCMD5:          true,
		RC4HMAC | AES256:   false,
		AES128 | AES256:    false,
		RC4HMAC | AES256SK: true, // AES session keys are no AES ticket key
	} {
		if got := v.WithoutAES(); got != want {
			t.Errorf("EncTypes(%#x).WithoutAES() = %v, want %v", uint32(v), got, want)
		}
	}
}
