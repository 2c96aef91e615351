// Package kdc is the exporter's own Kerberos client: it asks the KDC for
// service tickets with the identity of the configuration's kerberos
// section, to see whether a client could get a ticket for an SPN, and if
// not, which KRB-ERROR the KDC answered.
//
// gokrb5 has no context support and keeps tickets in its client. A Session
// therefore lives for one collection cycle: each of its workers logs in
// once, serves its probes of the cycle from that TGT, and is thrown away
// with its tickets, so that no ticket outlives the cycle. (The collector
// keeps each SPN's outcome for global.kdc_ticket_cache_ttl: that, not a
// gokrb5 ticket, is when a removed SPN shows.)
package kdc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krb5auth"
	"github.com/kerberos-exporter/kerberos_exporter/internal/krberr"
)

// Result is the outcome of one service-ticket request.
type Result struct {
	SPN string
	// Realm is the realm whose KDC was asked.
	Realm string
	OK    bool
	// ErrorCode is the KRB-ERROR code the KDC answered (7 principal
	// unknown, 37 clock skew, ...); 0 on success and when the failure was
	// not a KRB-ERROR (network, timeout, configuration).
	ErrorCode int32
	// ErrorName is the code's name, e.g. KDC_ERR_S_PRINCIPAL_UNKNOWN.
	ErrorName string
	// Err says what failed; nil on success.
	Err error
	// TicketEType is the encryption type of the service ticket, the one the
	// KDC chose from the service account's keys (aes256-cts-hmac-sha1-96,
	// rc4-hmac, ...), and SessionKeyEType that of the session key, chosen
	// from what the client offered; both "" unless OK.
	TicketEType     string
	SessionKeyEType string
	// Skipped says why the request was not asked or its answer not awaited
	// (the caller's context ended: "deadline" or "canceled"); the outcome
	// is then unknown, and Err says so.
	Skipped string
}

// NewClient builds a gokrb5 client, not yet logged in, from the kerberos
// section: principal user@REALM (or user and realm), krb5_config, and one
// of keytab_file, ccache_file or password. Service tickets found in a
// credential cache are dropped, so that only the KDC answers for SPNs.
func NewClient(k *config.Kerberos) (*client.Client, error) {
	if k.Principal == "" {
		return nil, errors.New("kerberos: no principal configured")
	}
	user, realm := splitPrincipal(k.Principal, k.Realm)
	if realm == "" {
		return nil, fmt.Errorf("kerberos: principal %q has no realm and kerberos.realm is empty", k.Principal)
	}
	conf, err := krb5auth.LoadConfig(k.Krb5Config)
	if err != nil {
		return nil, fmt.Errorf("kerberos: %w", err)
	}
	// Tickets are asked for in a realm the client does not name, so it must
	// know the client realm even if krb5.conf has no default_realm.
	if conf.LibDefaults.DefaultRealm == "" {
		conf.LibDefaults.DefaultRealm = realm
	}
	// Service tickets are asked for with the encryption types a Windows
	// client offers, in its order, so that the ticket is the one users get.
	offered, err := ETypeIDs(k.OfferedETypes)
	if err != nil {
		return nil, err
	}
	conf.LibDefaults.DefaultTGSEnctypes = k.Offered()
	conf.LibDefaults.DefaultTGSEnctypeIDs = offered
	// PA-FX-FAST is not understood by every KDC and adds nothing here.
	disableFAST := client.DisablePAFXFAST(true)
	switch {
	case k.KeytabFile != "":
		kt, err := keytab.Load(k.KeytabFile)
		if err != nil {
			return nil, fmt.Errorf("kerberos: loading keytab %s: %w", k.KeytabFile, err)
		}
		return client.NewWithKeytab(user, realm, kt, conf, disableFAST), nil
	case k.CCacheFile != "":
		cc, err := krb5auth.LoadCCache(k.CCacheFile)
		if err != nil {
			return nil, fmt.Errorf("kerberos: %w", err)
		}
		cl, err := client.NewFromCCache(cc, conf, disableFAST)
		if err != nil {
			return nil, fmt.Errorf("kerberos: credential cache %s: %w", k.CCacheFile, err)
		}
		return cl, nil
	case k.Password != nil:
		return client.NewWithPassword(user, realm, k.Password.Value(), conf, disableFAST), nil
	}
	return nil, errors.New("kerberos: principal needs keytab_file, ccache_file or password")
}

// splitPrincipal splits user@REALM; without @REALM the realm is defaultRealm.
func splitPrincipal(principal, defaultRealm string) (user, realm string) {
	if i := strings.LastIndex(principal, "@"); i >= 0 {
		return principal[:i], principal[i+1:]
	}
	return principal, defaultRealm
}

// Session is one cycle's Kerberos client. Each of its workers owns a
// gokrb5 client and runs its blocking calls one at a time, so that a KDC
// that hangs holds at most one call per worker; that call ends at gokrb5's
// own network deadlines (5 s per KDC and transport) even when nobody waits
// for it any more.
type Session struct {
	requests  chan request
	quit      chan struct{}
	closeOnce sync.Once
}

type request struct {
	spn   string
	reply chan Result // buffered: the worker never blocks on a caller that gave up
}

// Open builds the clients for one cycle and starts workers of them (at
// least one), each of which logs in at its first probe: workers bounds the
// ticket requests in flight, and costs one login each. It does not contact
// the KDC.
func Open(k *config.Kerberos, workers int) (*Session, error) {
	s := &Session{requests: make(chan request), quit: make(chan struct{})}
	for range max(1, workers) {
		cl, err := NewClient(k)
		if err != nil {
			s.Close()
			return nil, err
		}
		go s.serve(cl)
	}
	return s, nil
}

// serve runs requests until Close. Logging in once and remembering a
// failed login keeps a worker at one AS exchange per cycle.
func (s *Session) serve(cl *client.Client) {
	// Destroy stops gokrb5's TGT auto-renewal goroutine, which would
	// otherwise outlive the session by hours.
	defer cl.Destroy()
	var loginErr error
	loggedIn := false
	for {
		select {
		case <-s.quit:
			return
		case req := <-s.requests:
			if !loggedIn {
				loginErr = cl.Login()
				loggedIn = true
				if loginErr != nil {
					loginErr = fmt.Errorf("login as %s@%s: %w", cl.Credentials.UserName(), cl.Credentials.Realm(), loginErr)
				}
			}
			req.reply <- probe(cl, req.spn, loginErr)
		}
	}
}

func probe(cl *client.Client, spn string, loginErr error) Result {
	res := Result{SPN: spn, Realm: spnRealm(cl, spn)}
	err := loginErr
	if err == nil {
		var tkt messages.Ticket
		var key types.EncryptionKey
		tkt, key, err = cl.GetServiceTicket(spn)
		if err != nil {
			err = fmt.Errorf("service ticket for %s: %w", spn, err)
		} else {
			res.TicketEType = ETypeName(tkt.EncPart.EType)
			res.SessionKeyEType = ETypeName(key.KeyType)
		}
	}
	if err != nil {
		return failed(res, err)
	}
	res.OK = true
	return res
}

// spnRealm is the realm gokrb5 asks for spn: the domain_realm mapping of
// its last component, else the client's realm.
func spnRealm(cl *client.Client, spn string) string {
	parts := strings.Split(spn, "/")
	if r := cl.Config.ResolveRealm(parts[len(parts)-1]); r != "" {
		return r
	}
	return cl.Credentials.Realm()
}

func failed(res Result, err error) Result {
	res.Err = err
	if code, ok := krberr.Code(err); ok {
		res.ErrorCode = code
		res.ErrorName = krberr.Name(code)
	}
	return res
}

// Probe asks the KDC for a service ticket for spn, logging in first if this
// is the session's first probe. It returns when the answer comes or ctx
// ends, whichever is first.
func (s *Session) Probe(ctx context.Context, spn string) Result {
	notAsked := func(why string) Result {
		return Result{SPN: spn, Skipped: skipReason(ctx.Err()), Err: fmt.Errorf("service ticket for %s: %s: %w", spn, why, context.Cause(ctx))}
	}
	if ctx.Err() != nil {
		return notAsked("not asked")
	}
	req := request{spn: spn, reply: make(chan Result, 1)}
	select {
	case s.requests <- req:
	case <-ctx.Done():
		return notAsked("not asked")
	case <-s.quit:
		return Result{SPN: spn, Skipped: "canceled", Err: fmt.Errorf("service ticket for %s: kerberos session closed", spn)}
	}
	select {
	case res := <-req.reply:
		return res
	case <-ctx.Done():
		// The caller's deadline, not the KDC's silence: gokrb5's own
		// network deadlines would have answered with an error.
		return notAsked("no answer from the KDC in time")
	}
}

// skipReason is "deadline" for a context that timed out, else "canceled"
// (the values of facts.HostDNS.Skipped and its kin).
func skipReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "deadline"
	}
	return "canceled"
}

// Close ends the session: its worker exits, and drops its tickets, as soon
// as the call in flight, if any, returns. Probes after Close fail.
func (s *Session) Close() {
	s.closeOnce.Do(func() { close(s.quit) })
}
