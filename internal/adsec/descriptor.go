package adsec

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Control holds the SECURITY_DESCRIPTOR control flags ([MS-DTYP] 2.4.6).
type Control uint16

// Control flags.
const (
	ControlOwnerDefaulted          Control = 0x0001 // OD
	ControlGroupDefaulted          Control = 0x0002 // GD
	ControlDACLPresent             Control = 0x0004 // DP
	ControlDACLDefaulted           Control = 0x0008 // DD
	ControlSACLPresent             Control = 0x0010 // SP
	ControlSACLDefaulted           Control = 0x0020 // SD
	ControlServerSecurity          Control = 0x0040 // SS
	ControlDACLTrusted             Control = 0x0080 // DT
	ControlDACLComputedInheritance Control = 0x0100 // DC
	ControlSACLComputedInheritance Control = 0x0200 // SC
	ControlDACLAutoInherited       Control = 0x0400 // DI
	ControlSACLAutoInherited       Control = 0x0800 // SI
	ControlDACLProtected           Control = 0x1000 // PD
	ControlSACLProtected           Control = 0x2000 // PS
	ControlResourceManagerValid    Control = 0x4000 // RM
	ControlSelfRelative            Control = 0x8000 // SR
)

// sdRevision is the only SECURITY_DESCRIPTOR revision [MS-DTYP] defines.
const sdRevision = 1

// sdHeaderLen is Revision, Sbz1, Control and the four 32-bit offsets.
const sdHeaderLen = 20

// headerOffset describes one of the four header fields that locate a component.
type headerOffset struct {
	at        int    // where the field sits in the header
	name      string // its [MS-DTYP] name
	component string // what it points at
}

var (
	ownerOffset = headerOffset{4, "OffsetOwner", "Owner"}
	groupOffset = headerOffset{8, "OffsetGroup", "Group"}
	saclOffset  = headerOffset{12, "OffsetSacl", "SACL"}
	daclOffset  = headerOffset{16, "OffsetDacl", "DACL"}
)

// SecurityDescriptor is a decoded self-relative security descriptor.
type SecurityDescriptor struct {
	// ResourceManagerControl is the Sbz1 byte, meaningful only when
	// ControlResourceManagerValid is set. Kept so that re-encoding is faithful.
	ResourceManagerControl uint8
	// Control is the control field as read; ControlSelfRelative is always set.
	Control Control
	// Owner and Group are nil when absent.
	Owner, Group *SID
	// SACL and DACL are nil when absent. A nil DACL with ControlDACLPresent set
	// is a NULL DACL, which places no restriction at all.
	SACL, DACL *ACL
}

// ParseSecurityDescriptor decodes a self-relative security descriptor
// ([MS-DTYP] 2.4.6), the form Active Directory stores in attributes such as
// msDS-AllowedToActOnBehalfOfOtherIdentity and nTSecurityDescriptor.
//
// Component offsets must lie inside the buffer, after the header, and the
// components must not overlap. As Windows does, an ACL offset is ignored when
// its present flag (DP or SP) is clear.
func ParseSecurityDescriptor(b []byte) (*SecurityDescriptor, error) {
	if len(b) < sdHeaderLen {
		return nil, errorf("SecurityDescriptor", 0, "need %d bytes for the header, have %d", sdHeaderLen, len(b))
	}
	if b[0] != sdRevision {
		return nil, errorf("SecurityDescriptor.Revision", 0, "revision %d, want 1", b[0])
	}
	sd := &SecurityDescriptor{
		ResourceManagerControl: b[1],
		Control:                Control(binary.LittleEndian.Uint16(b[2:])),
	}
	if sd.Control&ControlSelfRelative == 0 {
		// The absolute form holds pointers, which mean nothing in a byte buffer.
		return nil, errorf("SecurityDescriptor.Control", 2, "self-relative flag (SR) is clear")
	}

	var used []span
	// componentAt reads a header offset: 0 means absent, anything else must
	// point past the header and inside the buffer.
	componentAt := func(h headerOffset) (int, bool, error) {
		off := binary.LittleEndian.Uint32(b[h.at:])
		if off == 0 {
			return 0, false, nil
		}
		if off < sdHeaderLen {
			return 0, false, errorf("SecurityDescriptor."+h.name, h.at, "%d points into the %d-byte header", off, sdHeaderLen)
		}
		if uint64(off) >= uint64(len(b)) {
			return 0, false, errorf("SecurityDescriptor."+h.name, h.at, "%d is past the end of the %d-byte buffer", off, len(b))
		}
		return int(off), true, nil
	}
	parseSIDComponent := func(h headerOffset) (*SID, error) {
		off, present, err := componentAt(h)
		if err != nil || !present {
			return nil, err
		}
		sid, n, err := parseSIDAt(b, off, h.component)
		if err != nil {
			return nil, err
		}
		used = append(used, span{h, off, off + n})
		return &sid, nil
	}
	parseACLComponent := func(h headerOffset, presentFlag Control) (*ACL, error) {
		if sd.Control&presentFlag == 0 {
			return nil, nil
		}
		off, present, err := componentAt(h)
		if err != nil || !present {
			return nil, err
		}
		acl, n, err := parseACL(b, off, h.component)
		if err != nil {
			return nil, err
		}
		used = append(used, span{h, off, off + n})
		return acl, nil
	}

	var err error
	if sd.Owner, err = parseSIDComponent(ownerOffset); err != nil {
		return nil, err
	}
	if sd.Group, err = parseSIDComponent(groupOffset); err != nil {
		return nil, err
	}
	if sd.SACL, err = parseACLComponent(saclOffset, ControlSACLPresent); err != nil {
		return nil, err
	}
	if sd.DACL, err = parseACLComponent(daclOffset, ControlDACLPresent); err != nil {
		return nil, err
	}
	if err := checkNoOverlap(used); err != nil {
		return nil, err
	}
	return sd, nil
}

// span is the byte range [start, end) a component occupies.
type span struct {
	header     headerOffset
	start, end int
}

func checkNoOverlap(spans []span) error {
	slices.SortStableFunc(spans, func(a, b span) int { return a.start - b.start })
	for i := 1; i < len(spans); i++ {
		prev, cur := spans[i-1], spans[i]
		if cur.start < prev.end {
			return errorf("SecurityDescriptor."+cur.header.name, cur.header.at, "%s [%d,%d) overlaps %s [%d,%d)",
				cur.header.component, cur.start, cur.end, prev.header.component, prev.start, prev.end)
		}
	}
	return nil
}

// AllowedSIDs returns the trustees of the DACL's access-allowed ACEs, plain
// and object-specific, de-duplicated, in ACL order. For
// msDS-AllowedToActOnBehalfOfOtherIdentity these are the accounts allowed to
// delegate to this one. Inherit-only ACEs are skipped: they do not apply to the
// object that carries them.
func (sd *SecurityDescriptor) AllowedSIDs() []SID {
	return sd.trustees(AccessAllowed, AccessAllowedObject)
}

// DeniedSIDs is AllowedSIDs for access-denied ACEs. Windows evaluates deny
// ACEs first in a canonical DACL, so a SID here is refused even if also allowed.
func (sd *SecurityDescriptor) DeniedSIDs() []SID {
	return sd.trustees(AccessDenied, AccessDeniedObject)
}

func (sd *SecurityDescriptor) trustees(types ...ACEType) []SID {
	if sd == nil || sd.DACL == nil {
		return nil
	}
	var out []SID
	seen := make(map[SID]bool)
	for _, ace := range sd.DACL.ACEs {
		if !slices.Contains(types, ace.Type) || ace.Flags&InheritOnly != 0 || seen[ace.SID] {
			continue
		}
		seen[ace.SID] = true
		out = append(out, ace.SID)
	}
	return out
}

// Bytes encodes the descriptor in self-relative form: header, owner, group,
// SACL, DACL, which is the layout Windows writes for
// msDS-AllowedToActOnBehalfOfOtherIdentity. ControlSelfRelative is always set,
// and ControlDACLPresent / ControlSACLPresent whenever the ACL is non-nil.
func (sd *SecurityDescriptor) Bytes() ([]byte, error) {
	control := sd.Control | ControlSelfRelative
	if sd.DACL != nil {
		control |= ControlDACLPresent
	}
	if sd.SACL != nil {
		control |= ControlSACLPresent
	}
	b := make([]byte, sdHeaderLen, 256)
	b[0] = sdRevision
	b[1] = sd.ResourceManagerControl
	binary.LittleEndian.PutUint16(b[2:], uint16(control))

	// Every component is small (an ACL is at most 64 KiB), so offsets fit in 32 bits.
	if sd.Owner != nil {
		binary.LittleEndian.PutUint32(b[ownerOffset.at:], uint32(len(b)))
		b = sd.Owner.appendBinary(b)
	}
	if sd.Group != nil {
		binary.LittleEndian.PutUint32(b[groupOffset.at:], uint32(len(b)))
		b = sd.Group.appendBinary(b)
	}
	for _, c := range []struct {
		acl    *ACL
		header headerOffset
	}{{sd.SACL, saclOffset}, {sd.DACL, daclOffset}} {
		if c.acl == nil {
			continue
		}
		start := len(b)
		var err error
		if b, err = c.acl.appendBinary(b); err != nil {
			return nil, fmt.Errorf("adsec: encoding %s: %w", c.header.component, err)
		}
		binary.LittleEndian.PutUint32(b[c.header.at:], uint32(start))
	}
	return b, nil
}
