package adsec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// rbcdSample is what Windows writes to msDS-AllowedToActOnBehalfOfOtherIdentity
// for "O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;S-1-5-21-3623811015-3361044348-30300820-1013)":
// owner BUILTIN\Administrators, no group, no SACL, and a DACL with one
// ACCESS_ALLOWED ACE of mask 0x000F01FF for the delegating account.
const rbcdSample = "01 00 04 80 14000000 00000000 00000000 24000000" + // header: SR|DP, owner@20, DACL@36
	"01 02 000000000005 20000000 20020000" + // owner S-1-5-32-544
	"02 00 2c00 0100 0000" + // DACL: revision 2, 44 bytes, 1 ACE
	"00 00 2400 ff010f00" + // ACCESS_ALLOWED, 36 bytes, mask 0x000F01FF
	"01 05 000000000005 15000000 c7f7fed7 7c7755c8 945ace01 f5030000" // S-1-5-21-3623811015-3361044348-30300820-1013

const rbcdTrustee = "S-1-5-21-3623811015-3361044348-30300820-1013"

func TestParseRBCDSample(t *testing.T) {
	b := mustHex(t, rbcdSample)
	sd, err := ParseSecurityDescriptor(b)
	if err != nil {
		t.Fatalf("ParseSecurityDescriptor: %v", err)
	}
	owner := mustSID(t, "S-1-5-32-544")
	want := &SecurityDescriptor{
		Control: ControlSelfRelative | ControlDACLPresent,
		Owner:   &owner,
		DACL: &ACL{Revision: 2, ACEs: []ACE{
			{Type: AccessAllowed, Mask: 0x000F01FF, SID: mustSID(t, rbcdTrustee)},
		}},
	}
	if !reflect.DeepEqual(sd, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", sd, want)
	}
	if got := sd.AllowedSIDs(); len(got) != 1 || got[0].String() != rbcdTrustee {
		t.Errorf("AllowedSIDs() = %v", got)
	}
	if got := sd.DeniedSIDs(); got != nil {
		t.Errorf("DeniedSIDs() = %v", got)
	}
	out, err := want.Bytes()
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	if !bytes.Equal(out, b) {
		t.Errorf("Bytes() =\n%x\nwant\n%x", out, b)
	}
}

var (
	guidComputer = GUID{0x86, 0x7a, 0x96, 0xbf, 0xe6, 0x0d, 0xd0, 0x11, 0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49, 0xe2}
	guidUser     = GUID{0xba, 0x7a, 0x96, 0xbf, 0xe6, 0x0d, 0xd0, 0x11, 0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49, 0xe2}
)

// complexDescriptor exercises every part of the format the builder supports.
func complexDescriptor(t testing.TB) *SecurityDescriptor {
	owner, group := mustSID(t, "S-1-5-32-544"), mustSID(t, "S-1-5-21-1-2-3-513")
	everyone := mustSID(t, "S-1-1-0").Bytes()
	return &SecurityDescriptor{
		Control: ControlSelfRelative | ControlDACLPresent | ControlSACLPresent | ControlDACLAutoInherited | ControlDACLProtected,
		Owner:   &owner,
		Group:   &group,
		SACL: &ACL{Revision: 2, ACEs: []ACE{
			// SYSTEM_AUDIT (0x02) is not decoded: mask and SID stay in Raw.
			{Type: 0x02, Flags: SuccessfulAccess | FailedAccess, Raw: append([]byte{0xff, 0x01, 0x0f, 0x00}, everyone...)},
		}},
		DACL: &ACL{Revision: 4, ACEs: []ACE{
			{Type: AccessDenied, Mask: 0x000F01FF, SID: mustSID(t, "S-1-5-21-1-2-3-1108")},
			{Type: AccessAllowed, Mask: 0x000F01FF, SID: mustSID(t, "S-1-5-21-1-2-3-1105")},
			{Type: AccessAllowedObject, Mask: 0x100, ObjectFlags: ObjectTypePresent | InheritedObjectTypePresent,
				ObjectType: guidComputer, InheritedObjectType: guidUser, SID: mustSID(t, "S-1-5-21-1-2-3-1106")},
			{Type: AccessAllowed, Flags: ContainerInherit | InheritOnly, Mask: 0x000F01FF, SID: mustSID(t, "S-1-5-21-1-2-3-1107")},
			{Type: AccessAllowed, Flags: Inherited, Mask: 0x20094, SID: mustSID(t, "S-1-5-21-1-2-3-1105")},
			{Type: AccessDeniedObject, Mask: 0x100, ObjectFlags: InheritedObjectTypePresent, InheritedObjectType: guidUser, SID: mustSID(t, "S-1-5-21-1-2-3-1105")},
			{Type: 0x09, Raw: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, // a callback ACE, kept raw
		}},
	}
}

func TestRoundTripComplex(t *testing.T) {
	sd := complexDescriptor(t)
	b, err := sd.Bytes()
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	got, err := ParseSecurityDescriptor(b)
	if err != nil {
		t.Fatalf("ParseSecurityDescriptor: %v", err)
	}
	if !reflect.DeepEqual(got, sd) {
		t.Fatalf("round trip changed the descriptor:\n%+v\nwant\n%+v", got, sd)
	}
	again, err := got.Bytes()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("second encoding differs: %v\n%x\n%x", err, again, b)
	}

	var allowed, denied []string
	for _, s := range got.AllowedSIDs() {
		allowed = append(allowed, s.String())
	}
	for _, s := range got.DeniedSIDs() {
		denied = append(denied, s.String())
	}
	// 1107 is inherit-only and 1105's second allow is a duplicate.
	if want := []string{"S-1-5-21-1-2-3-1105", "S-1-5-21-1-2-3-1106"}; !reflect.DeepEqual(allowed, want) {
		t.Errorf("AllowedSIDs() = %v, want %v", allowed, want)
	}
	if want := []string{"S-1-5-21-1-2-3-1108", "S-1-5-21-1-2-3-1105"}; !reflect.DeepEqual(denied, want) {
		t.Errorf("DeniedSIDs() = %v, want %v", denied, want)
	}
}

func TestTruncatedAtEveryByte(t *testing.T) {
	complexBytes, err := complexDescriptor(t).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for name, full := range map[string][]byte{"rbcd": mustHex(t, rbcdSample), "complex": complexBytes} {
		for i := range len(full) {
			sd, err := ParseSecurityDescriptor(full[:i])
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("%s cut to %d of %d bytes: got %+v, %v; want a *FormatError", name, i, len(full), sd, err)
			}
		}
	}
}

// patch returns a copy of the RBCD sample with little-endian values written at
// the given offsets: a uint8, uint16 or uint32 depending on the Go type.
func patch(t *testing.T, edits ...any) []byte {
	t.Helper()
	b := mustHex(t, rbcdSample)
	for i := 0; i < len(edits); i += 2 {
		off := edits[i].(int)
		switch v := edits[i+1].(type) {
		case uint8:
			b[off] = v
		case uint16:
			binary.LittleEndian.PutUint16(b[off:], v)
		case uint32:
			binary.LittleEndian.PutUint32(b[off:], v)
		default:
			t.Fatalf("patch: unsupported %T", v)
		}
	}
	return b
}

func TestParseSecurityDescriptorBad(t *testing.T) {
	// Offsets in the sample: header 0-19 (control@2, owner@4, group@8,
	// SACL@12, DACL@16), owner SID 20-35, DACL 36-79 (size@38, count@40),
	// ACE 44-79 (size@46, mask@48), trustee SID 52-79 (count@53).
	objectACE := func() []byte {
		sd := &SecurityDescriptor{DACL: &ACL{ACEs: []ACE{{Type: AccessAllowedObject,
			ObjectFlags: ObjectTypePresent | InheritedObjectTypePresent, SID: mustSID(t, rbcdTrustee)}}}}
		b, err := sd.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint16(b[20+8+2:], 28) // AceSize: room for only one GUID
		return b
	}()
	tests := []struct {
		name   string
		input  []byte
		field  string
		offset int
	}{
		{"empty", nil, "SecurityDescriptor", 0},
		{"short header", mustHex(t, rbcdSample)[:19], "SecurityDescriptor", 0},
		{"revision 2", patch(t, 0, uint8(2)), "SecurityDescriptor.Revision", 0},
		{"absolute form", patch(t, 2, uint16(0x0004)), "SecurityDescriptor.Control", 2},
		{"owner at end of buffer", patch(t, 4, uint32(80)), "SecurityDescriptor.OffsetOwner", 4},
		{"owner far past end", patch(t, 4, uint32(0xFFFFFFFF)), "SecurityDescriptor.OffsetOwner", 4},
		{"owner inside header", patch(t, 4, uint32(8)), "SecurityDescriptor.OffsetOwner", 4},
		{"DACL past end", patch(t, 16, uint32(200)), "SecurityDescriptor.OffsetDacl", 16},
		{"group shares owner bytes", patch(t, 8, uint32(20)), "SecurityDescriptor.OffsetGroup", 8},
		{"owner inside DACL", patch(t, 4, uint32(52)), "SecurityDescriptor.OffsetOwner", 4},
		{"owner SID with 16 sub-authorities", patch(t, 21, uint8(16)), "Owner.SubAuthorityCount", 21},
		{"owner SID revision 0", patch(t, 20, uint8(0)), "Owner.Revision", 20},
		{"ACL revision 1", patch(t, 36, uint8(1)), "DACL.AclRevision", 36},
		{"ACL revision 5", patch(t, 36, uint8(5)), "DACL.AclRevision", 36},
		{"ACL size below header", patch(t, 38, uint16(4)), "DACL.AclSize", 38},
		{"ACL size past end", patch(t, 38, uint16(45)), "DACL.AclSize", 38},
		{"ACE count lies by one", patch(t, 40, uint16(2)), "DACL.ACE[1]", 80},
		{"ACE count cannot fit", patch(t, 40, uint16(0xFFFF)), "DACL.AceCount", 40},
		{"ACE size zero", patch(t, 46, uint16(0)), "DACL.ACE[0].AceSize", 46},
		{"ACE size below header", patch(t, 46, uint16(2)), "DACL.ACE[0].AceSize", 46},
		{"ACE size not aligned", patch(t, 46, uint16(34)), "DACL.ACE[0].AceSize", 46},
		{"ACE size past ACL", patch(t, 46, uint16(40)), "DACL.ACE[0].AceSize", 46},
		{"ACE without mask", patch(t, 46, uint16(4)), "DACL.ACE[0].Mask", 48},
		{"ACE without SID", patch(t, 46, uint16(8)), "DACL.ACE[0].Sid", 52},
		{"ACE SID with 16 sub-authorities", patch(t, 53, uint8(16)), "DACL.ACE[0].Sid.SubAuthorityCount", 53},
		{"ACE SID longer than ACE", patch(t, 53, uint8(6)), "DACL.ACE[0].Sid.SubAuthority", 60},
		{"object ACE missing second GUID", objectACE, "DACL.ACE[0].InheritedObjectType", 56},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd, err := ParseSecurityDescriptor(tt.input)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %+v, %v; want a *FormatError", sd, err)
			}
			if fe.Field != tt.field || fe.Offset != tt.offset {
				t.Errorf("error at %s/%d, want %s/%d: %v", fe.Field, fe.Offset, tt.field, tt.offset, err)
			}
			if sd != nil {
				t.Errorf("descriptor returned with error")
			}
		})
	}
}

func TestParseSecurityDescriptorLenient(t *testing.T) {
	t.Run("DACL offset ignored when DP is clear", func(t *testing.T) {
		sd, err := ParseSecurityDescriptor(patch(t, 2, uint16(ControlSelfRelative)))
		if err != nil {
			t.Fatal(err)
		}
		if sd.DACL != nil || sd.AllowedSIDs() != nil {
			t.Errorf("DACL = %+v", sd.DACL)
		}
	})
	t.Run("NULL DACL", func(t *testing.T) {
		sd, err := ParseSecurityDescriptor(patch(t, 16, uint32(0)))
		if err != nil {
			t.Fatal(err)
		}
		if sd.DACL != nil || sd.Control&ControlDACLPresent == 0 {
			t.Errorf("want a NULL DACL, got %+v control %#x", sd.DACL, sd.Control)
		}
	})
	t.Run("ACE padding and ACL slack", func(t *testing.T) {
		b := patch(t, 38, uint16(44+12), 46, uint16(36+8))
		b = append(b, make([]byte, 12)...) // 8 bytes of ACE padding, 4 of ACL slack
		sd, err := ParseSecurityDescriptor(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := sd.AllowedSIDs(); len(got) != 1 || got[0].String() != rbcdTrustee {
			t.Errorf("AllowedSIDs() = %v", got)
		}
		canonical, err := sd.Bytes()
		if err != nil || !bytes.Equal(canonical, mustHex(t, rbcdSample)) {
			t.Errorf("re-encoding did not drop padding: %v %x", err, canonical)
		}
	})
	t.Run("trailing bytes after the last component", func(t *testing.T) {
		if _, err := ParseSecurityDescriptor(append(mustHex(t, rbcdSample), 0, 0, 0, 0)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nil descriptor", func(t *testing.T) {
		var sd *SecurityDescriptor
		if sd.AllowedSIDs() != nil || sd.DeniedSIDs() != nil {
			t.Error("nil descriptor has trustees")
		}
	})
}

func TestBytesErrors(t *testing.T) {
	sid := mustSID(t, rbcdTrustee)
	for name, sd := range map[string]*SecurityDescriptor{
		"raw body not aligned": {DACL: &ACL{ACEs: []ACE{{Type: 0x09, Raw: []byte{1, 2, 3}}}}},
		"decoded ACE with Raw": {DACL: &ACL{ACEs: []ACE{{Type: AccessAllowed, SID: sid, Raw: []byte{0, 0, 0, 0}}}}},
		"ACL over 64 KiB":      {DACL: &ACL{ACEs: make([]ACE, 5000)}}, // 5000 * 16 bytes
		"raw ACE over 64 KiB":  {SACL: &ACL{ACEs: []ACE{{Type: 0x02, Raw: make([]byte, 0x10000)}}}},
		"more than 65535 ACEs": {DACL: &ACL{ACEs: make([]ACE, 0x10000)}},
	} {
		if _, err := sd.Bytes(); err == nil {
			t.Errorf("%s: Bytes succeeded", name)
		}
	}
}

func TestBuilderDefaultsRevision(t *testing.T) {
	for _, tt := range []struct {
		ace  ACE
		want uint8
	}{
		{ACE{Type: AccessAllowed}, 2},
		{ACE{Type: AccessAllowedObject}, 4},
	} {
		b, err := (&SecurityDescriptor{DACL: &ACL{ACEs: []ACE{tt.ace}}}).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if b[sdHeaderLen] != tt.want {
			t.Errorf("%v: ACL revision %d, want %d", tt.ace.Type, b[sdHeaderLen], tt.want)
		}
	}
}

func TestGUIDString(t *testing.T) {
	if got, want := guidUser.String(), "bf967aba-0de6-11d0-a285-00aa003049e2"; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

func TestACETypeString(t *testing.T) {
	for typ, want := range map[ACEType]string{
		AccessAllowed: "ACCESS_ALLOWED", AccessDenied: "ACCESS_DENIED",
		AccessAllowedObject: "ACCESS_ALLOWED_OBJECT", AccessDeniedObject: "ACCESS_DENIED_OBJECT",
		0x11: "ACE_TYPE_0x11",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d: %s, want %s", typ, got, want)
		}
	}
}

func FuzzParseSecurityDescriptor(f *testing.F) {
	f.Add(mustHex(f, rbcdSample))
	complexBytes, err := complexDescriptor(f).Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(complexBytes)
	f.Add(mustHex(f, "01000480000000000000000000000000"+"00000000")) // NULL DACL
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := ParseSecurityDescriptor(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		// Whatever parses must re-encode, and the canonical encoding must be a
		// fixed point: same structure, same bytes.
		b, err := sd.Bytes()
		if err != nil {
			t.Fatalf("Bytes of a parsed descriptor: %v", err)
		}
		again, err := ParseSecurityDescriptor(b)
		if err != nil {
			t.Fatalf("re-encoded descriptor does not parse: %v\n%x", err, b)
		}
		if !reflect.DeepEqual(again, sd) {
			t.Fatalf("round trip changed the descriptor:\n%+v\n%+v", sd, again)
		}
		b2, err := again.Bytes()
		if err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("encoding is not stable: %v\n%x\n%x", err, b, b2)
		}
		sd.AllowedSIDs()
		sd.DeniedSIDs()
	})
}
