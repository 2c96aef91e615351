package collector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/kdc"
	"github.com/kerberos-exporter/kerberos_exporter/internal/lookupcache"
)

// A reload that switches the exporter's credential must not be answered
// with tickets the old credential got: after a switch to a broken keytab,
// the SPN is reported as not checked (no session), not as a cached success.
func TestTicketCacheIsPerCredential(t *testing.T) {
	const spn = "MSSQLSvc/sql1.corp.example.com:1433"
	ttl := config.Duration(24 * time.Hour)
	cfgWith := func(k config.Kerberos) *config.Config {
		return &config.Config{Kerberos: k, Global: config.Global{KDCTicketCacheTTL: &ttl}}
	}
	dir := t.TempDir()
	krb5 := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(krb5, []byte("[libdefaults]\n default_realm = CORP.EXAMPLE.COM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := config.Kerberos{Principal: "krbmon@CORP.EXAMPLE.COM", Krb5Config: krb5, KeytabFile: filepath.Join(dir, "good.keytab")}
	caches := NewCaches()

	// The good credential's success, as an earlier cycle stored it.
	first := caches.Cycle(cfgWith(good))
	first.tickets.Get(context.Background(), first.ticketKey+"|"+spn, func(context.Context) (kdc.Result, lookupcache.Outcome) {
		return kdc.Result{SPN: spn, OK: true}, lookupcache.Success
	})
	first.Close()

	broken := good
	broken.KeytabFile = filepath.Join(dir, "no-such.keytab")
	l := caches.Cycle(cfgWith(broken))
	defer l.Close()
	results, err := l.Tickets(context.Background(), []string{spn})
	if err == nil || !strings.Contains(err.Error(), "no-such.keytab") {
		t.Errorf("session error %v, want the broken keytab's", err)
	}
	if r := results[0]; r.OK || r.Skipped == "" {
		t.Errorf("after switching to a broken keytab the SPN was reported %+v, want skipped, not the old credential's success", r)
	}
	if n := l.tickets.Stats().Cached; n != 0 {
		t.Errorf("%d answers from the old credential's cache, want 0", n)
	}
}

// Every part of the identity that changes what the KDC answers changes the
// key; the password enters only as a hash.
func TestIdentityKeyNamesTheCredentialSource(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "password")
	if err := os.WriteFile(secretFile, []byte("s3cret-one"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := config.Kerberos{Principal: "krbmon@CORP.EXAMPLE.COM", KeytabFile: "/etc/krbmon.keytab"}
	variants := map[string]config.Kerberos{"base": base}
	add := func(name string, change func(k *config.Kerberos)) {
		k := base
		change(&k)
		variants[name] = k
	}
	add("principal", func(k *config.Kerberos) { k.Principal = "other@CORP.EXAMPLE.COM" })
	add("keytab", func(k *config.Kerberos) { k.KeytabFile = "/etc/other.keytab" })
	add("ccache", func(k *config.Kerberos) { k.KeytabFile, k.CCacheFile = "", "/tmp/krb5cc_1" })
	add("password one", func(k *config.Kerberos) { k.KeytabFile, k.Password = "", config.NewSecret("s3cret-one") })
	add("password two", func(k *config.Kerberos) { k.KeytabFile, k.Password = "", config.NewSecret("s3cret-two") })
	add("etypes", func(k *config.Kerberos) { k.OfferedETypes = []string{"aes256-cts-hmac-sha1-96"} })
	seen := map[string]string{}
	for name, k := range variants {
		key := identityKey(&k)
		if other, dup := seen[key]; dup {
			t.Errorf("%s and %s share the key %q", name, other, key)
		}
		seen[key] = name
		if strings.Contains(key, "s3cret") {
			t.Errorf("%s: key %q holds the password", name, key)
		}
	}
}
