// Package directory is the exporter's Active Directory client: it connects
// to a domain's controllers over LDAP (LDAPS or StartTLS, simple or GSSAPI
// bind) and answers the questions the collectors ask: who holds an SPN, how is
// an account set up for delegation, is a user in Protected Users, what time
// does a DC think it is.
//
// # Rights
//
// An ordinary domain user (Domain Users, no delegated rights) can read
// everything the exporter asks for on a default Active Directory:
// sAMAccountName, objectClass, objectSid, userAccountControl,
// msDS-User-Account-Control-Computed, lockoutTime, servicePrincipalName,
// msDS-AllowedToDelegateTo, msDS-SupportedEncryptionTypes, memberOf, the
// rootDSE (currentTime, tokenGroups) and the partitions container.
//
// msDS-AllowedToActOnBehalfOfOtherIdentity (resource-based constrained
// delegation) belongs to the Account Restrictions property set, which
// hardened domains may hide from ordinary users, and it is not in the Global
// Catalog: it is read from a DC of the account's own domain. LDAP does not
// say when it withholds an attribute, it just leaves it out, so an absent
// value is only taken to mean "not set" when the account's DACL (read with
// the SD flags control, which needs no privilege) grants this connection's
// identity the right to read it; otherwise the answer is "unknown". Grant
// the exporter's account "Read Account Restrictions" (or read on that
// attribute) on the service accounts if the exporter reports it unknown.
//
// Forest-wide SPN questions are asked of a Global Catalog, which holds
// servicePrincipalName, sAMAccountName and objectSid of every account in the
// forest.
package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// Conn is a bound connection to one domain controller or Global Catalog.
// Its methods may be called concurrently. It is closed when the context it
// was dialled with ends, or by Close.
type Conn struct {
	ldap    *ldap.Conn
	raw     net.Conn // the TCP connection under TLS: closing it aborts whatever is in flight
	url     string
	host    string // the DC's DNS name (or address) as used for TLS and the ldap/ SPN
	domain  config.Domain
	global  bool
	baseDN  string // where searches start: the domain partition, or "" (the whole forest) on a GC
	timeout time.Duration
	stop    func() bool // unregisters the close-on-cancel hook

	mu        sync.Mutex
	root      *rootDSE
	netbios   map[string]string // partition DN (upper case) -> NetBIOS domain name
	domainSID string            // the domain partition's objectSid, string form
	token     map[string]bool   // SIDs (string form) of this connection's identity

	// inCallback counts, per goroutine, the search callbacks of this
	// connection it is running: the nested-search guard (search.go).
	inCallback map[uint64]int
}

// URL is the address of the server this connection talks to.
func (c *Conn) URL() string { return c.url }

// Global reports whether searches cover the whole forest (a Global Catalog).
func (c *Conn) Global() bool { return c.global }

// Domain is the configured domain this connection belongs to.
func (c *Conn) Domain() config.Domain { return c.domain }

// Close ends the connection.
func (c *Conn) Close() error {
	c.stop()
	return c.ldap.Close()
}

// Dial connects and binds to the first of the domain's controllers that
// answers, in the configured order. Each attempt is bounded by the domain's
// timeout, so a dead DC costs at most that before the next is tried.
func Dial(ctx context.Context, d config.Domain, krb *config.Kerberos) (*Conn, error) {
	return dialFirst(ctx, d, krb, d.DomainControllers, false)
}

// DialGlobalCatalog connects and binds to the first of the domain's Global
// Catalogs that answers, for forest-wide searches. When none is configured it
// falls back to the domain's controllers, whose searches then cover the
// domain partition only (Global reports false), and logs that at debug level.
func DialGlobalCatalog(ctx context.Context, d config.Domain, krb *config.Kerberos, logger *slog.Logger) (*Conn, error) {
	if len(d.GlobalCatalogs) == 0 {
		logger.Debug("no global_catalogs configured: SPN searches cover this domain only, not the forest", "domain", d.Name)
		return Dial(ctx, d, krb)
	}
	return dialFirst(ctx, d, krb, d.GlobalCatalogs, true)
}

// DialUnbound connects to one server without binding: enough to read the
// rootDSE, which Active Directory serves to anyone. The clock collector uses
// it so that a DC counts as up when it answers LDAP, whatever the exporter's
// credentials.
func DialUnbound(ctx context.Context, rawURL string, d config.Domain) (*Conn, error) {
	return dialOne(ctx, rawURL, d, nil, false, false)
}

func dialFirst(ctx context.Context, d config.Domain, krb *config.Kerberos, urls []string, global bool) (*Conn, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("domain %s: no LDAP server configured", d.Name)
	}
	var errs []error
	for _, u := range urls {
		c, err := dialOne(ctx, u, d, krb, global, true)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if contextDone(ctx) != nil {
			break
		}
	}
	return nil, fmt.Errorf("domain %s: no LDAP server answered: %w", d.Name, errors.Join(errs...))
}

func dialOne(ctx context.Context, rawURL string, d config.Domain, krb *config.Kerberos, global, bind bool) (_ *Conn, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("%s: not an ldap:// or ldaps:// URL", rawURL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = defaultPort(u.Scheme, global)
	}
	timeout := d.Timeout.Duration()
	if timeout <= 0 {
		timeout = config.DefaultLDAPTimeout
	}
	tlsConf, err := tlsConfig(d.TLS, host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rawURL, err)
	}

	setupCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dialer := &net.Dialer{}
	raw, err := dialer.DialContext(setupCtx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rawURL, err)
	}
	// The handshake and the bind have no context of their own: a deadline
	// bounds them, and is lifted once the connection is set up.
	if dl, ok := setupCtx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	stopSetup := context.AfterFunc(setupCtx, func() { raw.Close() })
	defer stopSetup()

	nc := raw
	if u.Scheme == "ldaps" {
		tc := tls.Client(raw, tlsConf)
		if err := tc.HandshakeContext(setupCtx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("%s: TLS: %w", rawURL, err)
		}
		nc = tc
	}
	lc := ldap.NewConn(nc, u.Scheme == "ldaps")
	lc.Start()
	lc.SetTimeout(timeout)
	c := &Conn{ldap: lc, raw: raw, url: rawURL, host: host, domain: d, global: global, timeout: timeout}
	c.baseDN = d.BaseDN
	if global {
		c.baseDN = ""
	}
	defer func() {
		if err != nil {
			lc.Close()
		}
	}()

	if u.Scheme == "ldap" && d.TLS.StartTLS {
		if err := lc.StartTLS(tlsConf); err != nil {
			return nil, fmt.Errorf("%s: StartTLS: %w", rawURL, contextError(setupCtx, err))
		}
	}
	if bind {
		if err := c.bind(setupCtx, krb); err != nil {
			return nil, fmt.Errorf("%s: %w", rawURL, contextError(setupCtx, err))
		}
	}
	if !stopSetup() && setupCtx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", rawURL, setupCtx.Err())
	}
	_ = raw.SetDeadline(time.Time{})
	// From now on the caller's context governs the connection's life.
	c.stop = context.AfterFunc(ctx, func() { raw.Close() })
	return c, nil
}

func defaultPort(scheme string, global bool) string {
	switch {
	case scheme == "ldaps" && global:
		return "3269"
	case scheme == "ldaps":
		return "636"
	case global:
		return "3268"
	}
	return "389"
}

// tlsConfig verifies the server's certificate against the system roots or
// the configured CA file, unless insecure_skip_verify says otherwise.
func tlsConfig(t config.LDAPTLS, host string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.ServerName != "" {
		conf.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// contextError prefers the context's reason to the broken-connection error
// that closing the connection on cancellation produces.
func contextError(ctx context.Context, err error) error {
	if done := contextDone(ctx); done != nil {
		return fmt.Errorf("%w (%v)", done, err)
	}
	return err
}

// contextDone is ctx.Err(), except that a deadline already passed counts as
// exceeded even before the context's own timer has fired: the connection's
// deadline is set to the same instant and often trips first.
func contextDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *Conn) bind(ctx context.Context, krb *config.Kerberos) error {
	switch c.domain.Bind.Method {
	case "", "simple":
		if _, err := c.ldap.SimpleBind(ldap.NewSimpleBindRequest(c.domain.Bind.Username, c.domain.Bind.Password.Value(), nil)); err != nil {
			return fmt.Errorf("simple bind as %s: %w", c.domain.Bind.Username, err)
		}
		return nil
	case "gssapi":
		return c.gssapiBind(ctx, krb)
	}
	return fmt.Errorf("unknown bind method %q", c.domain.Bind.Method)
}

// serverName is the DC's DNS name for its ldap/ SPN: the URL's host, unless
// that is an address, then the DC's own dnsHostName from the rootDSE.
func (c *Conn) serverName(ctx context.Context) (string, error) {
	if c.domain.TLS.ServerName != "" {
		return c.domain.TLS.ServerName, nil
	}
	if net.ParseIP(c.host) == nil {
		return c.host, nil
	}
	root, err := c.rootDSE(ctx)
	if err != nil {
		return "", err
	}
	if root.dnsHostName == "" {
		return "", fmt.Errorf("the rootDSE of %s has no dnsHostName to build the ldap/ SPN from; set tls.server_name", c.host)
	}
	return root.dnsHostName, nil
}

// searchTimeLimit is the server-side time limit of a search, in whole seconds.
func (c *Conn) searchTimeLimit() int {
	return max(1, int(c.timeout/time.Second))
}

// upper is strings.ToUpper, named for what it is used for: case-insensitive
// keys for distinguished names.
func upper(s string) string { return strings.ToUpper(s) }
