package sqlclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	mssql "github.com/microsoft/go-mssqldb"

	"github.com/kerberos-exporter/kerberos_exporter/internal/krb5auth"
)

// Causes of a failed login (facts.SQLInstance.Cause, metric label).
const (
	CauseLoginFailed = "login_failed"
	CauseNetwork     = "network"
	CauseTimeout     = "timeout"
	CauseTLS         = "tls"
	CauseKerberos    = "kerberos"
	CauseOther       = "other"
)

// Causes of a failed linked-server test (facts.LinkedServer.Cause).
const (
	CauseDelegation = "delegation"
	CauseNoMapping  = "no_mapping"
)

// ConnectError is why a session could not be opened.
type ConnectError struct {
	Instance string
	Addr     string // host:port dialled, "" before a port was known
	Method   string
	Cause    string
	Number   int32 // SQL Server error number, 0 when the server said nothing
	// KerberosError and KerberosErrorCode are set when the login fell back
	// to NTLM and that failed too.
	KerberosError     string
	KerberosErrorCode int32
	Err               error
}

func (e *ConnectError) Error() string {
	where := e.Instance
	if e.Addr != "" {
		where += " at " + e.Addr
	}
	msg := fmt.Sprintf("sql instance %s: %s login failed (%s): %v", where, e.Method, e.Cause, e.Err)
	if e.KerberosError != "" {
		msg += "; kerberos before the fallback: " + e.KerberosError
	}
	return msg
}

func (e *ConnectError) Unwrap() error { return e.Err }

// loginFailedNumbers are the server's refusals of a login.
var loginFailedNumbers = map[int32]bool{
	18456: true, // login failed
	18452: true, // login from an untrusted domain
	18470: true, // account disabled
	18486: true, // account locked out
	18487: true, // password expired
	18488: true, // password must be changed
}

// Classify names the cause of a connect failure and the SQL Server error
// number, if the server sent one.
func Classify(err error) (cause string, number int32) {
	var me mssql.Error
	if errors.As(err, &me) {
		n := serverError(me).Number
		if loginFailedNumbers[n] {
			return CauseLoginFailed, n
		}
		return CauseOther, n
	}
	var ne net.Error
	switch {
	case err == nil:
		return "", 0
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return CauseTimeout, 0
	case IsTicketError(err) || isKerberosSetupError(err):
		return CauseKerberos, 0
	case isTLSError(err):
		return CauseTLS, 0
	case errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return CauseNetwork, 0
	}
	return CauseOther, 0
}

// serverError is the server's original error: go-mssqldb prefixes a login
// error's Message with "login error: " and keeps the original in All.
func serverError(me mssql.Error) mssql.Error {
	if n := len(me.All); n > 0 {
		return me.All[n-1]
	}
	return me
}

// IsTicketError reports whether err is the Kerberos client failing to get
// or make a ticket (KDC error, KDC unreachable): the server was never asked.
func IsTicketError(err error) bool {
	var ke krberror.Krberror
	var kp *krberror.Krberror
	var kdc messages.KRBError
	return errors.As(err, &ke) || errors.As(err, &kp) || errors.As(err, &kdc)
}

// isKerberosSetupError: the Kerberos login could not start (no keytab,
// no krb5.conf, missing realm).
func isKerberosSetupError(err error) bool {
	return errors.Is(err, krb5auth.ErrSetup)
}

func isTLSError(err error) bool {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &rh) || errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return true
	}
	// go-mssqldb formats some handshake failures with %v, dropping the type.
	return strings.Contains(err.Error(), "TLS Handshake failed")
}

// permissionNumbers are errors that mean "you lack a grant".
var permissionNumbers = map[int32]bool{
	229:   true, // permission denied on object
	262:   true, // permission denied in database
	297:   true, // the user does not have permission to perform this action
	300:   true, // VIEW SERVER STATE permission was denied
	8189:  true, // you do not have permission to run this
	15003: true, // only members of the role can execute this procedure
	15247: true, // user does not have permission to perform this action
}

// IsPermissionDenied reports whether a query failed for lack of a grant.
func IsPermissionDenied(err error) bool {
	var me mssql.Error
	if !errors.As(err, &me) {
		return false
	}
	for _, e := range allErrors(me) {
		if permissionNumbers[e.Number] {
			return true
		}
	}
	return false
}

func allErrors(me mssql.Error) []mssql.Error {
	if len(me.All) > 0 {
		return me.All
	}
	return []mssql.Error{me}
}

// networkNumbers are client-library errors a linked server relays when it
// cannot reach the remote server.
var networkNumbers = map[int32]bool{
	2:     true, // the system cannot find the file specified (named pipes)
	53:    true, // could not open a connection / network path not found
	64:    true, // the specified network name is no longer available
	10054: true, // connection forcibly closed
	10060: true, // connection attempt timed out (no answer)
	10061: true, // connection refused
	11001: true, // no such host is known
}

// Linked-server errors for a missing login mapping: 7416 "no login-mapping
// exists"; 7437 "cannot be used under impersonation without a mapping".
var noMappingNumbers = map[int32]bool{7416: true, 7437: true}

// LinkedServerCause classifies a failed sp_testlinkedserver or hop query and
// picks the error number that tells why, among everything the server sent.
func LinkedServerCause(err error) (cause string, number int32, state uint8, msg string) {
	var me mssql.Error
	if !errors.As(err, &me) {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return CauseTimeout, 0, 0, err.Error()
		}
		return CauseOther, 0, 0, err.Error()
	}
	all := allErrors(me)
	find := func(match func(mssql.Error) bool) (mssql.Error, bool) {
		for _, e := range all {
			if match(e) {
				return e, true
			}
		}
		return mssql.Error{}, false
	}
	if e, ok := find(func(e mssql.Error) bool { return e.Number == 18456 }); ok {
		// The remote side saw no forwarded identity: delegation did not happen.
		if strings.Contains(e.Message, "ANONYMOUS LOGON") || strings.Contains(e.Message, "(null)") {
			return CauseDelegation, e.Number, e.State, e.Message
		}
		return CauseLoginFailed, e.Number, e.State, e.Message
	}
	if e, ok := find(func(e mssql.Error) bool { return noMappingNumbers[e.Number] }); ok {
		return CauseNoMapping, e.Number, e.State, e.Message
	}
	if e, ok := find(func(e mssql.Error) bool { return e.Number == 258 || strings.Contains(e.Message, "Timeout error") }); ok {
		return CauseTimeout, e.Number, e.State, e.Message
	}
	if e, ok := find(func(e mssql.Error) bool {
		return networkNumbers[e.Number] || (e.Number == 7303 && isNetworkMessage(e.Message))
	}); ok {
		return CauseNetwork, e.Number, e.State, e.Message
	}
	e := serverError(me)
	return CauseOther, e.Number, e.State, e.Message
}

// isNetworkMessage recognises the provider's words for an unreachable server
// in a 7303 "cannot initialize the data source object" error.
func isNetworkMessage(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"network", "tcp provider", "named pipes provider", "could not open a connection", "server is not found", "not accessible"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
