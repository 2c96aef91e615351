package tdsserver

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Authentication schemes as sys.dm_exec_connections.auth_scheme shows them.
const (
	schemeKerberos = "KERBEROS"
	schemeNTLM     = "NTLM"
	schemeSQL      = "SQL"
)

// anonymousLogon is who an NTLM AUTHENTICATE without a user name is.
const anonymousLogon = `NT AUTHORITY\ANONYMOUS LOGON`

// ---- Kerberos ----

// keytabCache loads the service keytab on first use and keeps it once
// loaded, so a stand-in started before the test world still picks it up.
type keytabCache struct {
	mu sync.Mutex
	kt *keytab.Keytab
}

func (c *keytabCache) get(path string) (*keytab.Keytab, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kt != nil {
		return c.kt, nil
	}
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, fmt.Errorf("service keytab: %w", err)
	}
	c.kt = kt
	return kt, nil
}

// maxClockSkew is how far a client's clock may be from ours, as on Windows.
const maxClockSkew = 5 * time.Minute

// replayCache remembers the authenticators a server has accepted, so that an
// AP-REQ sent twice is refused with KRB_AP_ERR_REPEAT as a real service
// refuses it. It keys on a hash of the encrypted authenticator, as MIT
// Kerberos does since 1.18, not on (client, time to the microsecond) as
// gokrb5's own cache does: gokrb5 clients do not make their timestamps
// unique, so two logins one process makes in the same microsecond (two
// collectors reaching one server at once) would look like a replay there.
type replayCache struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]time.Time // hash -> when it was accepted
}

// isReplay records cipher and says whether it had been seen within the
// clock-skew window; older entries are forgotten, since the skew check
// already refuses their authenticators.
func (c *replayCache) isReplay(cipher []byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[[sha256.Size]byte]time.Time)
	}
	for h, at := range c.seen {
		if now.Sub(at) > 2*maxClockSkew {
			delete(c.seen, h)
		}
	}
	h := sha256.Sum256(cipher)
	if _, ok := c.seen[h]; ok {
		return true
	}
	c.seen[h] = now
	return false
}

// spnegoAccepted is the final SPNEGO leg: NegTokenResp accept-completed for
// the Kerberos mechanism, without a response token (the driver does not ask
// for mutual authentication, and gokrb5 cannot verify an AP-REP anyway).
var spnegoAccepted = func() []byte {
	tok := spnego.SPNEGOToken{Resp: true, NegTokenResp: spnego.NegTokenResp{
		NegState:      0, // accept-completed
		SupportedMech: gssapi.OIDKRB5.OID(),
	}}
	b, err := tok.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}()

// acceptKerberos verifies a SPNEGO NegTokenInit carrying a Kerberos AP-REQ
// with the service keytab and returns the client principal as DOMAIN\user.
// Keys are looked up under the ticket's service name first, then under the
// service account, so keytabs exported either by SPN or by account work.
func acceptKerberos(token []byte, k *Kerberos, kts *keytabCache, replays *replayCache, domain string) (login string, err error) {
	defer func() {
		// gokrb5's ASN.1 decoding of hostile input must not take the server down.
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed Kerberos token: %v", r)
		}
	}()
	if k == nil {
		return "", errors.New("this server has no kerberos section")
	}
	kt, err := kts.get(k.Keytab)
	if err != nil {
		return "", err
	}
	var tok spnego.SPNEGOToken
	if err := tok.Unmarshal(token); err != nil {
		return "", err
	}
	if !tok.Init {
		return "", errors.New("SPNEGO token is not a NegTokenInit")
	}
	if !hasKerberosMech(tok.NegTokenInit) {
		return "", errors.New("SPNEGO offers no Kerberos mechanism (NTLM inside SPNEGO is not supported)")
	}
	var mt spnego.KRB5Token
	if err := mt.Unmarshal(tok.NegTokenInit.MechTokenBytes); err != nil {
		return "", err
	}
	if !mt.IsAPReq() {
		return "", errors.New("Kerberos token is not an AP-REQ")
	}
	apreq := &mt.APReq
	account, _ := types.ParseSPNString(k.Principal)
	var lastErr error
	for _, principal := range []*types.PrincipalName{nil, &account} {
		ok, err := apreq.Verify(kt, maxClockSkew, types.HostAddress{}, principal)
		if err == nil && ok {
			if replays.isReplay(apreq.EncryptedAuthenticator.Cipher, time.Now()) {
				return "", messages.NewKRBError(apreq.Ticket.SName, apreq.Ticket.Realm, errorcode.KRB_AP_ERR_REPEAT, "replay detected")
			}
			return domain + `\` + apreq.Authenticator.CName.PrincipalNameString(), nil
		}
		if err == nil {
			err = errors.New("AP-REQ not valid")
		}
		lastErr = err
	}
	return "", lastErr
}

func hasKerberosMech(n spnego.NegTokenInit) bool {
	for _, m := range n.MechTypes {
		if m.Equal(gssapi.OIDKRB5.OID()) || m.Equal(gssapi.OIDMSLegacyKRB5.OID()) {
			return len(n.MechTokenBytes) > 0
		}
	}
	return false
}

// ---- NTLM (MS-NLMP) ----
//
// The stand-in runs the NTLM message exchange to learn who the client claims
// to be; it does not verify the NTLM response (it has no password hashes).

var ntlmSignature = []byte("NTLMSSP\x00")

const (
	ntlmNegotiateUnicode  = 0x00000001
	ntlmRequestTarget     = 0x00000004
	ntlmNegotiateNTLM     = 0x00000200
	ntlmAlwaysSign        = 0x00008000
	ntlmTargetTypeDomain  = 0x00010000
	ntlmExtendedSecurity  = 0x00080000
	ntlmTargetInfo        = 0x00800000
	ntlmNegotiateVersion  = 0x02000000
	ntlmNegotiate128      = 0x20000000
	ntlmNegotiate56       = 0x80000000
	ntlmClientChoiceFlags = ntlmExtendedSecurity | ntlmNegotiate128 | ntlmNegotiate56
)

func isNTLM(b []byte) bool { return bytes.HasPrefix(b, ntlmSignature) }

func ntlmType(b []byte) uint32 {
	if len(b) < 12 || !isNTLM(b) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[8:12])
}

// ntlmChallenge builds a CHALLENGE message answering a NEGOTIATE message.
// dnsDomain may be empty.
func ntlmChallenge(negotiate []byte, domain, computer, dnsDomain string) ([]byte, error) {
	if ntlmType(negotiate) != 1 || len(negotiate) < 16 {
		return nil, errors.New("not an NTLM NEGOTIATE message")
	}
	clientFlags := binary.LittleEndian.Uint32(negotiate[12:16])
	flags := uint32(ntlmNegotiateUnicode|ntlmRequestTarget|ntlmNegotiateNTLM|ntlmAlwaysSign|
		ntlmTargetTypeDomain|ntlmTargetInfo|ntlmNegotiateVersion) | clientFlags&ntlmClientChoiceFlags

	target := stringToUCS2(strings.ToUpper(domain))
	var info []byte
	av := func(id uint16, val []byte) {
		info = binary.LittleEndian.AppendUint16(info, id)
		info = binary.LittleEndian.AppendUint16(info, uint16(len(val)))
		info = append(info, val...)
	}
	av(2, target)                                  // MsvAvNbDomainName
	av(1, stringToUCS2(strings.ToUpper(computer))) // MsvAvNbComputerName
	if dnsDomain != "" {
		av(4, stringToUCS2(strings.ToLower(dnsDomain))) // MsvAvDnsDomainName
		av(3, stringToUCS2(strings.ToLower(computer)+"."+strings.ToLower(dnsDomain)))
	}
	ft := uint64(time.Now().UnixNano()/100) + 116444736000000000 // FILETIME
	av(7, binary.LittleEndian.AppendUint64(nil, ft))             // MsvAvTimestamp
	av(0, nil)                                                   // MsvAvEOL

	const head = 56
	msg := make([]byte, head, head+len(target)+len(info))
	copy(msg, ntlmSignature)
	binary.LittleEndian.PutUint32(msg[8:], 2)
	putNTLMField(msg[12:], len(target), head)
	binary.LittleEndian.PutUint32(msg[20:], flags)
	if _, err := rand.Read(msg[24:32]); err != nil {
		return nil, err
	}
	putNTLMField(msg[40:], len(info), head+len(target))
	copy(msg[48:], []byte{10, 0, 0x7C, 0x4F, 0, 0, 0, 15}) // version 10.0.20348, NTLM revision 15
	msg = append(msg, target...)
	return append(msg, info...), nil
}

func putNTLMField(b []byte, n, off int) {
	binary.LittleEndian.PutUint16(b[0:], uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(off))
}

// ntlmIdentity reads domain, user and workstation from an AUTHENTICATE
// message. An empty user name is the anonymous logon.
func ntlmIdentity(msg []byte) (login, workstation string, err error) {
	if ntlmType(msg) != 3 || len(msg) < 64 {
		return "", "", errors.New("not an NTLM AUTHENTICATE message")
	}
	flags := binary.LittleEndian.Uint32(msg[60:64])
	field := func(at int) (string, error) {
		n := int(binary.LittleEndian.Uint16(msg[at:]))
		off := int(binary.LittleEndian.Uint32(msg[at+4:]))
		b, err := slice(msg, off, n)
		if err != nil {
			return "", err
		}
		if flags&ntlmNegotiateUnicode != 0 {
			return ucs2ToString(b), nil
		}
		return string(b), nil
	}
	domain, err1 := field(28)
	user, err2 := field(36)
	workstation, err3 := field(44)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", "", err
	}
	if user == "" {
		return anonymousLogon, workstation, nil
	}
	return strings.ToUpper(domain) + `\` + user, workstation, nil
}
