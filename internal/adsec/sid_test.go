package adsec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func mustSID(t testing.TB, s string) SID {
	t.Helper()
	sid, err := ParseSIDString(s)
	if err != nil {
		t.Fatalf("ParseSIDString(%q): %v", s, err)
	}
	return sid
}

func TestParseSIDGood(t *testing.T) {
	tests := []struct {
		name, hex, want string
	}{
		{"builtin administrators", "0102000000000005 20000000 20020000", "S-1-5-32-544"},
		{"domain account", "0105000000000005 15000000 c7f7fed7 7c7755c8 945ace01 f5030000", "S-1-5-21-3623811015-3361044348-30300820-1013"},
		{"no sub-authorities", "0100000000000005", "S-1-5"},
		{"null SID", "0101000000000000 00000000", "S-1-0-0"},
		{"max sub-authority", "0101000000000005 ffffffff", "S-1-5-4294967295"},
		{"authority 2^32-1 stays decimal", "01010000ffffffff 01000000", "S-1-4294967295-1"},
		{"authority 2^32 is hex", "0101000100000000 01000000", "S-1-0x000100000000-1"},
		{"max authority", "0101ffffffffffff 01000000", "S-1-0xFFFFFFFFFFFF-1"},
		{"fifteen sub-authorities", "010f000000000005" + strings.Repeat("01000000", 15), "S-1-5" + strings.Repeat("-1", 15)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustHex(t, tt.hex)
			// Trailing bytes must be left alone and not counted.
			sid, n, err := ParseSID(append(bytes.Clone(b), 0xAA, 0xBB))
			if err != nil {
				t.Fatalf("ParseSID: %v", err)
			}
			if n != len(b) || sid.Len() != len(b) {
				t.Errorf("consumed %d, Len %d, want %d", n, sid.Len(), len(b))
			}
			if got := sid.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := sid.Bytes(); !bytes.Equal(got, b) {
				t.Errorf("Bytes() = %x, want %x", got, b)
			}
			back, err := ParseSIDString(tt.want)
			if err != nil || back != sid {
				t.Errorf("ParseSIDString(%q) = %v, %v; want %v", tt.want, back, err, sid)
			}
		})
	}
}

func TestParseSIDBad(t *testing.T) {
	tests := []struct {
		name, hex, field string
		offset           int
	}{
		{"empty", "", "SID", 0},
		{"short header", "01020000000000", "SID", 0},
		{"revision 2", "0201000000000005 01000000", "SID.Revision", 0},
		{"revision 0", "0001000000000005 01000000", "SID.Revision", 0},
		{"sixteen sub-authorities", "0110000000000005" + strings.Repeat("01000000", 16), "SID.SubAuthorityCount", 1},
		{"count 255", "01ff000000000005", "SID.SubAuthorityCount", 1},
		{"sub-authorities truncated", "0102000000000005 20000000 200200", "SID.SubAuthority", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, n, err := ParseSID(mustHex(t, tt.hex))
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FormatError", err)
			}
			if fe.Field != tt.field || fe.Offset != tt.offset {
				t.Errorf("error at %s/%d, want %s/%d (%v)", fe.Field, fe.Offset, tt.field, tt.offset, err)
			}
			if n != 0 {
				t.Errorf("consumed %d on error", n)
			}
		})
	}
}

func TestParseSIDTruncatedAtEveryByte(t *testing.T) {
	full := mustSID(t, "S-1-5-21-3623811015-3361044348-30300820-1013").Bytes()
	for i := range len(full) {
		if _, _, err := ParseSID(full[:i]); err == nil {
			t.Errorf("ParseSID of first %d of %d bytes succeeded", i, len(full))
		}
	}
}

func TestParseSIDStringBad(t *testing.T) {
	for _, s := range []string{
		"",
		"S",
		"S-1-",
		"S-2-5-32-544",
		"X-1-5-32-544",
		" S-1-5-32-544",
		"S-1-5-32-544 ",
		"S-1-5-32-",
		"S-1-5--544",
		"S-1-5-+32",
		"S-1-5-0x20",
		"S-1-05-32",            // leading zero
		"S-1-5-032",            // leading zero
		"S-1-5-4294967296",     // sub-authority over 32 bits
		"S-1-4294967296-1",     // decimal authority must be below 2^32
		"S-1-0x0000FFFFFFFF-1", // hex authority must be 2^32 or more
		"S-1-0x100000000-1",    // hex authority needs 12 digits
		"S-1-0x00010000000G-1",
		"S-1-5" + strings.Repeat("-1", 16),
		"S-1-5-21-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15",
	} {
		if sid, err := ParseSIDString(s); err == nil {
			t.Errorf("ParseSIDString(%q) = %v, want error", s, sid)
		}
	}
}

func TestParseSIDStringCase(t *testing.T) {
	a := mustSID(t, "s-1-0X00010000000a-7")
	b := mustSID(t, "S-1-0x00010000000A-7")
	if a != b {
		t.Fatalf("%v != %v", a, b)
	}
	if got, want := a.String(), "S-1-0x00010000000A-7"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestNewSID(t *testing.T) {
	sid, err := NewSID(5, 32, 544)
	if err != nil {
		t.Fatal(err)
	}
	if sid != mustSID(t, "S-1-5-32-544") {
		t.Errorf("NewSID = %v", sid)
	}
	if sid.IdentifierAuthority() != 5 {
		t.Errorf("IdentifierAuthority = %d", sid.IdentifierAuthority())
	}
	subs := sid.SubAuthorities()
	subs[0] = 99 // must be a copy
	if got := sid.SubAuthorities(); len(got) != 2 || got[0] != 32 || got[1] != 544 {
		t.Errorf("SubAuthorities = %v", got)
	}
	if _, err := NewSID(1<<48, 1); err == nil {
		t.Error("NewSID accepted a 49-bit authority")
	}
	if _, err := NewSID(5, make([]uint32, 16)...); err == nil {
		t.Error("NewSID accepted 16 sub-authorities")
	}
}

func TestFilterValue(t *testing.T) {
	got := mustSID(t, "S-1-5-32-544").FilterValue()
	want := `\01\02\00\00\00\00\00\05\20\00\00\00\20\02\00\00`
	if got != want {
		t.Errorf("FilterValue() = %s, want %s", got, want)
	}
}

func FuzzParseSID(f *testing.F) {
	f.Add([]byte{})
	f.Add(mustSID(f, "S-1-5-32-544").Bytes())
	f.Add(mustSID(f, "S-1-5-21-3623811015-3361044348-30300820-1013").Bytes())
	f.Add(mustSID(f, "S-1-0xFFFFFFFFFFFF"+strings.Repeat("-4294967295", 15)).Bytes())
	f.Add(mustHex(f, "0110000000000005"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sid, n, err := ParseSID(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		if n != sid.Len() || n > len(data) {
			t.Fatalf("consumed %d, Len %d, input %d", n, sid.Len(), len(data))
		}
		if !bytes.Equal(sid.Bytes(), data[:n]) {
			t.Fatalf("re-encoded %x, parsed from %x", sid.Bytes(), data[:n])
		}
		back, err := ParseSIDString(sid.String())
		if err != nil || back != sid {
			t.Fatalf("string round trip of %v: %v, %v", sid, back, err)
		}
	})
}

func FuzzParseSIDString(f *testing.F) {
	for _, s := range []string{"S-1-5-32-544", "S-1-5", "s-1-0x0000FFFFFFFF-1", "S-1-5-21-01", "S-1-4294967295-4294967295"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sid, err := ParseSIDString(s)
		if err != nil {
			return
		}
		back, err := ParseSIDString(sid.String())
		if err != nil || back != sid {
			t.Fatalf("%q -> %v -> %v, %v", s, sid, back, err)
		}
		if !strings.EqualFold(s, sid.String()) {
			t.Fatalf("%q accepted but prints as %q", s, sid.String())
		}
	})
}
