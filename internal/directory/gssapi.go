package directory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-ldap/ldap/v3/gssapi"
	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// gssapiBind binds with the exporter's own Kerberos identity (keytab,
// credential cache or password from the kerberos section) to the DC's
// ldap/<dnsHostName> SPN.
func (c *Conn) gssapiBind(ctx context.Context, krb *config.Kerberos) error {
	if krb == nil || krb.Principal == "" {
		return errors.New("gssapi bind needs the kerberos section's principal")
	}
	host, err := c.serverName(ctx)
	if err != nil {
		return fmt.Errorf("gssapi bind: %w", err)
	}
	cl, err := kerberosClient(krb)
	if err != nil {
		return fmt.Errorf("gssapi bind as %s: %w", krb.Principal, err)
	}
	defer cl.Destroy()

	// The KDC exchange inside the bind takes no context (gokrb5 bounds each
	// KDC request by itself); closing the connection on ctx's end aborts the
	// LDAP side, and the bind runs aside so that the caller never waits longer.
	done := make(chan error, 1)
	go func() {
		done <- c.ldap.GSSAPIBind(&gssapi.Client{Client: cl}, "ldap/"+host, "")
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		c.raw.Close()
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("gssapi bind as %s to ldap/%s: %w", krb.Principal, host, err)
	}
	return nil
}

// kerberosClient builds a gokrb5 client from the kerberos section.
func kerberosClient(krb *config.Kerberos) (*client.Client, error) {
	confPath := krb.Krb5Config
	if confPath == "" {
		confPath = os.Getenv("KRB5_CONFIG")
	}
	if confPath == "" {
		confPath = "/etc/krb5.conf"
	}
	conf, err := krbconfig.Load(confPath)
	if err != nil {
		return nil, fmt.Errorf("loading krb5 config %s: %w", confPath, err)
	}
	user, realm, _ := strings.Cut(krb.Principal, "@")
	if realm == "" {
		realm = krb.Realm
	}
	// Active Directory does not speak FAST the way gokrb5 expects.
	noFAST := client.DisablePAFXFAST(true)
	switch {
	case krb.KeytabFile != "":
		kt, err := keytab.Load(krb.KeytabFile)
		if err != nil {
			return nil, fmt.Errorf("loading keytab %s: %w", krb.KeytabFile, err)
		}
		return client.NewWithKeytab(user, realm, kt, conf, noFAST), nil
	case krb.CCacheFile != "":
		cc, err := credentials.LoadCCache(krb.CCacheFile)
		if err != nil {
			return nil, fmt.Errorf("loading credential cache %s: %w", krb.CCacheFile, err)
		}
		cl, err := client.NewFromCCache(cc, conf, noFAST)
		if err != nil {
			return nil, fmt.Errorf("credential cache %s: %w", krb.CCacheFile, err)
		}
		return cl, nil
	case krb.Password != nil:
		return client.NewWithPassword(user, realm, krb.Password.Value(), conf, noFAST), nil
	}
	return nil, errors.New("the kerberos section gives no keytab_file, ccache_file or password")
}
