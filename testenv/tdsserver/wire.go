package tdsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
)

// TDS packet types (MS-TDS 2.2.3.1.1).
const (
	pktSQLBatch  = 0x01
	pktRPC       = 0x03
	pktReply     = 0x04
	pktAttention = 0x06
	pktLogin7    = 0x10
	pktSSPI      = 0x11
	pktPrelogin  = 0x12
)

const (
	headerLen = 8
	statusEOM = 0x01
	// Message limits: everything here is network input. A client request in
	// this world is a few KiB; these caps stop a hostile peer from making the
	// stand-in buffer without bound.
	maxPacketLen  = 32767
	maxMessageLen = 4 << 20
	// The packet size used until the client's LOGIN7 negotiates one.
	defaultPacketSize = 4096
)

var errProtocol = errors.New("tds protocol violation")

func protoErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// message is one TDS message: the payload of one or more packets, the last
// of which carries the end-of-message status bit.
type message struct {
	typ    byte
	status byte // status byte of the first packet (e.g. reset-connection bit)
	data   []byte
}

// readMessage reads packets until end-of-message. Every packet of a message
// must have the same type; an attention packet is always a message of its own.
func readMessage(r io.Reader) (message, error) { return readMessageOf(r, 0) }

// readMessageOf is readMessage that fails as soon as the first header shows
// a packet type other than want (0: any). A TLS ClientHello (encrypt=strict)
// is then refused at once instead of being read as a long packet that never
// completes.
func readMessageOf(r io.Reader, want byte) (message, error) {
	var m message
	var hdr [headerLen]byte
	for first := true; ; first = false {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if !first && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return m, err
		}
		typ, status := hdr[0], hdr[1]
		size := int(binary.BigEndian.Uint16(hdr[2:4]))
		if size < headerLen || size > maxPacketLen {
			return m, protoErrorf("packet length %d out of range", size)
		}
		if first && want != 0 && typ != want {
			return m, protoErrorf("expected packet type %#x, got %#x", want, typ)
		}
		if first {
			m.typ, m.status = typ, status
		} else if typ != m.typ {
			return m, protoErrorf("packet type changed from %#x to %#x inside a message", m.typ, typ)
		}
		if len(m.data)+size-headerLen > maxMessageLen {
			return m, protoErrorf("message longer than %d bytes", maxMessageLen)
		}
		start := len(m.data)
		m.data = append(m.data, make([]byte, size-headerLen)...)
		if _, err := io.ReadFull(r, m.data[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return m, err
		}
		if status&statusEOM != 0 {
			return m, nil
		}
	}
}

// writeMessage splits payload into packets of at most packetSize bytes and
// writes them with one Write call, so a reply is never interleaved with
// anything else on the connection.
func writeMessage(w io.Writer, typ byte, spid uint16, packetSize int, payload []byte) error {
	if packetSize < 512 || packetSize > maxPacketLen {
		packetSize = defaultPacketSize
	}
	chunk := packetSize - headerLen
	n := (len(payload) + chunk - 1) / chunk
	if n == 0 {
		n = 1
	}
	out := make([]byte, 0, len(payload)+n*headerLen)
	for i := 0; i < n; i++ {
		part := payload[min(i*chunk, len(payload)):min((i+1)*chunk, len(payload))]
		status := byte(0)
		if i == n-1 {
			status = statusEOM
		}
		out = append(out, typ, status, 0, 0, byte(spid>>8), byte(spid), byte(i+1), 0)
		binary.BigEndian.PutUint16(out[len(out)-6:], uint16(headerLen+len(part)))
		out = append(out, part...)
	}
	_, err := w.Write(out)
	return err
}

// cursor reads little-endian fields from a client message with bounds
// checks. The first overrun sticks: later reads return zero values, and
// err() reports what was missing, so parsers can read a whole structure and
// check once.
type cursor struct {
	b    []byte
	off  int
	fail error
}

func newCursor(b []byte) *cursor { return &cursor{b: b} }

func (c *cursor) err() error         { return c.fail }
func (c *cursor) atEnd() bool        { return c.off >= len(c.b) }
func (c *cursor) rest() []byte       { return c.take(len(c.b) - c.off) }
func (c *cursor) u8() byte           { return c.takeN(1)[0] }
func (c *cursor) u16() uint16        { return binary.LittleEndian.Uint16(c.takeN(2)) }
func (c *cursor) u32() uint32        { return binary.LittleEndian.Uint32(c.takeN(4)) }
func (c *cursor) u64() uint64        { return binary.LittleEndian.Uint64(c.takeN(8)) }
func (c *cursor) bytes(n int) []byte { return c.take(n) }

// setErr records a semantic error found by a parser; the first one sticks.
func (c *cursor) setErr(err error) {
	if c.fail == nil {
		c.fail = err
	}
}

// takeN always returns a slice of length n (zeros after a failure) so the
// fixed-width helpers above never index out of range.
func (c *cursor) takeN(n int) []byte {
	if b := c.take(n); b != nil {
		return b
	}
	return make([]byte, n)
}

func (c *cursor) take(n int) []byte {
	if c.fail != nil {
		return nil
	}
	if n < 0 || n > len(c.b)-c.off {
		c.fail = protoErrorf("need %d bytes at offset %d, have %d", n, c.off, len(c.b)-c.off)
		return nil
	}
	b := c.b[c.off : c.off+n : c.off+n]
	c.off += n
	return b
}

// bVarChar reads a B_VARCHAR: a byte count of UTF-16 code units, then the text.
func (c *cursor) bVarChar() string {
	n := int(c.u8())
	return ucs2ToString(c.take(2 * n))
}

// ucs2ToString decodes UTF-16LE; an odd trailing byte is ignored and
// unpaired surrogates become U+FFFD, so any input decodes without error.
func ucs2ToString(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func stringToUCS2(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

// ucs2Len is the length of s in UTF-16 code units, which is what TDS counts.
func ucs2Len(s string) int { return len(utf16.Encode([]rune(s))) }
