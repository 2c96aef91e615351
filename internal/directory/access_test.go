package directory

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/internal/adsec"
)

// guid turns "3f78c3e5-f79a-46bd-a0b8-9d18116ddc79" into the binary layout
// AD stores (first three groups little-endian).
func guid(t *testing.T, s string) adsec.GUID {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("bad GUID %q", s)
	}
	var g adsec.GUID
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(b[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(b[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(b[6:]))
	copy(g[8:], b[8:])
	if g.String() != s {
		t.Fatalf("guid(%q) round-trips to %q", s, g.String())
	}
	return g
}

func sid(t *testing.T, s string) adsec.SID {
	t.Helper()
	v, err := adsec.ParseSIDString(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCanReadProperty(t *testing.T) {
	const (
		me        = "S-1-5-21-1-2-3-1105"
		myGroup   = "S-1-5-21-1-2-3-1200"
		stranger  = "S-1-5-21-1-2-3-1300"
		otherProp = "bf967950-0de6-11d0-a285-00aa003049e2" // description
		otherSet  = "59ba2f42-79a2-11d0-9020-00c04fc2d3cf" // General Information
	)
	token := map[string]bool{me: true, myGroup: true, sidEveryone: true, sidAuthenticatedUsers: true}
	allow := func(who string, mask uint32) adsec.ACE {
		return adsec.ACE{Type: adsec.AccessAllowed, Mask: mask, SID: sid(t, who)}
	}
	allowObj := func(who string, mask uint32, object string) adsec.ACE {
		return adsec.ACE{Type: adsec.AccessAllowedObject, Mask: mask, ObjectFlags: adsec.ObjectTypePresent,
			ObjectType: guid(t, object), SID: sid(t, who)}
	}
	denyObj := func(who string, object string) adsec.ACE {
		return adsec.ACE{Type: adsec.AccessDeniedObject, Mask: rightReadProperty, ObjectFlags: adsec.ObjectTypePresent,
			ObjectType: guid(t, object), SID: sid(t, who)}
	}
	withDACL := func(aces ...adsec.ACE) *adsec.SecurityDescriptor {
		return &adsec.SecurityDescriptor{Control: adsec.ControlSelfRelative | adsec.ControlDACLPresent, DACL: &adsec.ACL{ACEs: aces}}
	}
	inheritOnly := allow(sidAuthenticatedUsers, rightReadProperty)
	inheritOnly.Flags = adsec.InheritOnly | adsec.ContainerInherit

	tests := []struct {
		name string
		sd   *adsec.SecurityDescriptor
		want bool
	}{
		{"no DACL at all", &adsec.SecurityDescriptor{Control: adsec.ControlSelfRelative}, true},
		{"NULL DACL", &adsec.SecurityDescriptor{Control: adsec.ControlSelfRelative | adsec.ControlDACLPresent}, true},
		{"empty DACL", withDACL(), false},
		{"read all properties for authenticated users", withDACL(allow(sidAuthenticatedUsers, 0x00020094)), true},
		{"generic read for my group", withDACL(allow(myGroup, genericRead)), true},
		{"read for a stranger only", withDACL(allow(stranger, rightReadProperty)), false},
		{"other rights only (read control, list)", withDACL(allow(me, 0x00020004)), false},
		{"the property set", withDACL(allowObj(sidAuthenticatedUsers, rightReadProperty, accountRestrictionsSet)), true},
		{"the attribute itself", withDACL(allowObj(me, rightReadProperty, rbcdSchemaID)), true},
		{"another property set", withDACL(allowObj(sidAuthenticatedUsers, rightReadProperty, otherSet)), false},
		{"another attribute", withDACL(allowObj(me, rightReadProperty, otherProp)), false},
		{"deny before allow", withDACL(denyObj(me, rbcdSchemaID), allow(sidAuthenticatedUsers, rightReadProperty)), false},
		{"deny for a stranger is not mine", withDACL(denyObj(stranger, rbcdSchemaID), allow(sidAuthenticatedUsers, rightReadProperty)), true},
		{"deny of another attribute", withDACL(denyObj(me, otherProp), allow(sidEveryone, rightReadProperty)), true},
		{"inherit-only ACE does not apply here", withDACL(inheritOnly), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canReadProperty(tt.sd, token, rbcdSchemaID, accountRestrictionsSet); got != tt.want {
				t.Errorf("canReadProperty = %v, want %v", got, tt.want)
			}
		})
	}
}
