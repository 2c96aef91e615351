package directory

import (
	"context"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// MSSQLSvcSPNs returns every MSSQLSvc/ SPN held by an account under base
// (the connection's base DN when empty), read page by page. The callback
// only collects: nothing is searched while the stream is open.
func (c *Conn) MSSQLSvcSPNs(ctx context.Context, base string) ([]string, error) {
	if base == "" {
		base = c.baseDN
	}
	var out []string
	err := c.forEach(ctx, base, "(servicePrincipalName=MSSQLSvc/*)", []string{"servicePrincipalName"}, nil,
		func(e *ldap.Entry) error {
			for _, s := range e.GetAttributeValues("servicePrincipalName") {
				if len(s) > len("MSSQLSvc/") && strings.EqualFold(s[:len("MSSQLSvc/")], "MSSQLSvc/") {
					out = append(out, s)
				}
			}
			return nil
		})
	return out, err
}
