package directory

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-ldap/ldap/v3/gssapi"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/kdc"
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
	cl, err := kdc.NewClient(krb)
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
