//go:build !windows

package sqlclient

import (
	"errors"

	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

func setWindows(*msdsn.Config, *config.SQLAuth) error {
	return errors.New("auth method windows (SSPI) needs the Windows build of the exporter; on this OS use kerberos (keytab, ccache or password) or ntlm")
}
