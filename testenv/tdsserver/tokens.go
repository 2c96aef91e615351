package tdsserver

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Token stream identifiers (MS-TDS 2.2.7).
const (
	tokReturnStatus = 0x79
	tokColMetadata  = 0x81
	tokError        = 0xAA
	tokInfo         = 0xAB
	tokLoginAck     = 0xAD
	tokRow          = 0xD1
	tokEnvChange    = 0xE3
	tokSSPI         = 0xED
	tokDone         = 0xFD
	tokDoneProc     = 0xFE
	tokDoneInProc   = 0xFF
)

// DONE status bits and the CurCmd value SQL Server uses for SELECT.
const (
	doneFinal   = 0x00
	doneMore    = 0x01
	doneError   = 0x02
	doneCount   = 0x10
	doneAttn    = 0x20
	curCmdSel   = 0xC1
	curCmdNone  = 0x00
	envDatabase = 1
	envLanguage = 2
	envPacket   = 4
	envCollate  = 7
)

// collation is SQL_Latin1_General_CP1_CI_AS, the default of a US install,
// sent in ENVCHANGE and with every character column.
var collation = []byte{0x09, 0x04, 0xD0, 0x00, 0x34}

// SQLError is an error or informational message as SQL Server reports it.
// The stand-in returns it to clients as an ERROR token and relays it from
// linked servers, so number, state and class are kept as given.
type SQLError struct {
	Number  int32
	State   uint8
	Class   uint8
	Message string
	Server  string
	Proc    string
	Line    int32
}

func (e *SQLError) Error() string {
	return fmt.Sprintf("Msg %d, Level %d, State %d: %s", e.Number, e.Class, e.State, e.Message)
}

// ColType is the SQL type of a result column.
type ColType int

const (
	NVarChar  ColType = iota // nvarchar(Size); Size in characters, default 128
	Int                      // int
	BigInt                   // bigint
	Bit                      // bit
	DateTime2                // datetime2(7)
	DateTime                 // datetime (sp_readerrorlog's LogDate)
)

// Column describes one result column.
type Column struct {
	Name string
	Type ColType
	Size int // nvarchar length in characters
}

// ResultSet is one result set. Row values are string, int32/int64/int,
// bool, time.Time or nil (NULL), matching the column's type.
type ResultSet struct {
	Columns []Column
	Rows    [][]any
}

// tokenWriter accumulates a reply's token stream. Values are encoded as
// SQL Server sends them so the real driver parses them unmodified.
type tokenWriter struct{ b []byte }

func (t *tokenWriter) u8(v byte)    { t.b = append(t.b, v) }
func (t *tokenWriter) u16(v uint16) { t.b = binary.LittleEndian.AppendUint16(t.b, v) }
func (t *tokenWriter) u32(v uint32) { t.b = binary.LittleEndian.AppendUint32(t.b, v) }
func (t *tokenWriter) u64(v uint64) { t.b = binary.LittleEndian.AppendUint64(t.b, v) }

// bVarChar writes a B_VARCHAR, truncating to the 255 code units it can hold.
func (t *tokenWriter) bVarChar(s string) {
	u := stringToUCS2(s)
	if len(u) > 2*255 {
		u = u[:2*255]
	}
	t.u8(byte(len(u) / 2))
	t.b = append(t.b, u...)
}

func (t *tokenWriter) usVarChar(s string) {
	u := stringToUCS2(s)
	if len(u) > 2*0xFFFF {
		u = u[:2*0xFFFF]
	}
	t.u16(uint16(len(u) / 2))
	t.b = append(t.b, u...)
}

// withLength writes a token whose body is prefixed by a uint16 length.
func (t *tokenWriter) withLength(tok byte, body func(*tokenWriter)) {
	var inner tokenWriter
	body(&inner)
	t.u8(tok)
	t.u16(uint16(len(inner.b)))
	t.b = append(t.b, inner.b...)
}

func (t *tokenWriter) loginAck(tdsVersion uint32, progName string, ver [4]byte) {
	t.withLength(tokLoginAck, func(w *tokenWriter) {
		w.u8(1) // interface: SQL_TSQL
		w.b = binary.BigEndian.AppendUint32(w.b, tdsVersion)
		w.bVarChar(progName)
		w.b = append(w.b, ver[:]...)
	})
}

func (t *tokenWriter) envChange(typ byte, newVal, oldVal string) {
	t.withLength(tokEnvChange, func(w *tokenWriter) {
		w.u8(typ)
		w.bVarChar(newVal)
		w.bVarChar(oldVal)
	})
}

func (t *tokenWriter) envChangeCollation() {
	t.withLength(tokEnvChange, func(w *tokenWriter) {
		w.u8(envCollate)
		w.u8(byte(len(collation)))
		w.b = append(w.b, collation...)
		w.u8(0)
	})
}

func (t *tokenWriter) message(tok byte, e *SQLError) {
	t.withLength(tok, func(w *tokenWriter) {
		w.u32(uint32(e.Number))
		w.u8(e.State)
		w.u8(e.Class)
		w.usVarChar(e.Message)
		w.bVarChar(e.Server)
		w.bVarChar(e.Proc)
		w.u32(uint32(e.Line))
	})
}

func (t *tokenWriter) errorToken(e *SQLError) { t.message(tokError, e) }
func (t *tokenWriter) info(e *SQLError)       { t.message(tokInfo, e) }

func (t *tokenWriter) done(tok byte, status, curCmd uint16, rows uint64) {
	t.u8(tok)
	t.u16(status)
	t.u16(curCmd)
	t.u64(rows)
}

func (t *tokenWriter) returnStatus(v int32) {
	t.u8(tokReturnStatus)
	t.u32(uint32(v))
}

func (t *tokenWriter) sspi(b []byte) {
	t.u8(tokSSPI)
	t.u16(uint16(len(b)))
	t.b = append(t.b, b...)
}

// resultSet writes COLMETADATA and one ROW token per row.
func (t *tokenWriter) resultSet(rs *ResultSet) error {
	t.u8(tokColMetadata)
	t.u16(uint16(len(rs.Columns)))
	for _, c := range rs.Columns {
		t.u32(0)      // user type
		t.u16(0x0001) // flags: nullable
		switch c.Type {
		case NVarChar:
			t.u8(0xE7)
			t.u16(uint16(2 * nvarcharSize(c)))
			t.b = append(t.b, collation...)
		case Int:
			t.u8(0x26)
			t.u8(4)
		case BigInt:
			t.u8(0x26)
			t.u8(8)
		case Bit:
			t.u8(0x68)
			t.u8(1)
		case DateTime2:
			t.u8(0x2A)
			t.u8(7)
		case DateTime:
			t.u8(0x6F)
			t.u8(8)
		default:
			return fmt.Errorf("column %q: unknown type %d", c.Name, c.Type)
		}
		t.bVarChar(c.Name)
	}
	for i, row := range rs.Rows {
		if len(row) != len(rs.Columns) {
			return fmt.Errorf("row %d has %d values for %d columns", i, len(row), len(rs.Columns))
		}
		t.u8(tokRow)
		for j, v := range row {
			if err := t.value(rs.Columns[j], v); err != nil {
				return fmt.Errorf("row %d column %q: %w", i, rs.Columns[j].Name, err)
			}
		}
	}
	return nil
}

func nvarcharSize(c Column) int {
	if c.Size <= 0 {
		return 128
	}
	return min(c.Size, 4000)
}

// value encodes one column value; nil is NULL in each type's own form.
func (t *tokenWriter) value(c Column, v any) error {
	if v == nil {
		if c.Type == NVarChar {
			t.u16(0xFFFF)
		} else {
			t.u8(0)
		}
		return nil
	}
	switch c.Type {
	case NVarChar:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want string, got %T", v)
		}
		u := stringToUCS2(s)
		if len(u) > 2*nvarcharSize(c) {
			return fmt.Errorf("%d characters do not fit nvarchar(%d)", len(u)/2, nvarcharSize(c))
		}
		t.u16(uint16(len(u)))
		t.b = append(t.b, u...)
	case Int, BigInt:
		n, ok := asInt64(v)
		if !ok {
			return fmt.Errorf("want integer, got %T", v)
		}
		if c.Type == Int {
			t.u8(4)
			t.u32(uint32(int32(n)))
		} else {
			t.u8(8)
			t.u64(uint64(n))
		}
	case Bit:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want bool, got %T", v)
		}
		t.u8(1)
		if b {
			t.u8(1)
		} else {
			t.u8(0)
		}
	case DateTime2:
		tm, ok := v.(time.Time)
		if !ok {
			return fmt.Errorf("want time.Time, got %T", v)
		}
		t.u8(8)
		t.b = append(t.b, encodeDateTime2(tm)...)
	case DateTime:
		tm, ok := v.(time.Time)
		if !ok {
			return fmt.Errorf("want time.Time, got %T", v)
		}
		t.u8(8)
		t.b = append(t.b, encodeDateTime(tm)...)
	}
	return nil
}

func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// encodeDateTime2 encodes datetime2(7): 5 bytes of 100ns ticks since
// midnight, then 3 bytes of days since 0001-01-01. The wall clock is taken
// as is (SQL Server's datetime2 has no zone; callers pass UTC).
func encodeDateTime2(tm time.Time) []byte {
	day := time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC)
	wall := time.Date(tm.Year(), tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond(), time.UTC)
	ticks := uint64(wall.Sub(day) / 100)
	days := uint32(daysBetween(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), day))
	b := make([]byte, 8)
	for i := 0; i < 5; i++ {
		b[i] = byte(ticks >> (8 * i))
	}
	b[5], b[6], b[7] = byte(days), byte(days>>8), byte(days>>16)
	return b
}

// encodeDateTime encodes the legacy datetime: days since 1900-01-01 and
// 1/300 s ticks since midnight.
func encodeDateTime(tm time.Time) []byte {
	day := time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC)
	wall := time.Date(tm.Year(), tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond(), time.UTC)
	days := int32(daysBetween(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), day))
	ticks := uint32((wall.Sub(day)*300 + time.Second/2) / time.Second)
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, uint32(days))
	binary.LittleEndian.PutUint32(b[4:], ticks)
	return b
}

// daysBetween counts whole days using Unix seconds: time.Sub saturates at
// about 292 years, and datetime2 counts from year 1.
func daysBetween(from, to time.Time) int64 {
	return (to.Unix() - from.Unix()) / 86400
}
