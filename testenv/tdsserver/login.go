package tdsserver

import (
	"encoding/binary"
)

// PRELOGIN option tokens and encryption values (MS-TDS 2.2.6.5).
const (
	preVersion    = 0x00
	preEncryption = 0x01
	preInstOpt    = 0x02
	preThreadID   = 0x03
	preMARS       = 0x04
	preTerminator = 0xFF

	encryptOff    = 0x00
	encryptOn     = 0x01
	encryptNotSup = 0x02
	encryptReq    = 0x03
)

// parsePrelogin returns the client's PRELOGIN options by token.
func parsePrelogin(data []byte) (map[byte][]byte, error) {
	opts := map[byte][]byte{}
	c := newCursor(data)
	for {
		tok := c.u8()
		if c.err() != nil {
			return nil, c.err()
		}
		if tok == preTerminator {
			return opts, nil
		}
		hdr := c.bytes(4)
		if c.err() != nil {
			return nil, c.err()
		}
		off := int(binary.BigEndian.Uint16(hdr[0:2]))
		n := int(binary.BigEndian.Uint16(hdr[2:4]))
		if off+n > len(data) {
			return nil, protoErrorf("prelogin option %#x at %d+%d beyond %d bytes", tok, off, n, len(data))
		}
		opts[tok] = data[off : off+n]
	}
}

// preloginReply answers with ENCRYPT_NOT_SUP: the stand-in speaks plain
// TDS only. A client that requires encryption (encrypt=true) then gives up
// with its own clear error instead of half-starting TLS.
func preloginReply(version [4]byte) []byte {
	type opt struct {
		tok byte
		val []byte
	}
	opts := []opt{
		{preVersion, []byte{version[0], version[1], version[2], version[3], 0, 0}},
		{preEncryption, []byte{encryptNotSup}},
		{preInstOpt, []byte{0}},
		{preThreadID, nil},
		{preMARS, []byte{0}},
	}
	off := 5*len(opts) + 1
	var head, body []byte
	for _, o := range opts {
		head = append(head, o.tok, byte(off>>8), byte(off), byte(len(o.val)>>8), byte(len(o.val)))
		body = append(body, o.val...)
		off += len(o.val)
	}
	head = append(head, preTerminator)
	return append(head, body...)
}

// login7 is what the stand-in uses from a LOGIN7 record (MS-TDS 2.2.6.4).
type login7 struct {
	TDSVersion uint32
	PacketSize uint32
	Integrated bool // OptionFlags2 fIntSecurity: SSPI in use
	HostName   string
	UserName   string
	Password   string
	AppName    string
	ServerName string
	Database   string
	SSPI       []byte
}

const login7HeaderLen = 94

func parseLogin7(data []byte) (*login7, error) {
	if len(data) < login7HeaderLen {
		return nil, protoErrorf("LOGIN7 of %d bytes is shorter than its %d-byte header", len(data), login7HeaderLen)
	}
	c := newCursor(data)
	length := c.u32()
	if int(length) > len(data) {
		return nil, protoErrorf("LOGIN7 length %d beyond message of %d bytes", length, len(data))
	}
	l := &login7{}
	l.TDSVersion = c.u32()
	l.PacketSize = c.u32()
	c.bytes(12) // client program version, PID, connection id
	c.u8()      // OptionFlags1
	flags2 := c.u8()
	l.Integrated = flags2&0x80 != 0
	c.bytes(2 + 4 + 4) // TypeFlags, OptionFlags3, time zone, LCID

	// Offset/length pairs; lengths count UTF-16 code units except SSPI's.
	field := func() (int, int) { return int(c.u16()), int(c.u16()) }
	hostOff, hostLen := field()
	userOff, userLen := field()
	passOff, passLen := field()
	appOff, appLen := field()
	srvOff, srvLen := field()
	field() // extension
	field() // client interface name
	field() // language
	dbOff, dbLen := field()
	c.bytes(6) // client MAC
	sspiOff, sspiLen := field()
	field() // attach db file
	field() // change password
	sspiLong := c.u32()
	if c.err() != nil {
		return nil, c.err()
	}

	var err error
	text := func(off, n int) string {
		b, e := slice(data, off, 2*n)
		if e != nil {
			err = e
		}
		return ucs2ToString(b)
	}
	l.HostName = text(hostOff, hostLen)
	l.UserName = text(userOff, userLen)
	l.AppName = text(appOff, appLen)
	l.ServerName = text(srvOff, srvLen)
	l.Database = text(dbOff, dbLen)
	pw, e := slice(data, passOff, 2*passLen)
	if e != nil {
		err = e
	}
	l.Password = ucs2ToString(unmanglePassword(pw))
	n := sspiLen
	if sspiLen == 0xFFFF {
		n = int(sspiLong)
	}
	if l.SSPI, e = slice(data, sspiOff, n); e != nil {
		err = e
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

func slice(b []byte, off, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+n > len(b) {
		return nil, protoErrorf("field at %d+%d beyond %d bytes", off, n, len(b))
	}
	return b[off : off+n], nil
}

// unmanglePassword undoes LOGIN7's password obfuscation: each byte was
// nibble-swapped and XORed with 0xA5.
func unmanglePassword(b []byte) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		v ^= 0xA5
		out[i] = v<<4 | v>>4
	}
	return out
}
