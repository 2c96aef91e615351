package tdsserver

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
)

// request is a SQL batch or an RPC call, reduced to what the router needs.
type request struct {
	rpc    bool
	proc   string  // RPC: procedure name, or "sp_executesql" for ProcID 10
	text   string  // batch text, or sp_executesql's @stmt
	params []param // RPC parameters in order (sp_executesql: after @stmt and @params)
}

// param is one RPC parameter. Value is nil (NULL), int64, bool, float64,
// string, []byte or time.Time.
type param struct {
	Name  string
	Value any
}

// skipAllHeaders skips the ALL_HEADERS block that TDS 7.2+ puts in front of
// SQL batches and RPC requests (MS-TDS 2.2.5.3); its content (transaction
// descriptor, trace activity) has no meaning for the stand-in.
func skipAllHeaders(c *cursor) {
	total := c.u32()
	if c.err() == nil && total < 4 {
		c.setErr(protoErrorf("ALL_HEADERS length %d", total))
	}
	c.bytes(int(total) - 4)
}

func parseSQLBatch(data []byte) (*request, error) {
	c := newCursor(data)
	skipAllHeaders(c)
	text := c.rest()
	if c.err() != nil {
		return nil, c.err()
	}
	return &request{text: ucs2ToString(text)}, nil
}

// Well-known procedure ids of RPCs sent by ProcID instead of by name.
var procIDs = map[uint16]string{10: "sp_executesql", 11: "sp_prepare", 12: "sp_execute", 13: "sp_prepexec", 15: "sp_unprepare"}

func parseRPC(data []byte) (*request, error) {
	c := newCursor(data)
	skipAllHeaders(c)
	req := &request{rpc: true}
	if n := c.u16(); n == 0xFFFF {
		id := c.u16()
		name, ok := procIDs[id]
		if !ok {
			name = fmt.Sprintf("proc id %d", id)
		}
		req.proc = name
	} else {
		req.proc = ucs2ToString(c.bytes(2 * int(n)))
	}
	c.u16() // option flags
	for c.err() == nil && !c.atEnd() {
		if b := c.b[c.off]; b == 0x80 || b == 0xFF {
			return nil, protoErrorf("batched RPC requests are not supported")
		}
		p, err := readParam(c)
		if err != nil {
			return nil, err
		}
		req.params = append(req.params, p)
	}
	if c.err() != nil {
		return nil, c.err()
	}
	if normalizeProc(req.proc) == "sys.sp_executesql" {
		if len(req.params) < 1 {
			return nil, protoErrorf("sp_executesql without @stmt")
		}
		stmt, ok := req.params[0].Value.(string)
		if !ok {
			return nil, protoErrorf("sp_executesql @stmt is %T, not a string", req.params[0].Value)
		}
		req.text = stmt
		req.params = req.params[min(2, len(req.params)):]
	}
	return req, nil
}

// readParam reads one parameter: name, status flags, TYPE_INFO, value.
// Types are the ones go-mssqldb sends for Go values; anything else is a
// protocol error for this stand-in (reported to the client, never a crash).
func readParam(c *cursor) (param, error) {
	var p param
	p.Name = c.bVarChar()
	c.u8() // status flags (by-ref, default)
	typ := c.u8()
	if c.err() != nil {
		return p, c.err()
	}
	var raw []byte
	var isNull bool
	switch typ {
	case 0x1F: // NULLTYPE
		isNull = true
	case 0x30, 0x32: // INT1, BIT
		raw = c.bytes(1)
	case 0x34: // INT2
		raw = c.bytes(2)
	case 0x38, 0x3B: // INT4, FLT4
		raw = c.bytes(4)
	case 0x7F, 0x3E, 0x3D: // INT8, FLT8, DATETIME
		raw = c.bytes(8)
	case 0x26, 0x68, 0x6D, 0x24, 0x6E, 0x6F: // INTN, BITN, FLTN, GUID, MONEYN, DATETIMN
		c.u8() // max length
		raw, isNull = byteLenValue(c)
	case 0x28: // DATEN
		raw, isNull = byteLenValue(c)
	case 0x29, 0x2A, 0x2B: // TIMEN, DATETIME2N, DATETIMEOFFSETN
		c.u8() // scale
		raw, isNull = byteLenValue(c)
	case 0x6A, 0x6C: // DECIMALN, NUMERICN
		c.bytes(3) // max length, precision, scale
		raw, isNull = byteLenValue(c)
	case 0xE7, 0xEF, 0xA7, 0xAF: // NVARCHAR, NCHAR, BIGVARCHAR, BIGCHAR
		maxLen := c.u16()
		c.bytes(5) // collation
		raw, isNull = shortLenValue(c, maxLen)
	case 0xA5, 0xAD: // BIGVARBINARY, BIGBINARY
		raw, isNull = shortLenValue(c, c.u16())
	default:
		return p, protoErrorf("parameter %s: type %#x not supported by the stand-in", p.Name, typ)
	}
	if c.err() != nil {
		return p, c.err()
	}
	if isNull {
		return p, nil
	}
	v, err := decodeValue(typ, raw)
	if err != nil {
		return p, fmt.Errorf("parameter %s: %w", p.Name, err)
	}
	p.Value = v
	return p, nil
}

func byteLenValue(c *cursor) ([]byte, bool) {
	n := c.u8()
	if n == 0 {
		return nil, true
	}
	return c.bytes(int(n)), false
}

// shortLenValue reads a USHORTLEN value, or a PLP value (chunked, MS-TDS
// 2.2.5.2.3) when the declared maximum length is 0xFFFF.
func shortLenValue(c *cursor, maxLen uint16) ([]byte, bool) {
	if maxLen != 0xFFFF {
		n := c.u16()
		if n == 0xFFFF {
			return nil, true
		}
		return c.bytes(int(n)), false
	}
	total := c.u64()
	if total == math.MaxUint64 {
		return nil, true
	}
	var out []byte
	for c.err() == nil {
		n := c.u32()
		if n == 0 {
			break
		}
		// Chunks come from the message, so their size is bounded by it.
		out = append(out, c.bytes(int(n))...)
	}
	return out, false
}

func decodeValue(typ byte, b []byte) (any, error) {
	switch typ {
	case 0x30, 0x34, 0x38, 0x7F, 0x26:
		switch len(b) {
		case 1:
			return int64(b[0]), nil
		case 2:
			return int64(int16(binary.LittleEndian.Uint16(b))), nil
		case 4:
			return int64(int32(binary.LittleEndian.Uint32(b))), nil
		case 8:
			return int64(binary.LittleEndian.Uint64(b)), nil
		}
	case 0x32, 0x68:
		if len(b) == 1 {
			return b[0] != 0, nil
		}
	case 0x3B, 0x3E, 0x6D:
		switch len(b) {
		case 4:
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
		case 8:
			return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
		}
	case 0xE7, 0xEF:
		return ucs2ToString(b), nil
	case 0xA7, 0xAF:
		return string(b), nil // single-byte text; the stand-in's collation is Latin1-compatible for ASCII
	case 0x2B:
		return decodeDateTimeOffset(b)
	default:
		// GUID, money, dates, decimals, binary: kept raw. No contract query
		// takes them; the router rejects them by type.
		return append([]byte(nil), b...), nil
	}
	return nil, fmt.Errorf("type %#x with %d bytes", typ, len(b))
}

// decodeDateTimeOffset decodes datetimeoffset(7), which go-mssqldb uses for
// time.Time parameters: 5 bytes of 100ns ticks, 3 bytes of days since
// 0001-01-01 (both UTC), 2 bytes of zone offset in minutes.
func decodeDateTimeOffset(b []byte) (any, error) {
	if len(b) != 10 {
		return nil, fmt.Errorf("datetimeoffset of %d bytes", len(b))
	}
	var ticks uint64
	for i := 4; i >= 0; i-- {
		ticks = ticks<<8 | uint64(b[i])
	}
	days := int(b[5]) | int(b[6])<<8 | int(b[7])<<16
	offset := int(int16(binary.LittleEndian.Uint16(b[8:])))
	t := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, days).Add(time.Duration(ticks) * 100)
	return t.In(time.FixedZone("", offset*60)), nil
}

// normalizeProc reduces an RPC procedure name to its lower-case,
// schema-qualified form ("sys.sp_readerrorlog"), so that the names SQL
// Server resolves the same way ("sp_readerrorlog", "[sys].[sp_readerrorlog]",
// "master.sys.sp_readerrorlog") are treated the same way.
func normalizeProc(name string) string {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(name)), ".")
	for i, p := range parts {
		parts[i] = strings.TrimSuffix(strings.TrimPrefix(p, "["), "]")
	}
	switch {
	case len(parts) == 1:
		return "sys." + parts[0]
	case len(parts) == 3 && (parts[0] == "master" || parts[0] == ""):
		return parts[1] + "." + parts[2]
	}
	return strings.Join(parts, ".")
}
