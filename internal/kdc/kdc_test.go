package kdc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

func TestSplitPrincipal(t *testing.T) {
	for _, c := range []struct {
		principal, realm, wantUser, wantRealm string
	}{
		{"krbmon@CORP.TEST", "", "krbmon", "CORP.TEST"},
		{"krbmon@CORP.TEST", "OTHER.TEST", "krbmon", "CORP.TEST"},
		{"krbmon", "CORP.TEST", "krbmon", "CORP.TEST"},
		{"HTTP/web.corp.test@CORP.TEST", "", "HTTP/web.corp.test", "CORP.TEST"},
	} {
		user, realm := splitPrincipal(c.principal, c.realm)
		if user != c.wantUser || realm != c.wantRealm {
			t.Errorf("splitPrincipal(%q, %q) = %q, %q; want %q, %q", c.principal, c.realm, user, realm, c.wantUser, c.wantRealm)
		}
	}
}

func TestFailedMapsKRBErrors(t *testing.T) {
	// The shape gokrb5 returns for a TGS exchange the KDC refused.
	unknown := krberror.Errorf(messages.KRBError{ErrorCode: 7}, krberror.KDCError, "TGS Exchange Error: kerberos error response from KDC")
	for _, c := range []struct {
		name     string
		err      error
		wantCode int32
		wantName string
	}{
		{"principal unknown", fmt.Errorf("service ticket for X: %w", unknown), 7, "KDC_ERR_S_PRINCIPAL_UNKNOWN"},
		{"clock skew", messages.KRBError{ErrorCode: 37}, 37, "KRB_AP_ERR_SKEW"},
		{"network", errors.New("failed to communicate with KDC"), 0, ""},
	} {
		res := failed(Result{SPN: "MSSQLSvc/x.corp.test:1433"}, c.err)
		if res.OK || res.Err == nil || res.ErrorCode != c.wantCode || res.ErrorName != c.wantName {
			t.Errorf("%s: got ok=%v code=%d name=%q err=%v; want code %d name %q", c.name, res.OK, res.ErrorCode, res.ErrorName, res.Err, c.wantCode, c.wantName)
		}
	}
}

func TestNewClientErrorsNameWhatFailed(t *testing.T) {
	dir := t.TempDir()
	conf := writeKrb5Conf(t, dir, "127.0.0.1:1")
	missing := filepath.Join(dir, "missing")
	for _, c := range []struct {
		name string
		k    config.Kerberos
		want string
	}{
		{"no principal", config.Kerberos{Krb5Config: conf}, "no principal"},
		{"no realm", config.Kerberos{Principal: "krbmon", Krb5Config: conf, Password: config.NewSecret("x")}, "no realm"},
		{"missing krb5.conf", config.Kerberos{Principal: "krbmon@CORP.TEST", Krb5Config: missing, Password: config.NewSecret("x")}, "krb5 configuration " + missing},
		{"missing keytab", config.Kerberos{Principal: "krbmon@CORP.TEST", Krb5Config: conf, KeytabFile: missing}, "keytab " + missing},
		{"missing ccache", config.Kerberos{Principal: "krbmon@CORP.TEST", Krb5Config: conf, CCacheFile: missing}, "credential cache " + missing},
		{"no credentials", config.Kerberos{Principal: "krbmon@CORP.TEST", Krb5Config: conf}, "needs keytab_file, ccache_file or password"},
	} {
		_, err := NewClient(&c.k)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: NewClient error = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestNewClientPasswordNeverInError(t *testing.T) {
	dir := t.TempDir()
	k := config.Kerberos{Principal: "krbmon", Krb5Config: filepath.Join(dir, "missing"), Password: config.NewSecret("S3cret-Value")}
	_, err := NewClient(&k)
	if err == nil || strings.Contains(err.Error(), "S3cret-Value") {
		t.Fatalf("NewClient error = %v; want an error without the password", err)
	}
}

func TestProbeAfterCloseFails(t *testing.T) {
	s := openPassword(t, writeKrb5Conf(t, t.TempDir(), "127.0.0.1:1"))
	s.Close()
	s.Close() // twice is harmless
	res := s.Probe(context.Background(), "MSSQLSvc/x.corp.test:1433")
	if res.OK || res.Err == nil || !strings.Contains(res.Err.Error(), "closed") {
		t.Fatalf("probe after Close = %+v, want a closed-session error", res)
	}
}

// A KDC port where nothing listens: the probe fails at once with a network
// error, no KRB-ERROR code.
func TestProbeNothingListening(t *testing.T) {
	addr := closedPort(t)
	s := openPassword(t, writeKrb5Conf(t, t.TempDir(), addr))
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	res := s.Probe(ctx, "MSSQLSvc/sqla.corp.test:1433")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("probe took %s, beyond its 5s deadline", took)
	}
	if res.OK || res.ErrorCode != 0 || res.Err == nil || !strings.Contains(res.Err.Error(), addr) {
		t.Fatalf("probe = %+v (err %v); want a failure naming %s and no KRB-ERROR code", res, res.Err, addr)
	}
	if res.Realm != "CORP.TEST" {
		t.Errorf("realm = %q, want CORP.TEST", res.Realm)
	}
}

// A KDC that accepts the connection and never answers: the probe returns
// when ctx ends, later probes of the session do not queue behind the hung
// call, and the hung call's goroutine ends after Close at gokrb5's own
// network deadline.
func TestProbeHungKDCReturnsAtDeadlineAndDoesNotLeak(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // hold it open, answer nothing
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
		for _, c := range held {
			c.Close()
		}
	}()
	// TCP only: a UDP retry to the same port would be refused at once.
	conf := writeKrb5ConfTCP(t, t.TempDir(), ln.Addr().String())
	before := runtime.NumGoroutine()

	s := openPassword(t, conf)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	first := s.Probe(ctx, "MSSQLSvc/sqla.corp.test:1433")
	second := s.Probe(ctx, "MSSQLSvc/sqlb.corp.test:1433")
	took := time.Since(start)
	s.Close()

	if took > 2*time.Second {
		t.Errorf("two probes against a hung KDC took %s with a 500ms deadline", took)
	}
	for _, res := range []Result{first, second} {
		if res.OK || res.Err == nil || !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Errorf("probe %s = %+v (err %v), want a deadline error", res.SPN, res, res.Err)
		}
	}
	// gokrb5 gives up on the hung connection after its 5s read deadline;
	// then the worker exits and destroys the client.
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines 15s after Close, %d before the session: the hung call leaked", n, before)
	}
}

func openPassword(t *testing.T, krb5Conf string) *Session {
	t.Helper()
	s, err := Open(&config.Kerberos{Principal: "nobody@CORP.TEST", Krb5Config: krb5Conf, Password: config.NewSecret("not-used")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func writeKrb5Conf(t *testing.T, dir, kdc string) string {
	return writeConf(t, dir, kdc, "")
}

func writeKrb5ConfTCP(t *testing.T, dir, kdc string) string {
	return writeConf(t, dir, kdc, "\tudp_preference_limit = 1\n")
}

func writeConf(t *testing.T, dir, kdc, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "krb5.conf")
	conf := "[libdefaults]\n\tdefault_realm = CORP.TEST\n\tdns_lookup_kdc = false\n" + extra +
		"[realms]\n\tCORP.TEST = {\n\t\tkdc = " + kdc + "\n\t}\n" +
		"[domain_realm]\n\t.corp.test = CORP.TEST\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestETypeNames(t *testing.T) {
	if got := ETypeName(18); got != "aes256-cts-hmac-sha1-96" {
		t.Errorf("ETypeName(18) = %q", got)
	}
	if got := ETypeName(99); got != "etype-99" {
		t.Errorf("ETypeName(99) = %q, want etype-99", got)
	}
	ids, err := ETypeIDs(nil)
	if err != nil || len(ids) != 3 || ids[0] != 18 || ids[1] != 17 || ids[2] != 23 {
		t.Errorf("default offer = %v, %v; want Windows' [18 17 23]", ids, err)
	}
	if _, err := ETypeIDs([]string{"des-cbc-md5"}); err == nil {
		t.Error("DES was accepted as an offered etype")
	}
}
