package world_test

// Integration tests of the AD world itself: the fixtures other packages' tests rely on are
// really there, read back through LDAP(S), Kerberos (gokrb5 and MIT's tools) and DNS.
// Run as root: go test ./testenv/world/ -v -count=1

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

func start(t *testing.T) *world.World {
	t.Helper()
	w, err := world.Start()
	if err != nil {
		t.Fatalf("world.Start: %v", err)
	}
	return w
}

// sql4 is the four SPN forms of a default SQL Server instance on host h.
func sql4(h string) []string {
	return []string{"MSSQLSvc/" + h + ".corp.test:1433", "MSSQLSvc/" + h + ".corp.test", "MSSQLSvc/" + h + ":1433", "MSSQLSvc/" + h}
}

var allAccounts = []string{"krbmon", "sqlsvc_a", "sqlsvc_b", "sqlsvc_c", "sqlsvc_d", "wrongacct",
	"sqldup1", "sqldup2", "sqlsvc_u", "sqlsvc_pt", "sqlsvc_r", "sqlsvc_rc4", "sqlsvc_dis",
	"sqlsvc_lock", "crmweb", "alice", "bob", "carol", "SQLE$", "sqlsvc_f", "sqlsvc_g", "sqlsvc_h"}

func TestDescription(t *testing.T) {
	w := start(t)
	want := map[string][2]string{
		"Dir":        {w.Dir, world.Dir()},
		"Realm":      {w.Realm, "CORP.TEST"},
		"Domain":     {w.Domain, "corp.test"},
		"BaseDN":     {w.BaseDN, "DC=corp,DC=test"},
		"NetBIOS":    {w.NetBIOS, "CORP"},
		"DCHostName": {w.DCHostName, "dc1.corp.test"},
		"DC1":        {w.DC1, "127.0.0.1"},
		"DC2":        {w.DC2, "127.0.0.2"},
		"AdminUser":  {w.AdminUser, "Administrator"},
		"AdminPw":    {w.AdminPassword, "Passw0rd!Test123"},
		"Monitor":    {w.MonitorUser, "krbmon"},
		"MonitorPw":  {w.MonitorPassword, "Passw0rd!Svc1"},
		"ServicePw":  {w.ServicePassword, "Passw0rd!Svc1"},
		"CACert":     {w.CACert, filepath.Join(w.Dir, "dc1/private/tls/ca.pem")},
		"MonitorKT":  {w.MonitorKeytab, filepath.Join(w.Dir, "keytabs/krbmon.keytab")},
		"DNSServer":  {w.DNSServer(), "127.0.0.1:53"},
	}
	for name, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", name, v[0], v[1])
		}
	}
	if w.DC2Skew != 7*time.Minute {
		t.Errorf("DC2Skew = %v, want 7m", w.DC2Skew)
	}
	if got := w.KeytabAccounts(); !slices.Equal(got, sorted(allAccounts)) {
		t.Errorf("keytab accounts = %v, want %v", got, sorted(allAccounts))
	}
	for _, f := range []string{w.Krb5Conf, w.Krb5ConfSkewed, w.CACert, w.SMBConf, w.SMBConfDC2, w.MonitorKeytab} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}
	for conf, kdc := range map[string]string{w.Krb5Conf: "127.0.0.1:88", w.Krb5ConfSkewed: "127.0.0.2:88"} {
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"kdc = " + kdc, "dns_lookup_kdc = false", "dns_lookup_realm = false",
			"rdns = false", "dns_canonicalize_hostname = false", "udp_preference_limit = 0", "kdc_timesync = 0"} {
			if !strings.Contains(string(b), line) {
				t.Errorf("%s lacks %q", conf, line)
			}
		}
	}
	// no DNS forwarder anywhere, and both DCs on their own loopback address only
	for conf, iface := range map[string]string{w.SMBConf: "interfaces = 127.0.0.1\n", w.SMBConfDC2: "interfaces = 127.0.0.2/8\n"} {
		b, _ := os.ReadFile(conf)
		if strings.Contains(string(b), "dns forwarder") {
			t.Errorf("%s has a dns forwarder", conf)
		}
		if !strings.Contains(string(b), iface) || !strings.Contains(string(b), "bind interfaces only = Yes") {
			t.Errorf("%s does not bind %q only", conf, strings.TrimSpace(iface))
		}
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// TestUpIsIdempotent: a second "up" finds the world healthy and leaves it alone.
func TestUpIsIdempotent(t *testing.T) {
	start(t)
	script, err := world.Script()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", script, "up").CombinedOutput()
	if err != nil {
		t.Fatalf("world.sh up: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "already up and healthy") {
		t.Errorf("second up did not find the world healthy:\n%s", out)
	}
	out, err = exec.Command("bash", script, "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "DC1 127.0.0.1 running") || !strings.Contains(string(out), "DC2 127.0.0.2 running") {
		t.Errorf("world.sh status: %v\n%s", err, out)
	}
}

// ---------------------------------------------------------------- LDAP

func dialLDAP(t *testing.T, w *world.World, ip string) *ldap.Conn {
	t.Helper()
	pem, err := os.ReadFile(w.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", w.CACert)
	}
	// no ServerName: go-ldap verifies the IP address against the certificate's IP SANs
	conn, err := ldap.DialURL("ldaps://"+ip+":636", ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("LDAPS to %s: %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetTimeout(30 * time.Second)
	// the exporter's own identity: an ordinary domain user
	if err := conn.Bind(w.MonitorUser+"@"+w.Domain, w.MonitorPassword); err != nil {
		t.Fatalf("bind as %s on %s: %v", w.MonitorUser, ip, err)
	}
	return conn
}

var accountAttrs = []string{"sAMAccountName", "servicePrincipalName", "userAccountControl",
	"msDS-AllowedToDelegateTo", "msDS-SupportedEncryptionTypes", "lockoutTime",
	"msDS-User-Account-Control-Computed", "msDS-AllowedToActOnBehalfOfOtherIdentity", "memberOf",
	"dNSHostName", "objectSid", "adminCount"}

func accounts(t *testing.T, w *world.World, conn *ldap.Conn, filter string) map[string]*ldap.Entry {
	t.Helper()
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest(w.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 30, false, filter, accountAttrs, nil), 500)
	if err != nil {
		t.Fatalf("search %s: %v", filter, err)
	}
	m := map[string]*ldap.Entry{}
	for _, e := range res.Entries {
		m[e.GetAttributeValue("sAMAccountName")] = e
	}
	return m
}

type accountWant struct {
	spns    []string
	uac     int
	a2d     []string // msDS-AllowedToDelegateTo
	etypes  string   // msDS-SupportedEncryptionTypes, "" = unset
	locked  bool
	protect bool // member of Protected Users
}

func TestLDAPAccounts(t *testing.T) {
	w := start(t)
	want := map[string]accountWant{
		"krbmon":      {uac: 0x200},
		"sqlsvc_a":    {spns: sql4("sqla"), uac: 0x200, a2d: []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}, etypes: "24"},
		"sqlsvc_b":    {spns: sql4("sqlb"), uac: 0x200, etypes: "24"},
		"sqlsvc_c":    {uac: 0x200},
		"sqlsvc_d":    {uac: 0x200},
		"wrongacct":   {spns: []string{"MSSQLSvc/sqld.corp.test:1433"}, uac: 0x200},
		"sqldup1":     {spns: []string{"MSSQLSvc/sqldup.corp.test:1433"}, uac: 0x200},
		"sqldup2":     {spns: []string{"MSSQLSvc/sqldup.corp.test:1433"}, uac: 0x200},
		"sqlsvc_u":    {spns: []string{"MSSQLSvc/sqlu.corp.test:1433"}, uac: 0x200 | 0x80000},
		"sqlsvc_pt":   {spns: []string{"MSSQLSvc/sqlpt.corp.test:1433"}, uac: 0x200 | 0x1000000, a2d: []string{"MSSQLSvc/sqlb.corp.test:1433"}},
		"sqlsvc_r":    {spns: []string{"MSSQLSvc/sqlr.corp.test:1433"}, uac: 0x200},
		"SQLE$":       {spns: []string{"MSSQLSvc/sqle.corp.test:1433"}, uac: 0x1000, etypes: "28"},
		"sqlsvc_rc4":  {spns: []string{"MSSQLSvc/sqlrc4.corp.test:1433"}, uac: 0x200, etypes: "4"},
		"sqlsvc_dis":  {spns: []string{"MSSQLSvc/sqldis.corp.test:1433"}, uac: 0x200 | 0x2},
		"sqlsvc_lock": {spns: []string{"MSSQLSvc/sqllock.corp.test:1433"}, uac: 0x200, locked: true},
		"crmweb":      {spns: []string{"HTTP/crm.corp.test", "HTTP/crm"}, uac: 0x200},
		"alice":       {uac: 0x200 | 0x100000},
		"bob":         {uac: 0x200, protect: true},
		"carol":       {uac: 0x200},
		"sqlsvc_f":    {spns: []string{"MSSQLSvc/sqlf.corp.test:1433", "MSSQLSvc/sqlf.corp.test"}, uac: 0x200},
		"sqlsvc_g":    {spns: []string{"MSSQLSvc/sqlg.corp.test:1433", "MSSQLSvc/SQLG:1433"}, uac: 0x200},
		"sqlsvc_h":    {spns: []string{"MSSQLSvc/sqlh.corp.test:1433", "MSSQLSvc/sqlh.corp.test"}, uac: 0x200},
	}
	for _, dc := range []string{w.DC1, w.DC2} { // DC2 holds a copy of DC1's directory
		t.Run(dc, func(t *testing.T) {
			conn := dialLDAP(t, w, dc)
			filter := "(|"
			for sam := range want {
				filter += "(sAMAccountName=" + ldap.EscapeFilter(sam) + ")"
			}
			got := accounts(t, w, conn, filter+")")
			for sam, wa := range want {
				e := got[sam]
				if e == nil {
					t.Errorf("%s: not found", sam)
					continue
				}
				if spns := e.GetAttributeValues("servicePrincipalName"); !slices.Equal(sorted(spns), sorted(wa.spns)) {
					t.Errorf("%s: SPNs %q, want %q", sam, spns, wa.spns)
				}
				if uac := e.GetAttributeValue("userAccountControl"); uac != strconv.Itoa(wa.uac) {
					t.Errorf("%s: userAccountControl %s, want %d (%#x)", sam, uac, wa.uac, wa.uac)
				}
				if a2d := e.GetAttributeValues("msDS-AllowedToDelegateTo"); !slices.Equal(sorted(a2d), sorted(wa.a2d)) {
					t.Errorf("%s: msDS-AllowedToDelegateTo %q, want %q", sam, a2d, wa.a2d)
				}
				if et := e.GetAttributeValue("msDS-SupportedEncryptionTypes"); et != wa.etypes {
					t.Errorf("%s: msDS-SupportedEncryptionTypes %q, want %q", sam, et, wa.etypes)
				}
				lt := e.GetAttributeValue("lockoutTime")
				computed, _ := strconv.Atoi(e.GetAttributeValue("msDS-User-Account-Control-Computed"))
				if locked := lt != "" && lt != "0" && computed&0x10 != 0; locked != wa.locked {
					t.Errorf("%s: locked out %v (lockoutTime %q, computed UAC %#x), want %v", sam, locked, lt, computed, wa.locked)
				}
				protected := slices.Contains(e.GetAttributeValues("memberOf"), "CN=Protected Users,CN=Users,"+w.BaseDN)
				if protected != wa.protect {
					t.Errorf("%s: member of Protected Users %v, want %v", sam, protected, wa.protect)
				}
				rbcd := e.GetRawAttributeValue("msDS-AllowedToActOnBehalfOfOtherIdentity")
				if sam == "SQLE$" {
					// RBCD: the security descriptor grants sqlsvc_r (its SID is in the DACL)
					sid := got["sqlsvc_r"].GetRawAttributeValue("objectSid")
					if len(rbcd) == 0 || len(sid) == 0 || !bytes.Contains(rbcd, sid) {
						t.Errorf("SQLE$: msDS-AllowedToActOnBehalfOfOtherIdentity (%d bytes) does not name sqlsvc_r", len(rbcd))
					}
					if h := e.GetAttributeValue("dNSHostName"); h != "sqle.corp.test" {
						t.Errorf("SQLE$: dNSHostName %q", h)
					}
				} else if len(rbcd) != 0 {
					t.Errorf("%s: unexpected msDS-AllowedToActOnBehalfOfOtherIdentity", sam)
				}
			}
			// the monitor is ordinary: no group beyond its primary group, never an admin
			if m := got["krbmon"]; len(m.GetAttributeValues("memberOf")) != 0 || m.GetAttributeValue("adminCount") != "" {
				t.Errorf("krbmon has memberOf %q adminCount %q", m.GetAttributeValues("memberOf"), m.GetAttributeValue("adminCount"))
			}
		})
	}
}

func TestLDAPSPNHolders(t *testing.T) {
	w := start(t)
	conn := dialLDAP(t, w, w.DC1)
	for spn, holders := range map[string][]string{
		"MSSQLSvc/sqldup.corp.test:1433": {"sqldup1", "sqldup2"}, // duplicate
		"MSSQLSvc/sqld.corp.test:1433":   {"wrongacct"},          // on the wrong account
		"MSSQLSvc/sqlc.corp.test:1433":   nil,                    // missing
		"MSSQLSvc/sqla.corp.test:1433":   {"sqlsvc_a"},
		"HTTP/crm.corp.test":             {"crmweb"},
	} {
		got := accounts(t, w, conn, "(servicePrincipalName="+ldap.EscapeFilter(spn)+")")
		var names []string
		for n := range got {
			names = append(names, n)
		}
		if !slices.Equal(sorted(names), holders) {
			t.Errorf("holders of %s: %v, want %v", spn, names, holders)
		}
	}
}

func rootDSETime(t *testing.T, conn *ldap.Conn) time.Time {
	t.Helper()
	res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
		"(objectClass=*)", []string{"currentTime"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("rootDSE: %v", err)
	}
	v := res.Entries[0].GetAttributeValue("currentTime")
	ts, err := time.Parse("20060102150405.0Z", v)
	if err != nil {
		t.Fatalf("currentTime %q: %v", v, err)
	}
	return ts
}

func TestClockSkew(t *testing.T) {
	w := start(t)
	if d := time.Until(rootDSETime(t, dialLDAP(t, w, w.DC1))); d < -time.Minute || d > time.Minute {
		t.Errorf("DC1 clock is off by %v", d)
	}
	d := time.Until(rootDSETime(t, dialLDAP(t, w, w.DC2)))
	if d < w.DC2Skew-time.Minute || d > w.DC2Skew+time.Minute {
		t.Errorf("DC2 clock is ahead by %v, want %v", d, w.DC2Skew)
	}
	t.Logf("DC2 rootDSE currentTime is %v ahead", d.Round(time.Second))
}

// ---------------------------------------------------------------- Kerberos (gokrb5)

func krbConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("krb5 config %s: %v", path, err)
	}
	return cfg
}

func loadKeytab(t *testing.T, w *world.World, sam string) *keytab.Keytab {
	t.Helper()
	kt, err := keytab.Load(w.Keytabs[sam])
	if err != nil {
		t.Fatalf("keytab of %s: %v", sam, err)
	}
	return kt
}

func monitorClient(t *testing.T, w *world.World) *client.Client {
	t.Helper()
	cl := client.NewWithKeytab(w.MonitorUser, w.Realm, loadKeytab(t, w, w.MonitorUser), krbConfig(t, w.Krb5Conf),
		client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatalf("login as %s with its keytab: %v", w.MonitorUser, err)
	}
	t.Cleanup(cl.Destroy)
	return cl
}

// krbErrorCode is the Kerberos error code in a gokrb5 error ("KRB Error: (7) ..."), or -1.
func krbErrorCode(err error) int {
	if err == nil {
		return -1
	}
	s := err.Error()
	i := strings.Index(s, "KRB Error: (")
	if i < 0 {
		return -1
	}
	s = s[i+len("KRB Error: ("):]
	n, convErr := strconv.Atoi(s[:strings.Index(s, ")")])
	if convErr != nil {
		return -1
	}
	return n
}

func decryptsWith(t *testing.T, w *world.World, tkt *messages.Ticket, sam string) error {
	t.Helper()
	sname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, sam)
	return tkt.DecryptEncPart(loadKeytab(t, w, sam), &sname)
}

func TestServiceTickets(t *testing.T) {
	w := start(t)
	cl := monitorClient(t, w)
	for _, tc := range []struct {
		spn     string
		errCode int    // Kerberos error expected from the KDC, 0 = a ticket
		owner   string // account whose keys decrypt the ticket
		etype   int32
	}{
		{spn: "MSSQLSvc/sqla.corp.test:1433", owner: "sqlsvc_a", etype: etypeID.AES256_CTS_HMAC_SHA1_96},
		{spn: "MSSQLSvc/sqla.corp.test", owner: "sqlsvc_a", etype: etypeID.AES256_CTS_HMAC_SHA1_96},
		{spn: "MSSQLSvc/sqla:1433", owner: "sqlsvc_a", etype: etypeID.AES256_CTS_HMAC_SHA1_96},
		{spn: "MSSQLSvc/sqla", owner: "sqlsvc_a", etype: etypeID.AES256_CTS_HMAC_SHA1_96},
		{spn: "MSSQLSvc/sqlb.corp.test:1433", owner: "sqlsvc_b", etype: etypeID.AES256_CTS_HMAC_SHA1_96},
		{spn: "MSSQLSvc/sqlc.corp.test:1433", errCode: 7},                                             // no SPN: KDC_ERR_S_PRINCIPAL_UNKNOWN
		{spn: "MSSQLSvc/sqld.corp.test:1433", owner: "wrongacct", etype: etypeID.RC4_HMAC},            // SPN on the wrong account
		{spn: "MSSQLSvc/sqldup.corp.test:1433", errCode: 7},                                           // duplicate: the KDC finds no unique holder
		{spn: "MSSQLSvc/sqlu.corp.test:1433", owner: "sqlsvc_u", etype: etypeID.RC4_HMAC},             // no enctypes set: RC4 ticket
		{spn: "MSSQLSvc/sqlpt.corp.test:1433", owner: "sqlsvc_pt", etype: etypeID.RC4_HMAC},           //
		{spn: "MSSQLSvc/sqlr.corp.test:1433", owner: "sqlsvc_r", etype: etypeID.RC4_HMAC},             //
		{spn: "MSSQLSvc/sqle.corp.test:1433", owner: "SQLE$", etype: etypeID.AES256_CTS_HMAC_SHA1_96}, // gMSA stand-in, enctypes 28
		{spn: "MSSQLSvc/sqlrc4.corp.test:1433", owner: "sqlsvc_rc4", etype: etypeID.RC4_HMAC},         // RC4 only
		{spn: "MSSQLSvc/sqldis.corp.test:1433", owner: "sqlsvc_dis", etype: etypeID.RC4_HMAC},         // Samba 4.17 still issues it
		{spn: "MSSQLSvc/sqllock.corp.test:1433", errCode: 19},                                         // locked out: KDC_ERR_SERVICE_REVOKED
		{spn: "HTTP/crm.corp.test", owner: "crmweb", etype: etypeID.RC4_HMAC},
		{spn: "HTTP/crm", owner: "crmweb", etype: etypeID.RC4_HMAC},
	} {
		t.Run(tc.spn, func(t *testing.T) {
			tkt, _, err := cl.GetServiceTicket(tc.spn)
			if tc.errCode != 0 {
				if code := krbErrorCode(err); code != tc.errCode {
					t.Fatalf("want Kerberos error %d, got %v", tc.errCode, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("no ticket: %v", err)
			}
			if tkt.EncPart.EType != tc.etype {
				t.Errorf("ticket enctype %d, want %d", tkt.EncPart.EType, tc.etype)
			}
			if err := decryptsWith(t, w, &tkt, tc.owner); err != nil {
				t.Fatalf("ticket does not decrypt with %s's keytab: %v", tc.owner, err)
			}
			if c := tkt.DecryptedEncPart.CName.PrincipalNameString(); c != w.MonitorUser {
				t.Errorf("ticket client %q, want %q", c, w.MonitorUser)
			}
			if tc.spn == "MSSQLSvc/sqld.corp.test:1433" {
				// what SQL D's stand-in (running as sqlsvc_d) sees: a ticket it cannot read
				if err := decryptsWith(t, w, &tkt, "sqlsvc_d"); err == nil {
					t.Errorf("sqld's ticket decrypted with sqlsvc_d's keys")
				}
			}
		})
	}
}

// Every exported keytab matches the KDC's keys: a login with it succeeds, except for the
// disabled and the locked-out account (KDC_ERR_CLIENT_REVOKED).
func TestKeytabLogins(t *testing.T) {
	w := start(t)
	cfg := krbConfig(t, w.Krb5Conf)
	for _, sam := range allAccounts {
		t.Run(sam, func(t *testing.T) {
			cl := client.NewWithKeytab(sam, w.Realm, loadKeytab(t, w, sam), cfg, client.DisablePAFXFAST(true))
			defer cl.Destroy()
			err := cl.Login()
			switch sam {
			case "sqlsvc_dis", "sqlsvc_lock":
				if code := krbErrorCode(err); code != 18 {
					t.Fatalf("want KDC_ERR_CLIENT_REVOKED (18), got %v", err)
				}
			default:
				if err != nil {
					t.Fatalf("login: %v", err)
				}
			}
		})
	}
	// passwords work as well (the monitor, a user to be delegated, wrongacct's own password)
	for _, u := range []string{w.MonitorUser, "carol", "wrongacct"} {
		cl := client.NewWithPassword(u, w.Realm, w.Password(u), cfg, client.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			t.Errorf("password login as %s: %v", u, err)
		}
		cl.Destroy()
	}
}

func TestSkewedKDC(t *testing.T) {
	w := start(t)
	cl := client.NewWithKeytab(w.MonitorUser, w.Realm, loadKeytab(t, w, w.MonitorUser), krbConfig(t, w.Krb5ConfSkewed),
		client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if code := krbErrorCode(cl.Login()); code != 37 {
		t.Errorf("login at DC2: want KRB_AP_ERR_SKEW (37), got code %d", code)
	}
	// MIT kinit, with kdc_timesync = 0, reports the skew too
	out, err := newMIT(t, w.Krb5ConfSkewed).run("kinit", "-k", "-t", w.MonitorKeytab, w.MonitorUser+"@"+w.Realm)
	if err == nil || !strings.Contains(out, "Clock skew too great") {
		t.Errorf("kinit at DC2: want 'Clock skew too great', got %v: %s", err, out)
	}
}

// ---------------------------------------------------------------- MIT tools

// mitSession runs a series of MIT tool commands sharing one credential cache.
type mitSession struct {
	t      *testing.T
	conf   string
	ccache string
}

func newMIT(t *testing.T, conf string) *mitSession {
	return &mitSession{t: t, conf: conf, ccache: "FILE:" + filepath.Join(t.TempDir(), "ccache")}
}

func (s *mitSession) run(args ...string) (string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+s.conf, "KRB5CCNAME="+s.ccache)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMITKvno(t *testing.T) {
	w := start(t)
	s := newMIT(t, w.Krb5Conf)
	if out, err := s.run("kinit", "-k", "-t", w.MonitorKeytab, w.MonitorUser+"@"+w.Realm); err != nil {
		t.Fatalf("kinit: %v: %s", err, out)
	}
	out, err := s.run("kvno", "MSSQLSvc/sqla.corp.test:1433")
	if err != nil || !strings.Contains(out, "MSSQLSvc/sqla.corp.test:1433@CORP.TEST: kvno = ") {
		t.Errorf("kvno sqla: %v: %s", err, out)
	}
	out, err = s.run("kvno", "MSSQLSvc/sqlc.corp.test:1433")
	if err == nil || !strings.Contains(out, "Server not found in Kerberos database") {
		t.Errorf("kvno sqlc: want 'Server not found in Kerberos database', got %v: %s", err, out)
	}
}

// Delegation as the KDC enforces it, through S4U (kvno -U user -P target) from each front end's
// own credentials.
func TestDelegationS4U(t *testing.T) {
	w := start(t)
	const sqlb = "MSSQLSvc/sqlb.corp.test:1433"
	for _, tc := range []struct {
		svc, user, target string
		ok                bool
	}{
		{"sqlsvc_pt", "carol", sqlb, true},                            // protocol transition + constrained delegation to sqlb
		{"sqlsvc_pt", "alice", sqlb, false},                           // alice is sensitive and cannot be delegated
		{"sqlsvc_pt", "carol", "MSSQLSvc/sqle.corp.test:1433", false}, // not in its msDS-AllowedToDelegateTo
		{"sqlsvc_a", "carol", sqlb, false},                            // Kerberos only: no protocol transition, needs the user's own ticket
		{"sqlsvc_u", "carol", sqlb, false},                            // unconstrained delegation forwards TGTs, no S4U2Proxy
		// Samba 4.17 limitations, pinned so that a Samba that lifts them is noticed:
		{"sqlsvc_pt", "bob", sqlb, true},                             // Protected Users is not enforced for delegation
		{"sqlsvc_r", "carol", "MSSQLSvc/sqle.corp.test:1433", false}, // RBCD (set on SQLE$) is not honoured by the KDC
	} {
		t.Run(tc.svc+"/"+tc.user+"->"+tc.target, func(t *testing.T) {
			s := newMIT(t, w.Krb5Conf)
			if out, err := s.run("kinit", "-k", "-t", w.Keytabs[tc.svc], tc.svc+"@"+w.Realm); err != nil {
				t.Fatalf("kinit %s: %v: %s", tc.svc, err, out)
			}
			out, err := s.run("kvno", "-U", tc.user, "-P", tc.target)
			if tc.ok && err != nil {
				t.Fatalf("S4U2Proxy refused: %v: %s", err, out)
			}
			if !tc.ok && (err == nil || !strings.Contains(out, "constrained delegation failed")) {
				t.Fatalf("S4U2Proxy not refused: %v: %s", err, out)
			}
			if tc.ok {
				// the proxy ticket names the user as client
				list, _ := s.run("klist")
				if !strings.Contains(list, tc.target+"@"+w.Realm) || !strings.Contains(list, "for client "+tc.user+"@"+w.Realm) {
					t.Errorf("no ticket to %s for %s in the cache:\n%s", tc.target, tc.user, list)
				}
			}
		})
	}
}

// ---------------------------------------------------------------- DNS

func resolver(w *world.World) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, w.DNSServer())
	}}
}

func TestDNS(t *testing.T) {
	w := start(t)
	r := resolver(w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for host, ip := range map[string]string{"sqla": "127.0.0.11", "sqlb": "127.0.0.12", "sqlc": "127.0.0.13",
		"sqld": "127.0.0.14", "sqle": "127.0.0.15", "crm": "127.0.0.20", "sqlm": "127.0.0.19", "dc1": "127.0.0.1", "": "127.0.0.1",
		"sqlf": "127.0.0.21", "sqlg": "127.0.0.22", "sqlh": "127.0.0.23"} {
		fqdn := strings.TrimPrefix(host+".corp.test", ".")
		addrs, err := r.LookupHost(ctx, fqdn)
		if err != nil || !slices.Equal(addrs, []string{ip}) {
			t.Errorf("A %s = %v (%v), want %s", fqdn, addrs, err, ip)
		}
		if host == "dc1" || host == "" {
			continue // 127.0.0.1 is in /etc/hosts, which Go's resolver reads before DNS
		}
		wantPTR := fqdn + "."
		if host == "sqlm" {
			wantPTR = "oldname.corp.test." // forward and reverse disagree
		}
		names, err := r.LookupAddr(ctx, ip)
		if err != nil || !slices.Equal(names, []string{wantPTR}) {
			t.Errorf("PTR %s = %v (%v), want %s", ip, names, err, wantPTR)
		}
	}
	// no forwarder: names outside corp.test are not resolved (nothing leaves the machine)
	if addrs, err := r.LookupHost(ctx, "deb.debian.org"); err == nil {
		t.Errorf("deb.debian.org resolved through the DC to %v: a forwarder is configured", addrs)
	}
	// the SRV records of the domain point at dc1
	_, srvs, err := r.LookupSRV(ctx, "ldap", "tcp", "corp.test")
	if err != nil || len(srvs) != 1 || srvs[0].Target != "dc1.corp.test." || srvs[0].Port != 389 {
		t.Errorf("_ldap._tcp.corp.test SRV = %v (%v)", srvs, err)
	}
}

// ---------------------------------------------------------------- SambaTool

// SambaTool changes the directory at run time: a scratch account with an SPN gets tickets
// until the SPN is removed again. It touches no fixture.
func TestSambaToolChangesAD(t *testing.T) {
	w := start(t)
	sam := fmt.Sprintf("wtest%d", os.Getpid()%100000)
	spn := "MSSQLSvc/" + sam + ".corp.test:1433"
	if out, err := w.SambaTool("user", "add", sam, w.ServicePassword); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := w.SambaTool("user", "delete", sam); err != nil {
			t.Errorf("cleanup: %v\n%s", err, out)
		}
	})
	if _, err := w.SambaTool("spn", "add", spn, sam); err != nil {
		t.Fatal(err)
	}
	out, err := w.SambaTool("spn", "list", sam)
	if err != nil || !strings.Contains(out, spn) {
		t.Fatalf("spn list %s: %v\n%s", sam, err, out)
	}
	cl := monitorClient(t, w)
	if _, _, err := cl.GetServiceTicket(spn); err != nil {
		t.Fatalf("ticket for the new SPN: %v", err)
	}
	if _, err := w.SambaTool("spn", "delete", spn, sam); err != nil {
		t.Fatal(err)
	}
	cl2 := monitorClient(t, w) // a fresh client: gokrb5 caches tickets
	if _, _, err := cl2.GetServiceTicket(spn); krbErrorCode(err) != 7 {
		t.Fatalf("after removing the SPN: want KDC_ERR_S_PRINCIPAL_UNKNOWN (7), got %v", err)
	}
	// errors carry samba-tool's message
	if _, err := w.SambaTool("user", "show", "no_such_user_"+sam); err == nil {
		t.Errorf("samba-tool user show of a missing user succeeded")
	}
	// the RBCD setting is visible through samba-tool as well
	out, err = w.SambaTool("delegation", "show", "SQLE$")
	if err != nil || !strings.Contains(out, "sqlsvc_r") {
		t.Errorf("delegation show SQLE$: %v\n%s", err, out)
	}
}
