package tdsserver

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
)

// Raw-socket tests: what no well-behaved driver sends.

func rawServer(t *testing.T) *Server {
	t.Helper()
	sc, err := ParseScenario("raw.yml", []byte(`
listen: 127.0.0.1:0
machine_name: RAW
domain: CORP
sql_logins: [{name: krbmon_sql, password: Passw0rd!Sql1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(sc, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func mangle(pw string) []byte {
	b := stringToUCS2(pw)
	for i, c := range b {
		b[i] = (c<<4 | c>>4) ^ 0xA5
	}
	return b
}

// rawLogin performs PRELOGIN and a SQL-auth LOGIN7 by hand.
func rawLogin(t *testing.T, c net.Conn) {
	t.Helper()
	prelogin := []byte{preEncryption, 0, 6, 0, 1, preTerminator, encryptNotSup}
	if err := writeMessage(c, pktPrelogin, 0, 4096, prelogin); err != nil {
		t.Fatal(err)
	}
	if m, err := readMessage(c); err != nil || m.typ != pktReply {
		t.Fatalf("prelogin reply: %v %+v", err, m)
	}
	l := login7Seed()
	// Point the password field at a correctly mangled password.
	pw := mangle("Passw0rd!Sql1")
	binary.LittleEndian.PutUint16(l[44:], uint16(len(l)))
	binary.LittleEndian.PutUint16(l[46:], uint16(len(pw)/2))
	l = append(l, pw...)
	binary.LittleEndian.PutUint32(l, uint32(len(l)))
	if err := writeMessage(c, pktLogin7, 0, 4096, l); err != nil {
		t.Fatal(err)
	}
	m, err := readMessage(c)
	if err != nil || !bytes.Contains(m.data, []byte{tokLoginAck}) {
		t.Fatalf("login reply: %v % x", err, m.data)
	}
}

func sqlBatch(text string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 4) // empty ALL_HEADERS
	return append(b, stringToUCS2(text)...)
}

// errorNumber returns the number of the first ERROR token in a reply, or 0.
func errorNumber(reply []byte) int32 {
	i := bytes.IndexByte(reply, tokError)
	if i < 0 || i+7 > len(reply) {
		return 0
	}
	return int32(binary.LittleEndian.Uint32(reply[i+3:]))
}

func TestGarbageBeforeLoginLeavesServerUp(t *testing.T) {
	s := rawServer(t)
	junk := make([]byte, 2048)
	rand.Read(junk)
	for _, payload := range [][]byte{
		junk,
		{pktPrelogin, 1, 0, 3, 0, 0, 1, 0}, // packet shorter than its header
		{pktPrelogin, 0, 0x7F, 0xFF, 0, 0, 1, 0, 1, 2}, // then the peer hangs up mid-packet
		append([]byte{pktLogin7, 1, 0, 20, 0, 0, 1, 0}, make([]byte, 12)...),
		{0x16, 0x03, 0x01, 0x00, 0x50}, // a TLS ClientHello (encrypt=strict)
	} {
		c := dial(t, s)
		c.Write(payload)
		c.Close()
	}
	// A PRELOGIN with option offsets beyond the packet is refused.
	c := dial(t, s)
	writeMessage(c, pktPrelogin, 0, 4096, []byte{preEncryption, 0xFF, 0, 0, 9, preTerminator})
	if _, err := readMessage(c); err == nil {
		t.Error("bad PRELOGIN answered")
	}
	// The server still serves a real login.
	rawLogin(t, dial(t, s))
}

func TestMalformedRequestsGetErrors(t *testing.T) {
	s := rawServer(t)
	c := dial(t, s)
	rawLogin(t, c)
	for _, req := range []struct {
		typ  byte
		data []byte
		want int32
	}{
		{pktRPC, []byte{1, 2, 3}, 8009}, // truncated ALL_HEADERS
		{pktRPC, append(binary.LittleEndian.AppendUint32(nil, 4), 0xFF, 0xFF, 10, 0, 0, 0), 8009},             // sp_executesql without @stmt
		{pktRPC, append(binary.LittleEndian.AppendUint32(nil, 4), 0xFF, 0xFF, 10, 0, 0, 0, 0, 0, 0xF3), 8009}, // a TVP parameter
		{pktSQLBatch, sqlBatch("DROP TABLE x"), 208},
		{pktSQLBatch, []byte{9, 0, 0, 0}, 8009}, // ALL_HEADERS longer than the message
	} {
		if err := writeMessage(c, req.typ, 0, 4096, req.data); err != nil {
			t.Fatal(err)
		}
		m, err := readMessage(c)
		if err != nil {
			t.Fatalf("% x: %v", req.data, err)
		}
		if got := errorNumber(m.data); got != req.want {
			t.Errorf("% x: error %d, want %d", req.data, got, req.want)
		}
	}
	// The session still answers a contract query.
	writeMessage(c, pktSQLBatch, 0, 4096, sqlBatch(sqlclient.QueryClock))
	m, err := readMessage(c)
	if err != nil || len(m.data) == 0 || m.data[0] != tokColMetadata {
		t.Fatalf("clock after errors: %v % x", err, m.data)
	}
}

func TestAttentionWhenIdleIsAcknowledged(t *testing.T) {
	s := rawServer(t)
	c := dial(t, s)
	rawLogin(t, c)
	writeMessage(c, pktAttention, 0, 4096, nil)
	m, err := readMessage(c)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{tokDone, doneAttn, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(m.data, want) {
		t.Fatalf("attention reply % x, want % x", m.data, want)
	}
}
