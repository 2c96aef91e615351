package krberr

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

const testSPN = "MSSQLSvc/sql01.corp.example.com:1433"

func kdcError(code int32, etext string) messages.KRBError {
	return messages.NewKRBError(types.NewPrincipalName(nametype.KRB_NT_SRV_INST, testSPN), "CORP.EXAMPLE.COM", code, etext)
}

// tgsFailure wraps a KDC error the way gokrb5's client does in a TGS exchange.
func tgsFailure(code int32) error {
	return krberror.Errorf(kdcError(code, ""), krberror.KDCError,
		"TGS Exchange Error: kerberos error response from KDC when requesting for %s", testSPN)
}

func TestCodeFromGokrb5Errors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int32
	}{
		{"KRBError value", kdcError(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, ""), 7},
		{"KRBError pointer", func() error { e := kdcError(errorcode.KRB_AP_ERR_SKEW, ""); return &e }(), 37},
		{"KRBError wrapped with %w", fmt.Errorf("probe %s: %w", testSPN, kdcError(errorcode.KDC_ERR_PRINCIPAL_NOT_UNIQUE, "")), 8},
		{"KRBError in errors.Join", errors.Join(errors.New("dial tcp: timeout"), kdcError(errorcode.KDC_ERR_BADOPTION, "")), 13},
		{"KRBError with e-text", kdcError(errorcode.KDC_ERR_ETYPE_NOSUPP, "no common etype (code 99)"), 14},
		{"Krberror from a TGS exchange", tgsFailure(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN), 7},
		{"Krberror wrapped twice", fmt.Errorf("login: %w", krberror.Errorf(tgsFailure(errorcode.KRB_AP_ERR_MODIFIED), krberror.KRBMsgError, "retry (3) failed")), 41},
		{"Krberror from an AS exchange", krberror.Errorf(kdcError(errorcode.KDC_ERR_PREAUTH_FAILED, ""), krberror.KDCError, "AS Exchange Error: kerberos error response from KDC"), 24},
		{"unnamed code as value", kdcError(99, ""), 99},
		{"unnamed code in text", tgsFailure(99), 99},
		{"negative code in text", tgsFailure(-5), -5},
		{"zero code", tgsFailure(0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Code(tt.err)
			if !ok || got != tt.want {
				t.Errorf("Code(%q) = %d, %v; want %d", tt.err, got, ok, tt.want)
			}
		})
	}
}

// The text gokrb5 produces is what the fallback relies on: pin it.
func TestGokrb5Format(t *testing.T) {
	got := tgsFailure(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN).Error()
	want := "[Root cause: KDC_Error] KDC_Error: TGS Exchange Error: kerberos error response from KDC when requesting for " +
		testSPN + ": KRB Error: (7) KDC_ERR_S_PRINCIPAL_UNKNOWN Server not found in Kerberos database"
	if got != want {
		t.Errorf("gokrb5 formats\n%q\nwant\n%q", got, want)
	}
	if got := kdcError(99, "").Error(); got != "KRB Error: Unknown ErrorCode 99" {
		t.Errorf("unnamed code formats as %q", got)
	}
	// Krberror does not unwrap, so only the text carries the code.
	var k messages.KRBError
	if errors.As(tgsFailure(7), &k) {
		t.Error("Krberror now unwraps: the text fallback may no longer be needed")
	}
}

func TestCodeFromText(t *testing.T) {
	tests := []struct {
		text string
		want int32
		ok   bool
	}{
		{"[Root cause: KDC_Error] KDC_Error: TGS Exchange Error: kerberos error response from KDC: KRB Error: (7) KDC_ERR_S_PRINCIPAL_UNKNOWN Server not found in Kerberos database", 7, true},
		{"[Root cause: Networking_Error] AS Exchange Error: failed sending AS_REQ to KDC: dial tcp 127.0.0.1:88 (port 88): connection refused", 0, false},
		{"KRB Error: (37) KRB_AP_ERR_SKEW Clock skew too great", 37, true},
		{"attempt (2) of (3): KRB Error: (24) KDC_ERR_PREAUTH_FAILED", 24, true},
		{"KRB Error: (x) then KRB Error: (25) KDC_ERR_PREAUTH_REQUIRED", 25, true},
		{"KRB Error: (14) first, KRB Error: (6) second", 14, true},
		{"KRB Error: Unknown ErrorCode 93", 93, true},
		{"KRB Error: Unknown ErrorCode -2147483648", math.MinInt32, true},
		{"KRB Error: (2147483647)", math.MaxInt32, true},
		{"KRB Error: (2147483648)", 0, false},
		{"KRB Error: (99999999999999999999999) KDC_ERR_X", 0, false},
		{"KRB Error: Unknown ErrorCode 2147483648", 0, false},
		{"KRB Error: (7", 0, false},
		{"KRB Error: ()", 0, false},
		{"KRB Error: (-)", 0, false},
		{"KRB Error: ( 7)", 0, false},
		{"KRB Error:(7)", 0, false},
		{"krb error: (7)", 0, false},
		{"KDC_ERR_S_PRINCIPAL_UNKNOWN (7)", 0, false},
		{"error code 7", 0, false},
		{"KRB Error: ", 0, false},
		{"", 0, false},
		{"\x00\xff KRB Error: (\xff)", 0, false},
	}
	for _, tt := range tests {
		got, ok := Code(errors.New(tt.text))
		if ok != tt.ok || got != tt.want {
			t.Errorf("Code(%q) = %d, %v; want %d, %v", tt.text, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := Code(nil); ok {
		t.Error("Code(nil) reported a code")
	}
}

// Every code gokrb5 can format, named or not, comes back out of its text.
func TestCodeRoundTripsThroughText(t *testing.T) {
	check := func(c int32) {
		if got, ok := Code(errors.New(tgsFailure(c).Error())); !ok || got != c {
			t.Errorf("code %d came back as %d, %v", c, got, ok)
		}
	}
	for c := int32(-3); c <= 100; c++ {
		check(c)
	}
	check(math.MinInt32)
	check(math.MaxInt32)
}

func TestNameAndMeaning(t *testing.T) {
	for code, want := range map[int32]string{
		6: "KDC_ERR_C_PRINCIPAL_UNKNOWN", 7: "KDC_ERR_S_PRINCIPAL_UNKNOWN", 14: "KDC_ERR_ETYPE_NOSUPP",
		18: "KDC_ERR_CLIENT_REVOKED", 24: "KDC_ERR_PREAUTH_FAILED", 25: "KDC_ERR_PREAUTH_REQUIRED",
		37: "KRB_AP_ERR_SKEW", 41: "KRB_AP_ERR_MODIFIED", 68: "KDC_ERR_WRONG_REALM",
		30: "UNKNOWN_30", 43: "UNKNOWN_43", 77: "UNKNOWN_77", -1: "UNKNOWN_-1",
	} {
		if got := Name(code); got != want {
			t.Errorf("Name(%d) = %q, want %q", code, got, want)
		}
	}
	if m := Meaning(7); !strings.Contains(m, "SPN") || !strings.Contains(m, "NTLM") {
		t.Errorf("Meaning(7) = %q", m)
	}
	if m := Meaning(37); !strings.Contains(m, "5 minutes") {
		t.Errorf("Meaning(37) = %q", m)
	}
	if m := Meaning(1000); !strings.Contains(m, "1000") {
		t.Errorf("Meaning(1000) = %q", m)
	}
}

// The table covers exactly the codes RFC 4120 defines, which are the ones
// gokrb5 names, and agrees with gokrb5 on every name.
func TestTableMatchesGokrb5(t *testing.T) {
	for c := int32(-1); c <= 200; c++ {
		lookup := errorcode.Lookup(c)
		_, known := codes[c]
		if gokrb5Knows := !strings.HasPrefix(lookup, "Unknown"); gokrb5Knows != known {
			t.Errorf("code %d: gokrb5 says %q, table has it: %v", c, lookup, known)
			continue
		}
		if known {
			if want := fmt.Sprintf("(%d) %s ", c, Name(c)); !strings.HasPrefix(lookup, want) {
				t.Errorf("code %d: gokrb5 says %q, table name %q", c, lookup, Name(c))
			}
			if Meaning(c) == "" {
				t.Errorf("code %d has no meaning", c)
			}
		}
	}
}

func FuzzCode(f *testing.F) {
	for _, s := range []string{
		tgsFailure(7).Error(),
		tgsFailure(99).Error(),
		"KRB Error: (2147483648)",
		"KRB Error: Unknown ErrorCode -",
		"KRB Error: (x) KRB Error: (25)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, ok := Code(errors.New(s))
		if !ok {
			return
		}
		if !strings.Contains(s, errorMarker) {
			t.Fatalf("code %d found in %q without %q", code, s, errorMarker)
		}
		if Name(code) == "" || Meaning(code) == "" {
			t.Fatalf("code %d has no name or meaning", code)
		}
	})
}
