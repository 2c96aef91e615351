package adsec

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Supported ACL revisions ([MS-DTYP] 2.4.5): 2 (ACL_REVISION) for plain ACEs,
// 4 (ACL_REVISION_DS) when object ACEs are present; Windows also accepts 3.
const (
	minACLRevision = 2
	maxACLRevision = 4
)

const (
	aclHeaderLen = 8
	aceHeaderLen = 4
	guidLen      = 16
)

// ACL is an access control list ([MS-DTYP] 2.4.5).
type ACL struct {
	// Revision is 2, 3 or 4; when encoding, 0 means the lowest that fits the ACEs.
	Revision uint8
	ACEs     []ACE
}

// ACEType is the AceType byte of an ACE header ([MS-DTYP] 2.4.4.1).
type ACEType uint8

// The ACE types this package decodes; others are kept raw.
const (
	AccessAllowed       ACEType = 0x00
	AccessDenied        ACEType = 0x01
	AccessAllowedObject ACEType = 0x05
	AccessDeniedObject  ACEType = 0x06
)

func (t ACEType) String() string {
	switch t {
	case AccessAllowed:
		return "ACCESS_ALLOWED"
	case AccessDenied:
		return "ACCESS_DENIED"
	case AccessAllowedObject:
		return "ACCESS_ALLOWED_OBJECT"
	case AccessDeniedObject:
		return "ACCESS_DENIED_OBJECT"
	}
	return "ACE_TYPE_0x" + strconv.FormatUint(uint64(t), 16)
}

func (t ACEType) decoded() bool {
	return t == AccessAllowed || t == AccessDenied || t.isObject()
}

func (t ACEType) isObject() bool {
	return t == AccessAllowedObject || t == AccessDeniedObject
}

// ACEFlags is the AceFlags byte of an ACE header.
type ACEFlags uint8

// ACE flags ([MS-DTYP] 2.4.4.1).
const (
	ObjectInherit      ACEFlags = 0x01
	ContainerInherit   ACEFlags = 0x02
	NoPropagateInherit ACEFlags = 0x04
	InheritOnly        ACEFlags = 0x08 // the ACE applies only to children, not to this object
	Inherited          ACEFlags = 0x10
	SuccessfulAccess   ACEFlags = 0x40
	FailedAccess       ACEFlags = 0x80
)

// ObjectFlags says which GUIDs an object ACE carries ([MS-DTYP] 2.4.4.3).
type ObjectFlags uint32

// Object ACE flags.
const (
	ObjectTypePresent          ObjectFlags = 0x1
	InheritedObjectTypePresent ObjectFlags = 0x2
)

// ACE is one access control entry. Type and Flags are always set. Mask and SID
// are decoded for the four access-allowed and access-denied types, and the
// Object* fields for the two object types; every other type keeps its body
// (what follows the 4-byte header) in Raw.
type ACE struct {
	Type  ACEType
	Flags ACEFlags
	Mask  uint32
	// ObjectFlags, ObjectType and InheritedObjectType are set for object ACEs
	// only; each GUID is meaningful when its bit is set in ObjectFlags.
	ObjectFlags         ObjectFlags
	ObjectType          GUID
	InheritedObjectType GUID
	SID                 SID
	Raw                 []byte
}

// GUID is a Windows GUID in its binary (mixed-endian) layout.
type GUID [16]byte

// String formats the GUID as Windows does, e.g. "bf967aba-0de6-11d0-a285-00aa003049e2":
// the first three groups are stored little-endian, the last two as bytes.
func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// parseACL decodes the ACL at b[off:] and returns it with its AclSize.
func parseACL(b []byte, off int, name string) (*ACL, int, error) {
	if len(b)-off < aclHeaderLen {
		return nil, 0, errorf(name, off, "need %d bytes for the ACL header, have %d", aclHeaderLen, len(b)-off)
	}
	acl := &ACL{Revision: b[off]}
	if acl.Revision < minACLRevision || acl.Revision > maxACLRevision {
		return nil, 0, errorf(name+".AclRevision", off, "revision %d, want 2 to 4", acl.Revision)
	}
	size := int(binary.LittleEndian.Uint16(b[off+2:]))
	if size < aclHeaderLen {
		return nil, 0, errorf(name+".AclSize", off+2, "%d is smaller than the %d-byte header", size, aclHeaderLen)
	}
	if size > len(b)-off {
		return nil, 0, errorf(name+".AclSize", off+2, "%d bytes from offset %d run past the end of the %d-byte buffer", size, off, len(b))
	}
	count := int(binary.LittleEndian.Uint16(b[off+4:]))
	// Check the count against the space before allocating for it.
	if count*aceHeaderLen > size-aclHeaderLen {
		return nil, 0, errorf(name+".AceCount", off+4, "%d ACEs cannot fit in the %d bytes after the header", count, size-aclHeaderLen)
	}
	acl.ACEs = make([]ACE, 0, count)
	end := off + size
	pos := off + aclHeaderLen
	for i := range count {
		ace, n, err := parseACE(b[:end], pos, name+".ACE["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, 0, err
		}
		acl.ACEs = append(acl.ACEs, ace)
		pos += n
	}
	return acl, size, nil
}

// parseACE decodes the ACE at b[off:]; b ends where the ACL ends.
func parseACE(b []byte, off int, name string) (ACE, int, error) {
	if len(b)-off < aceHeaderLen {
		return ACE{}, 0, errorf(name, off, "need %d bytes for the ACE header, %d left in the ACL", aceHeaderLen, len(b)-off)
	}
	ace := ACE{Type: ACEType(b[off]), Flags: ACEFlags(b[off+1])}
	size := int(binary.LittleEndian.Uint16(b[off+2:]))
	switch {
	case size < aceHeaderLen:
		return ACE{}, 0, errorf(name+".AceSize", off+2, "%d is smaller than the %d-byte header", size, aceHeaderLen)
	case size%4 != 0:
		return ACE{}, 0, errorf(name+".AceSize", off+2, "%d is not a multiple of 4", size)
	case size > len(b)-off:
		return ACE{}, 0, errorf(name+".AceSize", off+2, "%d bytes run past the end of the ACL (%d left)", size, len(b)-off)
	}
	body := b[:off+size] // bounds the fields below to this ACE
	if !ace.Type.decoded() {
		ace.Raw = append([]byte(nil), body[off+aceHeaderLen:]...)
		return ace, size, nil
	}

	pos := off + aceHeaderLen
	if len(body)-pos < 4 {
		return ACE{}, 0, errorf(name+".Mask", pos, "ACE of %d bytes has no room for the access mask", size)
	}
	ace.Mask = binary.LittleEndian.Uint32(body[pos:])
	pos += 4
	if ace.Type.isObject() {
		if len(body)-pos < 4 {
			return ACE{}, 0, errorf(name+".Flags", pos, "ACE of %d bytes has no room for the object flags", size)
		}
		ace.ObjectFlags = ObjectFlags(binary.LittleEndian.Uint32(body[pos:]))
		pos += 4
		for _, g := range []struct {
			bit   ObjectFlags
			dst   *GUID
			field string
		}{
			{ObjectTypePresent, &ace.ObjectType, "ObjectType"},
			{InheritedObjectTypePresent, &ace.InheritedObjectType, "InheritedObjectType"},
		} {
			if ace.ObjectFlags&g.bit == 0 {
				continue
			}
			if len(body)-pos < guidLen {
				return ACE{}, 0, errorf(name+"."+g.field, pos, "ACE of %d bytes has no room for the GUID", size)
			}
			copy(g.dst[:], body[pos:])
			pos += guidLen
		}
	}
	// Bytes after the SID, up to AceSize, are padding that [MS-DTYP] says to ignore.
	sid, _, err := parseSIDAt(body, pos, name+".Sid")
	if err != nil {
		return ACE{}, 0, err
	}
	ace.SID = sid
	return ace, size, nil
}

// minRevision is the lowest ACL revision that may hold these ACEs.
func (acl *ACL) minRevision() uint8 {
	for _, ace := range acl.ACEs {
		if ace.Type.isObject() {
			return maxACLRevision
		}
	}
	return minACLRevision
}

// appendBinary appends the encoded ACL to b. A zero Revision is replaced by
// the lowest one that fits the ACEs, so tests can leave it out.
func (acl *ACL) appendBinary(b []byte) ([]byte, error) {
	if len(acl.ACEs) > 0xFFFF {
		return nil, fmt.Errorf("%d ACEs, at most 65535 fit in AceCount", len(acl.ACEs))
	}
	revision := acl.Revision
	if revision == 0 {
		revision = acl.minRevision()
	}
	start := len(b)
	b = append(b, revision, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(b[start+4:], uint16(len(acl.ACEs)))
	for i, ace := range acl.ACEs {
		var err error
		if b, err = ace.appendBinary(b); err != nil {
			return nil, fmt.Errorf("ACE[%d]: %w", i, err)
		}
	}
	size := len(b) - start
	if size > 0xFFFF {
		return nil, fmt.Errorf("ACL of %d bytes does not fit in AclSize", size)
	}
	binary.LittleEndian.PutUint16(b[start+2:], uint16(size))
	return b, nil
}

// appendBinary appends the encoded ACE to b.
func (ace ACE) appendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, byte(ace.Type), byte(ace.Flags), 0, 0)
	if ace.Type.decoded() {
		if ace.Raw != nil {
			return nil, fmt.Errorf("%v ACE has Raw bytes; its fields are encoded instead", ace.Type)
		}
		b = binary.LittleEndian.AppendUint32(b, ace.Mask)
		if ace.Type.isObject() {
			b = binary.LittleEndian.AppendUint32(b, uint32(ace.ObjectFlags))
			if ace.ObjectFlags&ObjectTypePresent != 0 {
				b = append(b, ace.ObjectType[:]...)
			}
			if ace.ObjectFlags&InheritedObjectTypePresent != 0 {
				b = append(b, ace.InheritedObjectType[:]...)
			}
		}
		b = ace.SID.appendBinary(b)
	} else {
		if len(ace.Raw)%4 != 0 {
			return nil, fmt.Errorf("raw body of %d bytes is not a multiple of 4", len(ace.Raw))
		}
		b = append(b, ace.Raw...)
	}
	size := len(b) - start
	if size > 0xFFFF {
		return nil, fmt.Errorf("ACE of %d bytes does not fit in AceSize", size)
	}
	binary.LittleEndian.PutUint16(b[start+2:], uint16(size))
	return b, nil
}
