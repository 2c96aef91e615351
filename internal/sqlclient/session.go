package sqlclient

import (
	"context"
	"database/sql"
	"errors"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// Session is one cycle's connection pool to one instance.
type Session struct {
	DB       *sql.DB
	Instance *config.SQLInstance
	// UsedNTLMFallback is set when no Kerberos ticket could be had and the
	// login used NTLM, as a Windows client's Negotiate would.
	UsedNTLMFallback bool
	KerberosError    string
}

// Connect opens and verifies a session to inst.
func Connect(ctx context.Context, inst *config.SQLInstance, krb *config.Kerberos) (*Session, error) {
	return nil, errors.New("not implemented")
}

// Close releases the session's connections.
func (s *Session) Close() error {
	if s == nil || s.DB == nil {
		return nil
	}
	return s.DB.Close()
}
