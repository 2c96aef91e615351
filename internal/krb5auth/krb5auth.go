// Package krb5auth is the Kerberos side of a SQL Server login from any OS: a
// go-mssqldb integrated-authentication provider, built on gokrb5, that asks
// the KDC for a ticket to exactly the SPN the connection names.
//
// go-mssqldb's own krb5 provider first rewrites the SPN's host with a CNAME
// lookup on the system resolver. The ticket asked for could then differ
// from the SPN the exporter reports (and from an explicit auth.server_spn),
// and every login waited on a DNS query outside the exporter's control: one
// lost query is a 5 s stall. Aliases are judged by the dns collector
// instead, against the DNS servers the configuration names.
package krb5auth

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jcmturner/gokrb5/v8/client"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/microsoft/go-mssqldb/integratedauth"
	"github.com/microsoft/go-mssqldb/msdsn"
)

// Name is the connection's "authenticator" parameter that selects this
// provider.
const Name = "krb5-exact-spn"

// Connection parameters, named as go-mssqldb's krb5 provider names them.
const (
	ParamConfigFile = "krb5-configfile"
	ParamKeytabFile = "krb5-keytabfile"
	ParamCCacheFile = "krb5-credcachefile"
	ParamRealm      = "krb5-realm"
)

// DefaultKrb5Config is read when neither the configuration nor KRB5_CONFIG
// names a krb5.conf, as MIT Kerberos does.
const DefaultKrb5Config = "/etc/krb5.conf"

// ErrSetup marks a login whose own settings are unusable (no SPN, user,
// realm or credentials; an unreadable krb5.conf, keytab or credential
// cache): the KDC was never asked.
var ErrSetup = errors.New("kerberos login settings")

func init() {
	if err := integratedauth.SetIntegratedAuthenticationProvider(Name, integratedauth.ProviderFunc(newAuthenticator)); err != nil {
		panic(err)
	}
}

func setupError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSetup, fmt.Sprintf(format, args...))
}

type authenticator struct {
	spn string
	cl  *client.Client
}

// newAuthenticator builds the gokrb5 client from the connection: the user
// (user or user@REALM) and cfg.Password, or a keytab, or a credential cache.
func newAuthenticator(cfg msdsn.Config) (integratedauth.IntegratedAuthenticator, error) {
	if cfg.ServerSPN == "" {
		return nil, setupError("no SPN to ask a ticket for")
	}
	user, realm := cfg.User, cfg.Parameters[ParamRealm]
	if name, r, ok := strings.Cut(user, "@"); ok {
		user = name
		if realm == "" {
			realm = r
		}
	}
	ccache := cfg.Parameters[ParamCCacheFile]
	if user == "" && ccache == "" {
		return nil, setupError("no user name")
	}
	conf, err := LoadConfig(cfg.Parameters[ParamConfigFile])
	if err != nil {
		return nil, err
	}
	if realm == "" {
		realm = conf.LibDefaults.DefaultRealm
	}
	if realm == "" && ccache == "" {
		return nil, setupError("no realm: set krb5-realm, user@REALM or default_realm in krb5.conf")
	}
	if conf.LibDefaults.DefaultRealm == "" {
		conf.LibDefaults.DefaultRealm = realm
	}
	// TCP to the KDC, as go-mssqldb's provider does: a ticket with a PAC
	// rarely fits a UDP datagram anyway.
	conf.LibDefaults.UDPPreferenceLimit = 1
	noFAST := client.DisablePAFXFAST(true)
	var cl *client.Client
	switch {
	case cfg.Password != "":
		cl = client.NewWithPassword(user, realm, cfg.Password, conf, noFAST)
	case cfg.Parameters[ParamKeytabFile] != "":
		path := cfg.Parameters[ParamKeytabFile]
		kt, err := keytab.Load(path)
		if err != nil {
			return nil, setupError("keytab %s: %v", path, err)
		}
		cl = client.NewWithKeytab(user, realm, kt, conf, noFAST)
	case ccache != "":
		cc, err := LoadCCache(ccache)
		if err != nil {
			return nil, err
		}
		if cl, err = client.NewFromCCache(cc, conf, noFAST); err != nil {
			return nil, setupError("credential cache %s: %v", ccache, err)
		}
	default:
		return nil, setupError("no password, keytab or credential cache for %s", cfg.User)
	}
	return &authenticator{spn: cfg.ServerSPN, cl: cl}, nil
}

// LoadConfig reads krb5.conf from path, or from KRB5_CONFIG, or from
// DefaultKrb5Config.
func LoadConfig(path string) (*krb5config.Config, error) {
	if path == "" {
		path = os.Getenv("KRB5_CONFIG")
	}
	if path == "" {
		path = DefaultKrb5Config
	}
	conf, err := krb5config.Load(path)
	// gokrb5 returns a usable configuration with UnsupportedDirective for
	// settings it ignores.
	if unsupported := (krb5config.UnsupportedDirective{}); err != nil && !errors.As(err, &unsupported) {
		return nil, setupError("krb5 configuration %s: %v", path, err)
	}
	return conf, nil
}

// LoadCCache reads a credential cache and keeps only its ticket-granting
// tickets: a service ticket cached there would be used instead of asking
// the KDC, which would hide an SPN removed since.
func LoadCCache(path string) (*credentials.CCache, error) {
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		return nil, setupError("credential cache %s: %v", path, err)
	}
	cc.Credentials = onlyTGTs(cc.Credentials)
	return cc, nil
}

func onlyTGTs(creds []*credentials.Credential) []*credentials.Credential {
	var out []*credentials.Credential
	for _, c := range creds {
		if names := c.Server.PrincipalName.NameString; len(names) > 0 && names[0] == "krbtgt" {
			out = append(out, c)
		}
	}
	return out
}

// InitialBytes logs in (AS exchange), gets a ticket for the SPN (TGS
// exchange) and returns the SPNEGO NegTokenInit carrying the AP-REQ. The
// gokrb5 errors are returned as they are: callers tell a KDC's refusal
// from a server's by their types.
func (a *authenticator) InitialBytes() ([]byte, error) {
	if err := a.cl.Login(); err != nil {
		return nil, err
	}
	tok, err := spnego.SPNEGOClient(a.cl, a.spn).InitSecContext()
	if err != nil {
		return nil, err
	}
	return tok.Marshal()
}

// NextBytes reads the server's SPNEGO answer. Nothing more is sent: the
// login asks for no mutual authentication.
func (a *authenticator) NextBytes(b []byte) ([]byte, error) {
	var resp spnego.SPNEGOToken
	if err := resp.Unmarshal(b); err != nil {
		return nil, err
	}
	if ok, status := resp.Verify(); !ok && status.Code != gssapi.StatusContinueNeeded {
		return nil, fmt.Errorf("the server's SPNEGO answer: %s", status.Message)
	}
	return nil, nil
}

// Free forgets the client's tickets.
func (a *authenticator) Free() { a.cl.Destroy() }
