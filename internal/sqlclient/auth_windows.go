//go:build windows

package sqlclient

import (
	"github.com/microsoft/go-mssqldb/msdsn"
	// SSPI: Negotiate with the service's own logon (or the configured
	// account), so Windows itself picks Kerberos or falls back to NTLM.
	_ "github.com/microsoft/go-mssqldb/integratedauth/winsspi"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

func setWindows(cfg *msdsn.Config, a *config.SQLAuth) error {
	cfg.Parameters["authenticator"] = "winsspi"
	if a.Username != "" {
		cfg.User = ntlmUser(a.Username, "")
		cfg.Password = a.Password.Value()
	}
	return nil
}
