package tdsserver

import (
	"github.com/jcmturner/gofork/encoding/asn1"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// A gokrb5 client stamps its authenticators with the time to the
// microsecond and nothing else unique, so two logins a process makes at once
// can carry the same stamp. They are still two logins; only the same AP-REQ
// sent again is a replay. The ticket comes from the world's real KDC.
func TestSameMicrosecondIsNotAReplayButTheSameTokenIs(t *testing.T) {
	w := world.ForTest(t)
	cfg, err := krbconfig.Load(w.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	monitorKT, err := keytab.Load(w.MonitorKeytab)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithKeytab(w.MonitorUser, w.Realm, monitorKT, cfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		t.Fatal(err)
	}
	tkt, key, err := cl.GetServiceTicket("MSSQLSvc/sqla.corp.test:1433")
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().UTC()
	token := func() []byte {
		t.Helper()
		mt, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{gssapi.ContextFlagInteg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Keep what gokrb5 put in the authenticator (the GSS checksum), change the stamp.
		if err := mt.APReq.DecryptAuthenticator(key); err != nil {
			t.Fatal(err)
		}
		auth := mt.APReq.Authenticator
		auth.CTime, auth.Cusec = stamp.Truncate(time.Second), stamp.Nanosecond()/1000
		if mt.APReq, err = messages.NewAPReq(tkt, key, auth); err != nil {
			t.Fatal(err)
		}
		mech, err := mt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b, err := (&spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
			MechTypes:      []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID()},
			MechTokenBytes: mech,
		}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	k := &Kerberos{Keytab: w.Keytabs["sqlsvc_a"], Principal: "sqlsvc_a"}
	var kts keytabCache
	var replays replayCache
	first, second := token(), token()
	for i, tok := range [][]byte{first, second} {
		login, err := acceptKerberos(tok, k, &kts, &replays, "CORP")
		if err != nil || login != `CORP\krbmon` {
			t.Fatalf("login %d with the shared stamp: %q, %v; want CORP\\krbmon", i+1, login, err)
		}
	}
	_, err = acceptKerberos(first, k, &kts, &replays, "CORP")
	if err == nil || !strings.Contains(err.Error(), "KRB_AP_ERR_REPEAT") {
		t.Fatalf("the first token sent again: %v, want KRB_AP_ERR_REPEAT", err)
	}
	// Another server has its own cache, as another SQL Server would.
	var other replayCache
	if _, err := acceptKerberos(first, k, &kts, &other, "CORP"); err != nil {
		t.Fatalf("the token at a server that has not seen it: %v", err)
	}
}

func TestReplayCacheForgetsOldEntries(t *testing.T) {
	var c replayCache
	t0 := time.Now()
	if c.isReplay([]byte("a"), t0) || !c.isReplay([]byte("a"), t0.Add(time.Minute)) {
		t.Fatal("a repeat within the window is not seen")
	}
	if c.isReplay([]byte("a"), t0.Add(2*maxClockSkew+time.Second)) {
		t.Error("an entry older than the skew window is still remembered")
	}
	if len(c.seen) != 1 {
		t.Errorf("cache holds %d entries, want 1", len(c.seen))
	}
}
