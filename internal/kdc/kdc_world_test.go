package kdc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// monitorKeytab is the exporter's identity in the world: krbmon and its keytab.
func monitorKeytab(w *world.World, krb5Conf string) *config.Kerberos {
	return &config.Kerberos{Principal: w.MonitorUser + "@" + w.Realm, Krb5Config: krb5Conf, KeytabFile: w.MonitorKeytab}
}

// probeOnce is one cycle: a fresh session, one probe per SPN, closed.
func probeOnce(t *testing.T, k *config.Kerberos, spns ...string) []Result {
	t.Helper()
	s, err := Open(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []Result
	for _, spn := range spns {
		out = append(out, s.Probe(ctx, spn))
	}
	return out
}

func TestWorldProbeOutcomes(t *testing.T) {
	w := world.ForTest(t)
	for _, c := range []struct {
		name     string
		k        *config.Kerberos
		spn      string
		wantOK   bool
		wantCode int32
		wantName string
	}{
		{"keytab, SPN on sqlsvc_a", monitorKeytab(w, w.Krb5Conf), "MSSQLSvc/sqla.corp.test:1433", true, 0, ""},
		{"keytab, NetBIOS form", monitorKeytab(w, w.Krb5Conf), "MSSQLSvc/SQLA:1433", true, 0, ""},
		{"keytab, HTTP SPN on crmweb", monitorKeytab(w, w.Krb5Conf), "HTTP/crm.corp.test", true, 0, ""},
		{"password", &config.Kerberos{Principal: w.MonitorUser, Realm: w.Realm, Krb5Config: w.Krb5Conf, Password: config.NewSecret(w.MonitorPassword)}, "MSSQLSvc/sqla.corp.test:1433", true, 0, ""},
		{"SPN nobody holds", monitorKeytab(w, w.Krb5Conf), "MSSQLSvc/sqlc.corp.test:1433", false, 7, "KDC_ERR_S_PRINCIPAL_UNKNOWN"},
		// sqldup1 and sqldup2 both hold it. Samba's KDC answers as for an
		// unknown SPN (7), not KDC_ERR_PRINCIPAL_NOT_UNIQUE (8), as Windows
		// does towards the client; the spn collector tells the two apart.
		{"duplicated SPN", monitorKeytab(w, w.Krb5Conf), "MSSQLSvc/sqldup.corp.test:1433", false, 7, "KDC_ERR_S_PRINCIPAL_UNKNOWN"},
	} {
		res := probeOnce(t, c.k, c.spn)[0]
		if res.OK != c.wantOK || res.ErrorCode != c.wantCode || res.ErrorName != c.wantName {
			t.Errorf("%s: %s: ok=%v code=%d name=%q err=%v; want ok=%v code=%d name=%q",
				c.name, c.spn, res.OK, res.ErrorCode, res.ErrorName, res.Err, c.wantOK, c.wantCode, c.wantName)
		}
		if res.Realm != w.Realm {
			t.Errorf("%s: realm %q, want %q", c.name, res.Realm, w.Realm)
		}
		if c.wantOK == (res.Err != nil) {
			t.Errorf("%s: err = %v with ok=%v", c.name, res.Err, res.OK)
		}
		if res.Err != nil && !strings.Contains(res.Err.Error(), c.spn) {
			t.Errorf("%s: error %q does not name the SPN", c.name, res.Err)
		}
	}
}

// DC2's clock is 7 minutes ahead and krb5.conf says kdc_timesync = 0.
// gokrb5 sends the pre-authentication timestamp from our clock; the KDC
// refuses it with KRB_AP_ERR_SKEW (37) at login, and gokrb5 passes that code
// through in its error text. Every SPN of the cycle reports it, with one
// login attempt.
func TestWorldSkewedKDCGives37(t *testing.T) {
	w := world.ForTest(t)
	results := probeOnce(t, monitorKeytab(w, w.Krb5ConfSkewed), "MSSQLSvc/sqla.corp.test:1433", "HTTP/crm.corp.test")
	for _, res := range results {
		if res.OK || res.ErrorCode != 37 || res.ErrorName != "KRB_AP_ERR_SKEW" {
			t.Errorf("%s against the skewed KDC: ok=%v code=%d name=%q err=%v; want 37 KRB_AP_ERR_SKEW", res.SPN, res.OK, res.ErrorCode, res.ErrorName, res.Err)
		}
		if res.Err == nil || !strings.Contains(res.Err.Error(), "login as "+w.MonitorUser+"@"+w.Realm) {
			t.Errorf("%s: error %v, want it to say the login failed", res.SPN, res.Err)
		}
	}
}

// testAccount creates an account of this test's own holding one SPN, and
// removes it when the test ends. Names are random: other packages' tests
// share the world.
func testAccount(t *testing.T, w *world.World) (sam, spn string) {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	suffix := hex.EncodeToString(b)
	sam = "kdcprobe" + suffix
	spn = "MSSQLSvc/kdcprobe-" + suffix + ".corp.test:1433"
	if _, err := w.SambaTool("user", "add", sam, "Passw0rd!Kdc"+suffix); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := w.SambaTool("user", "delete", sam); err != nil {
			t.Errorf("removing the test account: %v", err)
		}
	})
	if _, err := w.SambaTool("spn", "add", spn, sam); err != nil {
		t.Fatal(err)
	}
	return sam, spn
}

// An SPN removed between two cycles fails in the second: nothing is served
// from a ticket cache.
func TestWorldRemovedSPNFailsNextCycle(t *testing.T) {
	w := world.ForTest(t)
	sam, spn := testAccount(t, w)
	k := monitorKeytab(w, w.Krb5Conf)

	before := probeOnce(t, k, spn)[0]
	if !before.OK || before.ErrorCode != 0 {
		t.Fatalf("before removal: ok=%v code=%d err=%v; want a ticket", before.OK, before.ErrorCode, before.Err)
	}
	if _, err := w.SambaTool("spn", "delete", spn, sam); err != nil {
		t.Fatal(err)
	}
	after := probeOnce(t, k, spn)[0]
	if after.OK || after.ErrorCode != 7 {
		t.Errorf("after removal: ok=%v code=%d err=%v; want 7 KDC_ERR_S_PRINCIPAL_UNKNOWN", after.OK, after.ErrorCode, after.Err)
	}
}

// A credential cache that holds a service ticket for an SPN since removed:
// the session uses only its TGT and asks the KDC, which says 7.
func TestWorldCCacheServiceTicketsAreNotReused(t *testing.T) {
	w := world.ForTest(t)
	sam, spn := testAccount(t, w)
	ccache := filepath.Join(t.TempDir(), "ccache")
	principal := w.MonitorUser + "@" + w.Realm
	krb5 := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "KRB5_CONFIG="+w.Krb5Conf, "KRB5CCNAME=FILE:"+ccache)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
	}
	krb5("kinit", "-k", "-t", w.MonitorKeytab, principal)
	krb5("kvno", spn) // puts a service ticket for spn into the cache
	k := &config.Kerberos{Principal: principal, Krb5Config: w.Krb5Conf, CCacheFile: ccache}

	before := probeOnce(t, k, spn)[0]
	if !before.OK {
		t.Fatalf("before removal, from the ccache's TGT: ok=%v err=%v; want a ticket", before.OK, before.Err)
	}
	if _, err := w.SambaTool("spn", "delete", spn, sam); err != nil {
		t.Fatal(err)
	}
	after := probeOnce(t, k, spn)[0]
	if after.OK || after.ErrorCode != 7 {
		t.Errorf("after removal, with the old ticket still in the ccache: ok=%v code=%d err=%v; want 7", after.OK, after.ErrorCode, after.Err)
	}
}

// The etypes of the tickets the KDC issues with a Windows client's offer:
// AES for an account that allows only AES (0x18), RC4 with an RC4 session
// key for one that allows only RC4 (0x4), an RC4 ticket with an AES session
// key for one without msDS-SupportedEncryptionTypes, and an RC4 ticket for
// sqlsvc_old, whose stored keys lack AES (fixtures.sh, make_rc4_only_keys).
// The ticket's etype follows the service account, not the client's offer:
// offered only AES, the KDC still issues RC4 tickets for accounts without
// the attribute (Samba 4.17, like Windows before the 2026 enforcement), and
// answers error 14 where the session key can only be RC4 (0x4).
func TestWorldTicketETypes(t *testing.T) {
	w := world.ForTest(t)
	windows := monitorKeytab(w, w.Krb5Conf)
	aesOnly := monitorKeytab(w, w.Krb5Conf)
	aesOnly.OfferedETypes = []string{"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96"}
	for _, c := range []struct {
		name        string
		k           *config.Kerberos
		spn         string
		ticket, key string
		code        int32
	}{
		{"0x18", windows, "MSSQLSvc/sqla.corp.test:1433", "aes256-cts-hmac-sha1-96", "aes256-cts-hmac-sha1-96", 0},
		{"0x4", windows, "MSSQLSvc/sqlrc4.corp.test:1433", "rc4-hmac", "rc4-hmac", 0},
		{"unset", windows, "HTTP/crm.corp.test", "rc4-hmac", "aes256-cts-hmac-sha1-96", 0},
		{"RC4 key only", windows, "MSSQLSvc/sqlold.corp.test:1433", "rc4-hmac", "aes256-cts-hmac-sha1-96", 0},
		{"unset, AES offered", aesOnly, "HTTP/crm.corp.test", "rc4-hmac", "aes256-cts-hmac-sha1-96", 0},
		{"0x4, AES offered", aesOnly, "MSSQLSvc/sqlrc4.corp.test:1433", "", "", 14},
	} {
		res := probeOnce(t, c.k, c.spn)[0]
		if res.TicketEType != c.ticket || res.SessionKeyEType != c.key || res.ErrorCode != c.code {
			t.Errorf("%s: %s: ticket %q, session key %q, error %d (%v); want %q, %q, %d",
				c.name, c.spn, res.TicketEType, res.SessionKeyEType, res.ErrorCode, res.Err, c.ticket, c.key, c.code)
		}
		if c.code == 14 && res.ErrorName != "KDC_ERR_ETYPE_NOSUPP" {
			t.Errorf("%s: error name %q, want KDC_ERR_ETYPE_NOSUPP", c.name, res.ErrorName)
		}
	}
}

// sqlsvc_old's stored keys really lack AES: the KDC answers a login as it
// that offers only AES with KDC_ERR_ETYPE_NOSUPP (14, "KDC has no support
// for encryption type"), as it will answer every ticket request for it once
// the domain controllers refuse RC4; offering RC4 works. sqlsvc_rc4, which
// allows only RC4 but whose password made AES keys, logs in with AES: the
// difference is the keys, not msDS-SupportedEncryptionTypes. MIT kinit is
// the client: gokrb5 gives up before asking once the KDC's ETYPE-INFO2 lists
// no offered type.
func TestWorldRC4OnlyKeys(t *testing.T) {
	w := world.ForTest(t)
	base, err := os.ReadFile(w.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := func(etypes string) string {
		path := filepath.Join(dir, strings.ReplaceAll(etypes, " ", "_")+".conf")
		text := strings.Replace(string(base), "[libdefaults]", "[libdefaults]\n default_tkt_enctypes = "+etypes+"\n permitted_enctypes = "+etypes, 1)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	aes, rc4 := conf("aes256-cts aes128-cts"), conf("rc4-hmac")
	for _, c := range []struct {
		sam, krb5Conf string
		wantErr       string // "" for success
	}{
		{"sqlsvc_old", aes, "KDC has no support for encryption type"},
		{"sqlsvc_old", rc4, ""},
		{"sqlsvc_rc4", aes, ""},
	} {
		cmd := exec.Command("kinit", c.sam+"@"+w.Realm)
		cmd.Env = append(os.Environ(), "KRB5_CONFIG="+c.krb5Conf, "KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache"))
		cmd.Stdin = strings.NewReader(w.Password(c.sam) + "\n")
		out, err := cmd.CombinedOutput()
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("kinit %s with %s: %v: %s", c.sam, filepath.Base(c.krb5Conf), err, out)
		case c.wantErr != "" && (err == nil || !strings.Contains(string(out), c.wantErr)):
			t.Errorf("kinit %s with %s: %v: %s; want %q", c.sam, filepath.Base(c.krb5Conf), err, out, c.wantErr)
		}
	}
}
