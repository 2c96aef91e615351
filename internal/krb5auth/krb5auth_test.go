package krb5auth_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/integratedauth"
	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/kerberos-exporter/kerberos_exporter/internal/krb5auth"
	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

func writeKrb5Conf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Settings the KDC was never asked about are setup errors that name what
// is wrong, so that a login's failure is not blamed on the directory.
func TestSetupErrorsNameTheProblem(t *testing.T) {
	conf := writeKrb5Conf(t, "[libdefaults]\n default_realm = CORP.TEST\n")
	noRealm := writeKrb5Conf(t, "[libdefaults]\n dns_lookup_kdc = false\n")
	missing := filepath.Join(t.TempDir(), "missing")
	spn := "MSSQLSvc/sqla.corp.test:1433"
	tests := []struct {
		name   string
		cfg    msdsn.Config
		saying string
	}{
		{"no SPN", msdsn.Config{User: "krbmon", Password: "pw", Parameters: map[string]string{krb5auth.ParamConfigFile: conf}}, "no SPN"},
		{"no user", msdsn.Config{ServerSPN: spn, Password: "pw", Parameters: map[string]string{krb5auth.ParamConfigFile: conf}}, "no user name"},
		{"no krb5.conf", msdsn.Config{ServerSPN: spn, User: "krbmon", Password: "pw", Parameters: map[string]string{krb5auth.ParamConfigFile: missing}}, missing},
		{"no realm anywhere", msdsn.Config{ServerSPN: spn, User: "krbmon", Password: "pw", Parameters: map[string]string{krb5auth.ParamConfigFile: noRealm}}, "no realm"},
		{"no keytab", msdsn.Config{ServerSPN: spn, User: "krbmon", Parameters: map[string]string{krb5auth.ParamConfigFile: conf, krb5auth.ParamKeytabFile: missing}}, "keytab " + missing},
		{"no ccache", msdsn.Config{ServerSPN: spn, User: "krbmon", Parameters: map[string]string{krb5auth.ParamConfigFile: conf, krb5auth.ParamCCacheFile: missing}}, "credential cache " + missing},
		{"no credentials", msdsn.Config{ServerSPN: spn, User: "krbmon", Parameters: map[string]string{krb5auth.ParamConfigFile: conf}}, "no password, keytab or credential cache"},
	}
	for _, tt := range tests {
		tt.cfg.Parameters["authenticator"] = krb5auth.Name
		_, err := integratedauth.GetIntegratedAuthenticator(tt.cfg)
		if !errors.Is(err, krb5auth.ErrSetup) || !strings.Contains(err.Error(), tt.saying) {
			t.Errorf("%s: %v; want a setup error saying %q", tt.name, err, tt.saying)
		}
	}
	// user@REALM gives the realm when nothing else does.
	if _, err := integratedauth.GetIntegratedAuthenticator(msdsn.Config{ServerSPN: spn, User: "krbmon@CORP.TEST", Password: "pw",
		Parameters: map[string]string{"authenticator": krb5auth.Name, krb5auth.ParamConfigFile: noRealm}}); err != nil {
		t.Errorf("user@REALM: %v", err)
	}
}

// countingResolver replaces the process's resolver with one that counts
// the DNS queries it is asked to send and answers none.
func countingResolver(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		n.Add(1)
		return nil, errors.New("no DNS in this test")
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
	return &n
}

// A Kerberos login, and the stand-in's delegated hop made with the same
// authenticator, get tickets for exactly the SPNs named, from the world's
// real KDC, without one DNS query: the ticket asked for is the SPN the
// exporter reports, and no login waits on the system resolver.
func TestLoginAndHopAskForTheNamedSPNWithoutDNS(t *testing.T) {
	w := world.ForTest(t)
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	var scs []*tdsserver.Scenario
	for _, name := range []string{"sqla", "sqlb"} {
		sc, err := tdsserver.LoadScenario(filepath.Join("..", "..", "testenv", "scenarios", name+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	g, err := tdsserver.StartGroup(scs, tdsserver.GroupOptions{EphemeralPorts: true, Logf: t.Logf, HopTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	queries := countingResolver(t)

	q := url.Values{
		"encrypt": {"disable"}, "dial timeout": {"5"},
		"authenticator":          {krb5auth.Name},
		krb5auth.ParamConfigFile: {w.Krb5Conf},
		krb5auth.ParamKeytabFile: {w.MonitorKeytab},
		krb5auth.ParamRealm:      {w.Realm},
		"ServerSPN":              {"MSSQLSvc/sqla.corp.test:1433"},
	}
	u := url.URL{Scheme: "sqlserver", User: url.User(w.MonitorUser), Host: g.Server("sqla").Addr(), RawQuery: q.Encode()}
	connector, err := mssql.NewConnector(u.String())
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var transport, scheme string
	var port sql.NullInt64
	if err := db.QueryRowContext(ctx, sqlclient.QueryOwnConnection).Scan(&transport, &scheme, &port); err != nil {
		t.Fatal(err)
	}
	if scheme != "KERBEROS" {
		t.Fatalf("A saw the login as %s, want KERBEROS", scheme)
	}
	var now time.Time
	if err := db.QueryRowContext(ctx, sqlclient.HopQuery("SQLB")).Scan(&transport, &scheme, &now); err != nil {
		t.Fatal(err)
	}
	if scheme != "KERBEROS" {
		t.Fatalf("B saw the hop as %s, want KERBEROS", scheme)
	}
	if n := queries.Load(); n != 0 {
		t.Errorf("%d DNS queries were sent for the login and the hop, want none", n)
	}
	// The other two kinds of credential: a password, and a credential cache
	// holding a TGT from MIT kinit.
	ccache := filepath.Join(t.TempDir(), "ccache")
	kinit := exec.Command("kinit", "-k", "-t", w.MonitorKeytab, w.MonitorUser+"@"+w.Realm)
	kinit.Env = append(os.Environ(), "KRB5_CONFIG="+w.Krb5Conf, "KRB5CCNAME=FILE:"+ccache)
	if out, err := kinit.CombinedOutput(); err != nil {
		t.Fatalf("kinit: %v: %s", err, out)
	}
	for name, set := range map[string]func(url.Values) *url.Userinfo{
		"password": func(v url.Values) *url.Userinfo {
			v.Del(krb5auth.ParamKeytabFile)
			return url.UserPassword(w.MonitorUser, w.MonitorPassword)
		},
		"credential cache": func(v url.Values) *url.Userinfo {
			v.Del(krb5auth.ParamKeytabFile)
			v.Set(krb5auth.ParamCCacheFile, ccache)
			return url.User(w.MonitorUser)
		},
	} {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		other := u
		other.User = set(v)
		other.RawQuery = v.Encode()
		c, err := mssql.NewConnector(other.String())
		if err != nil {
			t.Fatal(err)
		}
		odb := sql.OpenDB(c)
		defer odb.Close()
		if err := odb.QueryRowContext(ctx, sqlclient.QueryOwnConnection).Scan(&transport, &scheme, &port); err != nil || scheme != "KERBEROS" {
			t.Errorf("with a %s: %s, %v; want KERBEROS", name, scheme, err)
		}
	}
	if n := queries.Load(); n != 0 {
		t.Errorf("%d DNS queries were sent for the password and ccache logins, want none", n)
	}

	// A ticket the KDC refuses is a gokrb5 error, as sqlclient expects.
	q.Set("ServerSPN", "MSSQLSvc/nosuchhost.corp.test:1433")
	u.RawQuery = q.Encode()
	bad, err := mssql.NewConnector(u.String())
	if err != nil {
		t.Fatal(err)
	}
	db2 := sql.OpenDB(bad)
	defer db2.Close()
	err = db2.PingContext(ctx)
	if err == nil || !sqlclient.IsTicketError(err) || !strings.Contains(err.Error(), "KDC_ERR_S_PRINCIPAL_UNKNOWN") {
		t.Errorf("an unknown SPN: %v; want the KDC's KDC_ERR_S_PRINCIPAL_UNKNOWN", err)
	}
}
