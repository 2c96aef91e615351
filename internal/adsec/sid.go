// Package adsec decodes Windows security identifiers (SIDs) and self-relative
// security descriptors as specified in [MS-DTYP] sections 2.4.2 and 2.4.6.
//
// The exporter needs it for one attribute: msDS-AllowedToActOnBehalfOfOtherIdentity,
// which holds resource-based constrained delegation as a security descriptor
// whose DACL grants the accounts that may delegate to this one. The input
// comes from the directory and is treated as untrusted: every length, count and
// offset is checked against the buffer, and parsing never panics.
package adsec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxSubAuthorities is the largest sub-authority count a SID may have
// ([MS-DTYP] 2.4.2.2).
const MaxSubAuthorities = 15

// sidRevision is the only SID revision [MS-DTYP] defines.
const sidRevision = 1

// sidHeaderLen is Revision, SubAuthorityCount and the 6-byte IdentifierAuthority.
const sidHeaderLen = 8

// maxAuthority is the largest 48-bit identifier authority.
const maxAuthority = 1<<48 - 1

// SID is a Windows security identifier. Its revision is always 1, the only one
// [MS-DTYP] defines. SID is comparable, so it can be used with == and as a map key.
// The zero SID is S-1-0 with no sub-authorities.
type SID struct {
	authority uint64
	count     uint8
	subs      [MaxSubAuthorities]uint32
}

// NewSID builds a SID from its identifier authority (48 bits) and up to 15
// sub-authorities.
func NewSID(authority uint64, subAuthorities ...uint32) (SID, error) {
	if authority > maxAuthority {
		return SID{}, fmt.Errorf("adsec: identifier authority %d exceeds 48 bits", authority)
	}
	if len(subAuthorities) > MaxSubAuthorities {
		return SID{}, fmt.Errorf("adsec: %d sub-authorities, at most %d allowed", len(subAuthorities), MaxSubAuthorities)
	}
	s := SID{authority: authority, count: uint8(len(subAuthorities))}
	copy(s.subs[:], subAuthorities)
	return s, nil
}

// IdentifierAuthority returns the 48-bit top-level authority (5 for NT AUTHORITY).
func (s SID) IdentifierAuthority() uint64 { return s.authority }

// SubAuthorities returns a copy of the sub-authorities; the last one of an
// account SID is its relative identifier (RID).
func (s SID) SubAuthorities() []uint32 {
	return append([]uint32(nil), s.subs[:s.count]...)
}

// Len is the size of the binary form in bytes.
func (s SID) Len() int { return sidHeaderLen + 4*int(s.count) }

// String formats the SID as in [MS-DTYP] 2.4.2.1, e.g. "S-1-5-21-1-2-3-1105".
// Authorities of 2^32 and above are written as 0x followed by 12 hex digits.
func (s SID) String() string {
	var b strings.Builder
	b.WriteString("S-1-")
	if s.authority < 1<<32 {
		b.WriteString(strconv.FormatUint(s.authority, 10))
	} else {
		hex := strconv.FormatUint(s.authority, 16)
		b.WriteString("0x")
		b.WriteString(strings.Repeat("0", 12-len(hex)))
		b.WriteString(strings.ToUpper(hex))
	}
	for _, sub := range s.subs[:s.count] {
		b.WriteByte('-')
		b.WriteString(strconv.FormatUint(uint64(sub), 10))
	}
	return b.String()
}

// Bytes returns the binary form ([MS-DTYP] 2.4.2.2), as stored in objectSid.
func (s SID) Bytes() []byte { return s.appendBinary(make([]byte, 0, s.Len())) }

func (s SID) appendBinary(b []byte) []byte {
	b = append(b, sidRevision, s.count)
	// The identifier authority is big-endian; sub-authorities are little-endian.
	for shift := 40; shift >= 0; shift -= 8 {
		b = append(b, byte(s.authority>>shift))
	}
	for _, sub := range s.subs[:s.count] {
		b = binary.LittleEndian.AppendUint32(b, sub)
	}
	return b
}

// FilterValue returns the binary form escaped for an LDAP search filter
// (RFC 4515), every byte as \hh, e.g. "(objectSid=" + sid.FilterValue() + ")".
// Escaping every byte, not only the special ones, keeps the value ASCII.
func (s SID) FilterValue() string {
	const hexDigits = "0123456789abcdef"
	raw := s.Bytes()
	out := make([]byte, 0, 3*len(raw))
	for _, c := range raw {
		out = append(out, '\\', hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return string(out)
}

// ParseSID decodes a binary SID at the start of b and returns it with the
// number of bytes it occupies. Trailing bytes are left alone.
func ParseSID(b []byte) (SID, int, error) {
	return parseSIDAt(b, 0, "SID")
}

// parseSIDAt decodes the SID starting at b[off:]; errors carry absolute
// offsets and name the field with the given prefix (e.g. "Owner").
func parseSIDAt(b []byte, off int, field string) (SID, int, error) {
	if off < 0 || len(b)-off < sidHeaderLen {
		return SID{}, 0, errorf(field, off, "need %d bytes for the SID header, have %d", sidHeaderLen, max(len(b)-off, 0))
	}
	if rev := b[off]; rev != sidRevision {
		return SID{}, 0, errorf(field+".Revision", off, "revision %d, want 1", rev)
	}
	count := int(b[off+1])
	if count > MaxSubAuthorities {
		return SID{}, 0, errorf(field+".SubAuthorityCount", off+1, "%d sub-authorities, at most 15 allowed", count)
	}
	size := sidHeaderLen + 4*count
	if len(b)-off < size {
		return SID{}, 0, errorf(field+".SubAuthority", off+sidHeaderLen, "%d sub-authorities need %d bytes, have %d", count, 4*count, len(b)-off-sidHeaderLen)
	}
	s := SID{count: uint8(count)}
	for _, c := range b[off+2 : off+8] {
		s.authority = s.authority<<8 | uint64(c)
	}
	for i := range count {
		s.subs[i] = binary.LittleEndian.Uint32(b[off+sidHeaderLen+4*i:])
	}
	return s, size, nil
}

// ParseSIDString parses the string form of [MS-DTYP] 2.4.2.1: "S-1-", the
// identifier authority (decimal below 2^32, otherwise 0x and 12 hex digits),
// then up to 15 decimal sub-authorities. Numbers must not have leading zeros,
// so that every accepted string is the one String would print (up to the case
// of "S" and of hex digits). A SID with no sub-authorities ("S-1-5") is accepted
// because the binary form allows it.
func ParseSIDString(str string) (SID, error) {
	bad := func(reason string) (SID, error) {
		return SID{}, fmt.Errorf("adsec: invalid SID string %q: %s", str, reason)
	}
	rest, ok := strings.CutPrefix(str, "S-1-")
	if !ok {
		if rest, ok = strings.CutPrefix(str, "s-1-"); !ok {
			return bad(`must start with "S-1-"`)
		}
	}
	// One part more than allowed is enough to detect too many.
	parts := strings.SplitN(rest, "-", MaxSubAuthorities+2)
	if len(parts)-1 > MaxSubAuthorities {
		return bad("more than 15 sub-authorities")
	}
	var authority uint64
	if hex, isHex := cutHexPrefix(parts[0]); isHex {
		if len(hex) != 12 {
			return bad("hexadecimal identifier authority must have 12 digits")
		}
		v, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			return bad("invalid hexadecimal identifier authority")
		}
		if v < 1<<32 {
			return bad("identifier authority below 2^32 must be decimal")
		}
		authority = v
	} else {
		v, err := parseDecimal(parts[0])
		if err != nil {
			return bad("identifier authority: " + err.Error())
		}
		authority = uint64(v)
	}
	s := SID{authority: authority, count: uint8(len(parts) - 1)}
	for i, p := range parts[1:] {
		v, err := parseDecimal(p)
		if err != nil {
			return bad("sub-authority " + strconv.Itoa(i+1) + ": " + err.Error())
		}
		s.subs[i] = v
	}
	return s, nil
}

// cutHexPrefix removes "0x"; ABNF literals are case-insensitive, so "0X" too.
func cutHexPrefix(p string) (string, bool) {
	if len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') {
		return p[2:], true
	}
	return p, false
}

// parseDecimal accepts the ABNF 1*10DIGIT with no leading zero, fitting 32 bits.
func parseDecimal(p string) (uint32, error) {
	if p == "" {
		return 0, errors.New("empty number")
	}
	for _, c := range []byte(p) {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	if len(p) > 1 && p[0] == '0' {
		return 0, errors.New("leading zero")
	}
	v, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return 0, errors.New("does not fit in 32 bits")
	}
	return uint32(v), nil
}
