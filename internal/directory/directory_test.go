package directory

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

func TestParseGeneralizedTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"20241122035400.0Z": time.Date(2024, 11, 22, 3, 54, 0, 0, time.UTC),
		"20241122035400Z":   time.Date(2024, 11, 22, 3, 54, 0, 0, time.UTC),
	} {
		got, err := parseGeneralizedTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseGeneralizedTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseGeneralizedTime("yesterday"); err == nil {
		t.Error("parseGeneralizedTime(yesterday) succeeded")
	}
}

func TestDomainOf(t *testing.T) {
	for dn, want := range map[string]string{
		"CN=sqlsvc_a,CN=Users,DC=corp,DC=test":        "DC=corp,DC=test",
		"CN=SQLE,OU=Servers,DC=child,DC=corp,DC=test": "DC=child,DC=corp,DC=test",
		"cn=x,dc=Corp,dc=Test":                        "DC=Corp,DC=Test",
		"CN=Configuration,DC=corp,DC=test":            "DC=corp,DC=test",
		"CN=nodomain":                                 "",
		"not a dn":                                    "",
	} {
		if got := domainOf(dn); got != want {
			t.Errorf("domainOf(%q) = %q, want %q", dn, got, want)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	conf, err := tlsConfig(config.LDAPTLS{}, "dc1.corp.test")
	if err != nil || conf.InsecureSkipVerify || conf.ServerName != "dc1.corp.test" || conf.RootCAs != nil {
		t.Errorf("default: %+v, %v; want verification against system roots for dc1.corp.test", conf, err)
	}
	conf, _ = tlsConfig(config.LDAPTLS{ServerName: "dc1.corp.test"}, "127.0.0.1")
	if conf.ServerName != "dc1.corp.test" {
		t.Errorf("server_name not used: %q", conf.ServerName)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsConfig(config.LDAPTLS{CAFile: notPEM}, "h"); err == nil || !strings.Contains(err.Error(), notPEM) {
		t.Errorf("a CA file without PEM: err = %v, want one naming the file", err)
	}
}

// stallingServer accepts TCP connections and never answers, like a hung DC.
func stallingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestDialTimesOutOnAStalledServer(t *testing.T) {
	addr := stallingServer(t)
	for _, tt := range []struct {
		name string
		url  string
		tls  config.LDAPTLS
	}{
		{"ldaps handshake", "ldaps://" + addr, config.LDAPTLS{}},
		{"StartTLS", "ldap://" + addr, config.LDAPTLS{StartTLS: true}},
		{"simple bind", "ldap://" + addr, config.LDAPTLS{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := config.Domain{Name: "corp.test", BaseDN: "DC=corp,DC=test", DomainControllers: []string{tt.url}, TLS: tt.tls,
				Bind:    config.Bind{Method: "simple", Username: "u", Password: config.NewSecret("Secret-Do-Not-Log")},
				Timeout: config.Duration(300 * time.Millisecond)}
			start := time.Now()
			_, err := Dial(context.Background(), d, nil)
			if took := time.Since(start); err == nil || took > 3*time.Second {
				t.Fatalf("Dial = %v after %v; want an error within the 300ms timeout", err, took)
			}
			if !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "Secret-Do-Not-Log") {
				t.Errorf("error %q should name the server and never the password", err)
			}
		})
	}
}

func TestDialHonoursCancellation(t *testing.T) {
	addr := stallingServer(t)
	d := config.Domain{Name: "corp.test", DomainControllers: []string{"ldap://" + addr, "ldap://" + addr},
		Bind: config.Bind{Method: "simple", Username: "u", Password: config.NewSecret("p")}, Timeout: config.Duration(time.Minute)}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, d, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("Dial = %v after %v; want context.DeadlineExceeded soon after 200ms", err, time.Since(start))
	}
}

func TestDialGlobalCatalogPorts(t *testing.T) {
	for _, tt := range []struct {
		scheme string
		global bool
		want   string
	}{{"ldap", false, "389"}, {"ldaps", false, "636"}, {"ldap", true, "3268"}, {"ldaps", true, "3269"}} {
		if got := defaultPort(tt.scheme, tt.global); got != tt.want {
			t.Errorf("defaultPort(%s, global=%v) = %s, want %s", tt.scheme, tt.global, got, tt.want)
		}
	}
}

func TestFileTime(t *testing.T) {
	if got := fileTime(127490112000000000); !got.Equal(time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("fileTime(2005-01-01) = %v", got)
	}
	if !fileTime(0).IsZero() || !fileTime(1<<63-1).IsZero() {
		t.Error("pwdLastSet 0 (must change) and never are not the zero time")
	}
}

// TestNestedSearchGuard: a search started from a search callback on the same
// connection fails at once (before anything is sent: the Conn here has no
// LDAP connection at all), while another goroutine may still search it.
func TestNestedSearchGuard(t *testing.T) {
	c := &Conn{url: "ldap://nowhere"}
	ctx := context.Background()
	entries := []*ldap.Entry{{DN: "CN=a"}, {DN: "CN=b"}}
	calls := 0
	err := c.runCallbacks(entries, func(*ldap.Entry) error {
		calls++
		if err := c.startSearch(); !errors.Is(err, errNestedSearch) {
			t.Errorf("startSearch inside a callback = %v, want errNestedSearch", err)
		}
		if _, err := c.base(ctx, "CN=x", "(objectClass=*)", nil); !errors.Is(err, errNestedSearch) {
			t.Errorf("a base read inside a callback = %v, want errNestedSearch", err)
		}
		other := make(chan error)
		go func() { other <- c.startSearch() }()
		if err := <-other; err != nil {
			t.Errorf("another goroutine may search while a callback runs: %v", err)
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("runCallbacks = %v after %d calls, want nil after 2", err, calls)
	}
	if err := c.startSearch(); err != nil {
		t.Errorf("after the callbacks, a search may start: %v", err)
	}
	if len(c.inCallback) != 0 {
		t.Errorf("callback marks left behind: %v", c.inCallback)
	}
	stop := errors.New("stop")
	if err := c.runCallbacks(entries, func(*ldap.Entry) error { return stop }); !errors.Is(err, stop) || len(c.inCallback) != 0 {
		t.Errorf("a callback's error must be returned and the mark removed: %v, %v", err, c.inCallback)
	}
}

func TestGoroutineID(t *testing.T) {
	here := goroutineID()
	there := make(chan uint64)
	go func() { there <- goroutineID() }()
	if other := <-there; here == 0 || other == 0 || here == other || goroutineID() != here {
		t.Errorf("goroutine IDs: here %d (again %d), another goroutine %d", here, goroutineID(), other)
	}
}
