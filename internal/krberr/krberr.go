// Package krberr finds the KDC's KRB-ERROR code in an error returned by
// gokrb5 and explains it in terms a DBA can act on.
//
// gokrb5 returns the KDC's reply as a messages.KRBError value, but its client
// usually wraps that in a krberror.Krberror, which keeps only the text and has
// no Unwrap method. Code therefore uses errors.As first and falls back to the
// text gokrb5 formats: "KRB Error: (7) KDC_ERR_S_PRINCIPAL_UNKNOWN Server not
// found in Kerberos database", or "KRB Error: Unknown ErrorCode 99" for codes
// it has no name for.
package krberr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jcmturner/gokrb5/v8/messages"
)

// The text gokrb5's messages.KRBError.Error puts before the code.
const (
	errorMarker = "KRB Error: "
	unknownCode = "Unknown ErrorCode "
)

// The codes the exporter's judgement tells apart (RFC 4120 section 7.5.9).
// Every package names them from here; Name and Meaning explain any code.
const (
	CodePrincipalUnknown int32 = 7  // KDC_ERR_S_PRINCIPAL_UNKNOWN: no account holds the SPN
	CodeETypeNoSupp      int32 = 14 // KDC_ERR_ETYPE_NOSUPP: no key of a usable encryption type
	CodeSkew             int32 = 37 // KRB_AP_ERR_SKEW: clocks too far apart
)

// Code returns the KRB-ERROR code carried by err, if any. Wrapped errors
// (fmt.Errorf with %w, errors.Join) are searched. In text, only a number in
// the form gokrb5 prints after "KRB Error: " counts; other numbers, in
// parentheses or not, are ignored. The first such code wins.
func Code(err error) (code int32, ok bool) {
	if err == nil {
		return 0, false
	}
	var value messages.KRBError
	if errors.As(err, &value) {
		return value.ErrorCode, true
	}
	var ptr *messages.KRBError
	if errors.As(err, &ptr) && ptr != nil {
		return ptr.ErrorCode, true
	}
	return codeInText(err.Error())
}

// codeInText looks for "KRB Error: (N)" or "KRB Error: Unknown ErrorCode N".
func codeInText(s string) (int32, bool) {
	for {
		i := strings.Index(s, errorMarker)
		if i < 0 {
			return 0, false
		}
		s = s[i+len(errorMarker):]
		if rest, ok := strings.CutPrefix(s, "("); ok {
			if n, after, ok := leadingInt32(rest); ok && strings.HasPrefix(after, ")") {
				return n, true
			}
		} else if rest, ok := strings.CutPrefix(s, unknownCode); ok {
			if n, _, ok := leadingInt32(rest); ok {
				return n, true
			}
		}
	}
}

// leadingInt32 reads an optionally negative decimal int32 at the start of s
// and returns it with the rest of s. It fails on a digit run too long for
// int32 rather than reading part of it.
func leadingInt32(s string) (int32, string, bool) {
	end := 0
	if strings.HasPrefix(s, "-") {
		end = 1
	}
	start := end
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == start {
		return 0, s, false
	}
	n, err := strconv.ParseInt(s[:end], 10, 32)
	if err != nil {
		return 0, s, false
	}
	return int32(n), s[end:], true
}

// Name returns the RFC 4120 (section 7.5.9) name of a code, such as
// "KDC_ERR_S_PRINCIPAL_UNKNOWN", or "UNKNOWN_<code>" for codes it does not define.
func Name(code int32) string {
	if e, ok := codes[code]; ok {
		return e.name
	}
	return "UNKNOWN_" + strconv.FormatInt(int64(code), 10)
}

// Meaning explains a code in one line, with the usual cause in an Active
// Directory domain where one is known.
func Meaning(code int32) string {
	if e, ok := codes[code]; ok {
		return e.meaning
	}
	return fmt.Sprintf("Kerberos error code %d is not defined by RFC 4120", code)
}

type codeInfo struct {
	name    string
	meaning string
}

// codes is the RFC 4120 section 7.5.9 table. Codes 62-76 were reserved there
// for PKINIT (smart-card logon, RFC 4556) and never matter for SQL Server SPNs.
var codes = map[int32]codeInfo{
	0:  {"KDC_ERR_NONE", "no error"},
	1:  {"KDC_ERR_NAME_EXP", "the client account has expired (accountExpires in AD)"},
	2:  {"KDC_ERR_SERVICE_EXP", "the service account has expired (accountExpires in AD)"},
	3:  {"KDC_ERR_BAD_PVNO", "the request used a Kerberos protocol version the KDC does not support"},
	4:  {"KDC_ERR_C_OLD_MAST_KVNO", "the client's key is encrypted in an old master key of the KDC"},
	5:  {"KDC_ERR_S_OLD_MAST_KVNO", "the service's key is encrypted in an old master key of the KDC"},
	6:  {"KDC_ERR_C_PRINCIPAL_UNKNOWN", "the KDC has no account with this client name: a misspelt user, wrong realm, or deleted account"},
	7:  {"KDC_ERR_S_PRINCIPAL_UNKNOWN", "the KDC has no account with this SPN: clients fall back to NTLM"},
	8:  {"KDC_ERR_PRINCIPAL_NOT_UNIQUE", "more than one account has this SPN (a duplicate SPN): clients fall back to NTLM"},
	9:  {"KDC_ERR_NULL_KEY", "the client or service account has no key: reset its password"},
	10: {"KDC_ERR_CANNOT_POSTDATE", "the ticket may not be postdated"},
	11: {"KDC_ERR_NEVER_VALID", "the requested start time is after the end time: usually a clock difference"},
	12: {"KDC_ERR_POLICY", "a policy refused the request: logon hours, workstation restrictions, Protected Users or an authentication policy"},
	13: {"KDC_ERR_BADOPTION", "the KDC refused a requested option: for delegation, the service may not delegate to this SPN or the user is sensitive"},
	14: {"KDC_ERR_ETYPE_NOSUPP", "no encryption type both sides can use: check msDS-SupportedEncryptionTypes and whether the account has AES keys"},
	15: {"KDC_ERR_SUMTYPE_NOSUPP", "the KDC does not support the checksum type"},
	16: {"KDC_ERR_PADATA_TYPE_NOSUPP", "the KDC does not support the pre-authentication type"},
	17: {"KDC_ERR_TRTYPE_NOSUPP", "the KDC does not support the transited-realm encoding"},
	18: {"KDC_ERR_CLIENT_REVOKED", "the client account is disabled, locked out or expired"},
	19: {"KDC_ERR_SERVICE_REVOKED", "the service account is disabled, locked out or expired"},
	20: {"KDC_ERR_TGT_REVOKED", "the ticket-granting ticket was revoked: log on again"},
	21: {"KDC_ERR_CLIENT_NOTYET", "the client account is not valid yet"},
	22: {"KDC_ERR_SERVICE_NOTYET", "the service account is not valid yet"},
	23: {"KDC_ERR_KEY_EXPIRED", "the client's password has expired and must be changed"},
	24: {"KDC_ERR_PREAUTH_FAILED", "pre-authentication failed: wrong password or an out-of-date keytab"},
	25: {"KDC_ERR_PREAUTH_REQUIRED", "the KDC asks for pre-authentication: a normal first step, not a failure by itself"},
	26: {"KDC_ERR_SERVER_NOMATCH", "the requested service does not match the ticket"},
	27: {"KDC_ERR_MUST_USE_USER2USER", "the service accepts only user-to-user authentication"},
	28: {"KDC_ERR_PATH_NOT_ACCEPTED", "the KDC's policy rejects the chain of trusted realms"},
	29: {"KDC_ERR_SVC_UNAVAILABLE", "the KDC cannot serve the request now: overloaded, or cannot reach what it needs"},
	31: {"KRB_AP_ERR_BAD_INTEGRITY", "an integrity check failed on decryption: the two sides hold different keys"},
	32: {"KRB_AP_ERR_TKT_EXPIRED", "the ticket has expired: the client must get a new one"},
	33: {"KRB_AP_ERR_TKT_NYV", "the ticket is not valid yet: the clocks differ"},
	34: {"KRB_AP_ERR_REPEAT", "the service rejected the request as a replay of one it has seen"},
	35: {"KRB_AP_ERR_NOT_US", "the ticket is for another service"},
	36: {"KRB_AP_ERR_BADMATCH", "the ticket and the authenticator do not belong together"},
	37: {"KRB_AP_ERR_SKEW", "clocks differ by more than the allowed skew (5 minutes by default)"},
	38: {"KRB_AP_ERR_BADADDR", "the ticket's network address does not match the sender's"},
	39: {"KRB_AP_ERR_BADVERSION", "the Kerberos protocol versions do not match"},
	40: {"KRB_AP_ERR_MSG_TYPE", "the message type is not valid here"},
	41: {"KRB_AP_ERR_MODIFIED", "the service could not decrypt the ticket: the SPN is on a different account than the one the service runs as, or that account's password changed"},
	42: {"KRB_AP_ERR_BADORDER", "a message arrived out of order"},
	44: {"KRB_AP_ERR_BADKEYVER", "the service lacks the key version the ticket uses: an old keytab, or a password change not yet replicated"},
	45: {"KRB_AP_ERR_NOKEY", "the service has no key to decrypt the ticket"},
	46: {"KRB_AP_ERR_MUT_FAIL", "mutual authentication failed: the server could not prove who it is"},
	47: {"KRB_AP_ERR_BADDIRECTION", "a message went in the wrong direction"},
	48: {"KRB_AP_ERR_METHOD", "the service wants another authentication method"},
	49: {"KRB_AP_ERR_BADSEQ", "a message had the wrong sequence number"},
	50: {"KRB_AP_ERR_INAPP_CKSUM", "a message used an inappropriate checksum type"},
	51: {"KRB_AP_PATH_NOT_ACCEPTED", "the service's policy rejects the chain of trusted realms"},
	52: {"KRB_ERR_RESPONSE_TOO_BIG", "the reply is too big for UDP: the client should retry over TCP"},
	60: {"KRB_ERR_GENERIC", "a generic error: the KDC's error text says more"},
	61: {"KRB_ERR_FIELD_TOOLONG", "a field is too long for the KDC"},
	62: {"KDC_ERROR_CLIENT_NOT_TRUSTED", "smart-card logon: the client's certificate is not trusted"},
	63: {"KDC_ERROR_KDC_NOT_TRUSTED", "smart-card logon: the KDC's certificate is not trusted"},
	64: {"KDC_ERROR_INVALID_SIG", "smart-card logon: a signature is invalid"},
	65: {"KDC_ERR_KEY_TOO_WEAK", "smart-card logon: the key is too weak"},
	66: {"KDC_ERR_CERTIFICATE_MISMATCH", "smart-card logon: the certificates do not match"},
	67: {"KRB_AP_ERR_NO_TGT", "no ticket-granting ticket is available for user-to-user authentication"},
	68: {"KDC_ERR_WRONG_REALM", "the request went to the wrong realm: the KDC refers the client to another domain"},
	69: {"KRB_AP_ERR_USER_TO_USER_REQUIRED", "the service requires user-to-user authentication"},
	70: {"KDC_ERR_CANT_VERIFY_CERTIFICATE", "smart-card logon: the KDC cannot verify the certificate"},
	71: {"KDC_ERR_INVALID_CERTIFICATE", "smart-card logon: the certificate is invalid"},
	72: {"KDC_ERR_REVOKED_CERTIFICATE", "smart-card logon: the certificate is revoked"},
	73: {"KDC_ERR_REVOCATION_STATUS_UNKNOWN", "smart-card logon: the certificate's revocation status is unknown"},
	74: {"KDC_ERR_REVOCATION_STATUS_UNAVAILABLE", "smart-card logon: the certificate's revocation status cannot be checked"},
	75: {"KDC_ERR_CLIENT_NAME_MISMATCH", "smart-card logon: the certificate does not name this client"},
	76: {"KDC_ERR_KDC_NAME_MISMATCH", "smart-card logon: the KDC's certificate does not name this KDC"},
}
