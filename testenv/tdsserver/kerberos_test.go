package tdsserver_test

import (
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	mssql "github.com/microsoft/go-mssqldb"
	// go-mssqldb's Kerberos authenticator ("authenticator=krb5").
	_ "github.com/microsoft/go-mssqldb/integratedauth/krb5"

	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// These tests use the Samba AD world (testenv/world): real tickets from a
// real KDC, verified by the stand-in with keytabs exported from the DC. They
// fail, never skip, when the world cannot start; -short skips them.

func startWorld(t *testing.T) *world.World {
	t.Helper()
	w := world.ForTest(t)
	// Scenario paths (${KERBEROS_TESTENV_DIR}/keytabs/...) point into this world.
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	return w
}

// krb5DSN is how the exporter connects with Kerberos: go-mssqldb's krb5
// authenticator, krbmon's keytab, and the SPN asked for explicitly (the
// stand-ins listen on addresses, not on the names in the SPNs).
func krb5DSN(w *world.World, addr, spn string) string {
	return dsn(addr, url.User(w.MonitorUser),
		"authenticator", "krb5",
		"krb5-configfile", w.Krb5Conf,
		"krb5-keytabfile", w.MonitorKeytab,
		"krb5-realm", w.Realm,
		"ServerSPN", spn)
}

func TestKerberosLoginIsKerberos(t *testing.T) {
	w := startWorld(t)
	g := startScenarios(t, []string{"sqla"})
	a := g.Server("sqla")
	db := openDSN(t, krb5DSN(w, a.Addr(), "MSSQLSvc/sqla.corp.test:1433"))
	got := queryAll(t, db, sqlclient.QueryOwnConnection)
	if len(got) != 1 || got[0][0] != "TCP" || got[0][1] != "KERBEROS" {
		t.Fatalf("own connection = %v, want TCP KERBEROS", got)
	}
	if s := a.Sessions(); len(s) != 1 || s[0].Login != `CORP\krbmon` || s[0].AuthScheme != "KERBEROS" {
		t.Errorf("sessions on A = %+v, want CORP\\krbmon with KERBEROS", s)
	}
	// The port-less SPN form works too (it is registered on sqlsvc_a as well).
	db2 := openDSN(t, krb5DSN(w, a.Addr(), "MSSQLSvc/sqla.corp.test"))
	if got := queryAll(t, db2, sqlclient.QueryOwnConnection); got[0][1] != "KERBEROS" {
		t.Errorf("port-less SPN: %v", got)
	}
}

func TestKerberosWithoutSPNGetsNoTicket(t *testing.T) {
	w := startWorld(t)
	g := startScenarios(t, []string{"sqlc"})
	db := openDSN(t, krb5DSN(w, g.Server("sqlc").Addr(), "MSSQLSvc/sqlc.corp.test:1433"))
	err := db.PingContext(ctxT(t))
	var me mssql.Error
	if err == nil || errors.As(err, &me) {
		t.Fatalf("sqlc has no SPN: want a client-side Kerberos error, got %v", err)
	}
	if !strings.Contains(err.Error(), "KDC_ERR_S_PRINCIPAL_UNKNOWN") {
		t.Errorf("error does not say the KDC knows no such principal: %v", err)
	}
	if s := g.Server("sqlc").LoginHistory(); len(s) != 0 {
		t.Errorf("sqlc saw logins: %+v", s)
	}
}

func TestKerberosTicketForAnotherServiceIs18456(t *testing.T) {
	w := startWorld(t)
	g := startScenarios(t, []string{"sqla"})
	// A real ticket, but for SQL B's SPN: encrypted with sqlsvc_b's AES key,
	// which SQL A (sqlsvc_a's keytab) cannot read.
	db := openDSN(t, krb5DSN(w, g.Server("sqla").Addr(), "MSSQLSvc/sqlb.corp.test:1433"))
	me := sqlError(t, db.PingContext(ctxT(t)))
	if me.Number != 18456 || me.Class != 14 {
		t.Fatalf("got %d/%d %q, want 18456", me.Number, me.Class, me.Message)
	}
	if s := g.Server("sqla").LoginHistory(); len(s) != 0 {
		t.Errorf("SQL A let in %+v", s)
	}
}

func TestKerberosSPNOnWrongAccountIs18456(t *testing.T) {
	w := startWorld(t)
	g := startScenarios(t, []string{"sqld"})
	// MSSQLSvc/sqld.corp.test:1433 sits on wrongacct: the KDC issues the
	// ticket, encrypted with wrongacct's keys, which sqlsvc_d cannot read.
	db := openDSN(t, krb5DSN(w, g.Server("sqld").Addr(), "MSSQLSvc/sqld.corp.test:1433"))
	me := sqlError(t, db.PingContext(ctxT(t)))
	if me.Number != 18456 {
		t.Fatalf("got %d %q, want 18456", me.Number, me.Message)
	}
}

func TestNTLMWithRealAccount(t *testing.T) {
	w := startWorld(t)
	g := startScenarios(t, []string{"sqlc"})
	db := openDSN(t, dsn(g.Server("sqlc").Addr(), url.UserPassword(w.NetBIOS+`\`+w.MonitorUser, w.MonitorPassword),
		"authenticator", "ntlm", "workstation id", "MONITOR01"))
	got := queryAll(t, db, sqlclient.QueryOwnConnection)
	if got[0][1] != "NTLM" {
		t.Fatalf("own connection = %v, want NTLM", got)
	}
	if s := g.Server("sqlc").Sessions(); len(s) != 1 || s[0].Login != `CORP\krbmon` || s[0].HostName != "MONITOR01" {
		t.Errorf("sessions = %+v", s)
	}
}

func TestKerberosSecondHopIsKerberos(t *testing.T) {
	w := startWorld(t)
	g := startScenarios(t, []string{"sqla", "sqlb"})
	db := openDSN(t, krb5DSN(w, g.Server("sqla").Addr(), "MSSQLSvc/sqla.corp.test:1433"))
	ctx := ctxT(t)
	transport, scheme, _, err := hop(ctx, db, "SQLB")
	if err != nil {
		t.Fatal(err)
	}
	if transport != "TCP" || scheme != "KERBEROS" {
		t.Fatalf("B saw the hop as %s/%s, want TCP/KERBEROS", transport, scheme)
	}
	if err := testLinked(ctx, db, "SQLB"); err != nil {
		t.Errorf("sp_testlinkedserver SQLB: %v", err)
	}
	// B verified a real ticket for its SPN, from A's service account.
	hist := g.Server("sqlb").LoginHistory()
	if !slices.ContainsFunc(hist, func(s tdsserver.SessionInfo) bool {
		return s.Login == `CORP\sqlsvc_a` && s.AuthScheme == "KERBEROS" && s.HostName == "SQLA" && s.Program == "Microsoft SQL Server"
	}) {
		t.Errorf("B's logins = %+v, want CORP\\sqlsvc_a with KERBEROS from SQLA", hist)
	}
}

func TestKerberosCallerHopWithoutDelegationIsAnonymous(t *testing.T) {
	w := startWorld(t)
	// Like SQL A, but delegation to B is declared broken, and a second
	// linked server asks for an SPN no account holds.
	a := inline(t, "sqla2", `
listen: 127.0.0.11:1433
machine_name: SQLA
domain: CORP
kerberos:
  keytab: ${KERBEROS_TESTENV_DIR}/keytabs/sqlsvc_a.keytab
  principal: sqlsvc_a
  realm: CORP.TEST
  krb5_conf: ${KERBEROS_TESTENV_DIR}/krb5.conf
linked_servers:
  - name: SQLB
    server_id: 1
    connect: 127.0.0.12:1433
    spn: MSSQLSvc/sqlb.corp.test:1433
    delegation: false
    logins: [{uses_self_credential: true, local_principal_id: 0}]
  - name: NOSPN
    server_id: 2
    connect: 127.0.0.12:1433
    spn: MSSQLSvc/nosuchhost.corp.test:1433
    delegation: true
    logins: [{uses_self_credential: true, local_principal_id: 0}]
`)
	g := startScenarios(t, []string{"sqlb"}, a)
	db := openDSN(t, krb5DSN(w, g.Server("sqla2").Addr(), "MSSQLSvc/sqla.corp.test:1433"))
	for _, name := range []string{"SQLB", "NOSPN"} {
		_, _, _, err := hop(ctxT(t), db, name)
		me := sqlError(t, err)
		if me.Number != 18456 || me.Message != `Login failed for user 'NT AUTHORITY\ANONYMOUS LOGON'.` {
			t.Errorf("%s: %d %q, want 18456 ANONYMOUS LOGON", name, me.Number, me.Message)
		}
	}
}

// The stand-in reads keytabs when first needed, so a stand-in started
// before the world still verifies tickets once the keytab exists.
func TestKeytabLoadedOnFirstUse(t *testing.T) {
	w := startWorld(t)
	if _, err := os.Stat(w.Keytabs["sqlsvc_a"]); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tdsserver.TestenvDirVar, t.TempDir()) // no keytab there yet
	sc, err := tdsserver.LoadScenario("../scenarios/sqla.yml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := tdsserver.StartGroup([]*tdsserver.Scenario{sc}, tdsserver.GroupOptions{EphemeralPorts: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	addr := g.Server("sqla").Addr()
	me := sqlError(t, openDSN(t, krb5DSN(w, addr, "MSSQLSvc/sqla.corp.test:1433")).PingContext(ctxT(t)))
	if me.Number != 18456 {
		t.Fatalf("without keytab: %d %q", me.Number, me.Message)
	}
	data, err := os.ReadFile(w.Keytabs["sqlsvc_a"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(strings.TrimSuffix(sc.Kerberos.Keytab, "/sqlsvc_a.keytab"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sc.Kerberos.Keytab, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := openDSN(t, krb5DSN(w, addr, "MSSQLSvc/sqla.corp.test:1433")).PingContext(ctxT(t)); err != nil {
		t.Fatalf("after the keytab appeared: %v", err)
	}
}
