package tdsserver

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// Everything a client sends is network input: the parsers must reject any
// byte string with an error, never panic. `go test` runs the seeds;
// `go test -fuzz=FuzzParseLogin7 ./testenv/tdsserver` explores further.

func login7Seed() []byte {
	// A LOGIN7 as go-mssqldb builds it, user krbmon_sql, with an SSPI blob.
	hdr := make([]byte, login7HeaderLen)
	var body []byte
	off := login7HeaderLen
	put := func(at int, s []byte, chars int) {
		binary.LittleEndian.PutUint16(hdr[at:], uint16(off))
		binary.LittleEndian.PutUint16(hdr[at+2:], uint16(chars))
		body = append(body, s...)
		off += len(s)
	}
	put(36, stringToUCS2("host"), 4)
	put(40, stringToUCS2("krbmon_sql"), 10)
	put(44, unmanglePassword(stringToUCS2("pw")), 2) // unmangle is not its own inverse, but any bytes do
	put(48, stringToUCS2("app"), 3)
	put(52, stringToUCS2("srv"), 3)
	put(68, stringToUCS2("master"), 6)
	put(78, []byte("NTLMSSP\x00\x01\x00\x00\x00"), 12)
	binary.LittleEndian.PutUint32(hdr[0:], uint32(off))
	binary.LittleEndian.PutUint32(hdr[4:], tdsVersion74)
	binary.LittleEndian.PutUint32(hdr[8:], 4096)
	return append(hdr, body...)
}

func rpcSeed() []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 22) // ALL_HEADERS: one 18-byte header
	b = binary.LittleEndian.AppendUint32(b, 18)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = append(b, make([]byte, 12)...)
	b = binary.LittleEndian.AppendUint16(b, 0xFFFF)
	b = binary.LittleEndian.AppendUint16(b, 10) // sp_executesql
	b = binary.LittleEndian.AppendUint16(b, 0)
	str := func(name, val string) {
		b = append(b, byte(len(name)))
		b = append(b, stringToUCS2(name)...)
		b = append(b, 0, 0xE7)
		u := stringToUCS2(val)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(u)))
		b = append(b, collation...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(u)))
		b = append(b, u...)
	}
	str("", "SELECT TOP (@p1) x")
	str("", "@p1 bigint")
	b = append(b, 3)
	b = append(b, stringToUCS2("@p1")...)
	b = append(b, 0, 0x26, 8, 8)
	return binary.LittleEndian.AppendUint64(b, 5)
}

func FuzzParseLogin7(f *testing.F) {
	f.Add(login7Seed())
	f.Add(make([]byte, login7HeaderLen))
	f.Fuzz(func(t *testing.T, b []byte) { parseLogin7(b) })
}

func FuzzParseRPC(f *testing.F) {
	f.Add(rpcSeed())
	f.Fuzz(func(t *testing.T, b []byte) {
		parseRPC(b)
		parseSQLBatch(b)
	})
}

func FuzzParsePrelogin(f *testing.F) {
	f.Add(preloginReply(serverVersion))
	f.Fuzz(func(t *testing.T, b []byte) { parsePrelogin(b) })
}

func FuzzNTLM(f *testing.F) {
	neg := append([]byte("NTLMSSP\x00\x01\x00\x00\x00"), 0x01, 0x82, 0x08, 0x00)
	f.Add(neg)
	f.Fuzz(func(t *testing.T, b []byte) {
		ntlmIdentity(b)
		ntlmChallenge(b, "CORP", "SQLA", "corp.test")
	})
}

func FuzzKerberosToken(f *testing.F) {
	f.Add([]byte{0x60, 0x03, 0x06, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		// An empty keytab: decoding is what is exercised.
		kts := &keytabCache{kt: keytab.New()}
		acceptKerberos(b, &Kerberos{Principal: "sqlsvc_a"}, kts, &replayCache{}, "CORP")
	})
}

func TestParseRPCSeed(t *testing.T) {
	req, err := parseRPC(rpcSeed())
	if err != nil {
		t.Fatal(err)
	}
	if req.text != "SELECT TOP (@p1) x" || len(req.params) != 1 || req.params[0].Name != "@p1" || req.params[0].Value != int64(5) {
		t.Fatalf("parsed %+v", req)
	}
	// No truncation panics; one inside the last value is an error.
	seed := rpcSeed()
	for n := range seed {
		parseRPC(seed[:n])
	}
	if _, err := parseRPC(seed[:len(seed)-3]); err == nil {
		t.Error("truncated bigint accepted")
	}
}

func TestParseLogin7Seed(t *testing.T) {
	l, err := parseLogin7(login7Seed())
	if err != nil {
		t.Fatal(err)
	}
	if l.UserName != "krbmon_sql" || l.HostName != "host" || l.Database != "master" || !bytes.HasPrefix(l.SSPI, []byte("NTLMSSP")) {
		t.Fatalf("parsed %+v", l)
	}
	seed := login7Seed()
	binary.LittleEndian.PutUint16(seed[40:], 0xFFF0) // user name offset beyond the message
	if _, err := parseLogin7(seed); err == nil {
		t.Error("out-of-range offset accepted")
	}
}

func TestPasswordUnmangle(t *testing.T) {
	// LOGIN7 obfuscation as the driver applies it: swap nibbles, XOR 0xA5.
	pw := stringToUCS2("Passw0rd!Sql1")
	mangled := make([]byte, len(pw))
	for i, c := range pw {
		mangled[i] = (c<<4 | c>>4) ^ 0xA5
	}
	if got := ucs2ToString(unmanglePassword(mangled)); got != "Passw0rd!Sql1" {
		t.Fatalf("unmangled %q", got)
	}
}

func TestNormalizeProc(t *testing.T) {
	for in, want := range map[string]string{
		"sys.sp_readerrorlog":                "sys.sp_readerrorlog",
		"sp_readerrorlog":                    "sys.sp_readerrorlog",
		"[sys].[sp_testlinkedserver]":        "sys.sp_testlinkedserver",
		"master.sys.SP_READERRORLOG":         "sys.sp_readerrorlog",
		"dbo.sp_readerrorlog":                "dbo.sp_readerrorlog",
		strings.ToUpper("sys.sp_executesql"): "sys.sp_executesql",
	} {
		if got := normalizeProc(in); got != want {
			t.Errorf("normalizeProc(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenQueryParsing(t *testing.T) {
	for _, name := range []string{"SQLB", "we]ird'name; --", "]]]", "x', 'SELECT 1') --", "ünï'cödé]"} {
		got, inner, ok, perr := parseOpenQuery(openQueryPrefix + quoteName(name) + ", 'SELECT 1 AS [it''s]')")
		if !ok || perr != nil || got != name || inner != "SELECT 1 AS [it's]" {
			t.Errorf("%q: got %q %q ok=%v err=%v", name, got, inner, ok, perr)
		}
	}
	for _, bad := range []string{"[SQ]LB], 'x')", "[SQLB] 'x')", "[SQLB], 'x') extra", "[SQLB], 'x)", "[SQLB"} {
		if _, _, ok, perr := parseOpenQuery(openQueryPrefix + bad); !ok || perr == nil || perr.err.Number != 102 {
			t.Errorf("%q: ok=%v err=%v, want syntax error 102", bad, ok, perr)
		}
	}
	if _, _, ok, _ := parseOpenQuery("SELECT 1"); ok {
		t.Error("SELECT 1 taken for OPENQUERY")
	}
}

func quoteName(s string) string { return "[" + strings.ReplaceAll(s, "]", "]]") + "]" }
