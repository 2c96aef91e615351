package directory

// Integration tests against the real Samba AD DC of testenv/world, bound as
// krbmon, an ordinary domain user.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// worldDomain is the world's domain as the exporter's configuration would
// give it: LDAPS with the world's CA (verification on), a simple bind as
// the monitor user.
func worldDomain(w *world.World) config.Domain {
	return config.Domain{
		Name: w.Domain, NetBIOSName: w.NetBIOS, BaseDN: w.BaseDN,
		DomainControllers: []string{"ldaps://" + w.DC1},
		GlobalCatalogs:    []string{"ldaps://" + w.DC1 + ":3269"},
		TLS:               config.LDAPTLS{CAFile: w.CACert},
		Bind:              config.Bind{Method: "simple", Username: w.MonitorUser + "@" + w.Domain, Password: config.NewSecret(w.MonitorPassword)},
		Timeout:           config.Duration(10 * time.Second),
	}
}

func dial(t *testing.T, ctx context.Context, d config.Domain, krb *config.Kerberos) *Conn {
	t.Helper()
	c, err := Dial(ctx, d, krb)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestWorldAccounts(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	c := dial(t, ctx, worldDomain(w), nil)

	type want struct {
		kind                    string
		disabled, locked        bool
		unconstrained, pt, sens bool
		delegateTo              []string
		encTypes                uint32
		spns                    int
		rbcdAllowed             []string
	}
	for sam, wt := range map[string]want{
		"sqlsvc_a":    {kind: "user", delegateTo: []string{"MSSQLSvc/sqlb.corp.test:1433", "MSSQLSvc/sqlb.corp.test"}, encTypes: 24, spns: 4},
		"sqlsvc_b":    {kind: "user", encTypes: 24, spns: 4},
		"sqlsvc_c":    {kind: "user"},
		"sqlsvc_u":    {kind: "user", unconstrained: true, spns: 1},
		"sqlsvc_pt":   {kind: "user", pt: true, delegateTo: []string{"MSSQLSvc/sqlb.corp.test:1433"}, spns: 1},
		"sqlsvc_rc4":  {kind: "user", encTypes: 4, spns: 1},
		"sqlsvc_dis":  {kind: "user", disabled: true, spns: 1},
		"sqlsvc_lock": {kind: "user", locked: true, spns: 1},
		"SQLE$":       {kind: "computer", encTypes: 28, spns: 1, rbcdAllowed: []string{`CORP\sqlsvc_r`}},
		"alice":       {kind: "user", sens: true},
		"carol":       {kind: "user"},
	} {
		t.Run(sam, func(t *testing.T) {
			a, err := c.LookupAccount(ctx, sam)
			if err != nil {
				t.Fatal(err)
			}
			got := want{
				kind: a.Kind, disabled: a.UserAccountControl.Disabled(), locked: a.Locked,
				unconstrained: a.UserAccountControl.TrustedForDelegation(), pt: a.UserAccountControl.TrustedToAuthForDelegation(),
				sens: a.UserAccountControl.NotDelegated(), delegateTo: a.AllowedToDelegateTo,
				encTypes: uint32(a.SupportedEncTypes), spns: len(a.SPNs),
			}
			if !a.RBCDReadable {
				t.Errorf("msDS-AllowedToActOnBehalfOfOtherIdentity of %s unreadable for an ordinary user on Samba", sam)
			}
			if a.RBCD != nil {
				names, err := c.ResolveSIDs(ctx, a.RBCD.AllowedSIDs())
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range names {
					got.rbcdAllowed = append(got.rbcdAllowed, n)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(wt) {
				t.Errorf("%s:\n got %+v\nwant %+v", sam, got, wt)
			}
			if wantName := `CORP\` + sam; a.Name != wantName || !strings.HasSuffix(a.DN, ","+w.BaseDN) || a.SID.String() == "S-1-0" {
				t.Errorf("identity: name %q DN %q SID %s; want %q in %s with a SID", a.Name, a.DN, a.SID, wantName, w.BaseDN)
			}
		})
	}
	if _, err := c.LookupAccount(ctx, "no_such_account_here"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupAccount of a missing account: %v, want ErrNotFound", err)
	}
	// Filter values are escaped: a name full of filter syntax finds nothing and breaks nothing.
	if _, err := c.LookupAccount(ctx, `*)(sAMAccountName=*`); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupAccount with filter syntax in the name: %v, want ErrNotFound", err)
	}
}

func TestWorldSPNHolders(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	gc, err := DialGlobalCatalog(ctx, worldDomain(w), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	if !gc.Global() {
		t.Fatal("a connection to the global catalog port is not global")
	}
	wantHolders := map[string][]string{
		"MSSQLSvc/sqla.corp.test:1433":   {`CORP\sqlsvc_a`},
		"mssqlsvc/SQLA.CORP.TEST:1433":   {`CORP\sqlsvc_a`}, // AD ignores case
		"MSSQLSvc/sqlc.corp.test:1433":   nil,
		"MSSQLSvc/sqld.corp.test:1433":   {`CORP\wrongacct`},
		"MSSQLSvc/sqldup.corp.test:1433": {`CORP\sqldup1`, `CORP\sqldup2`},
		"MSSQLSvc/sqle.corp.test:1433":   {`CORP\SQLE$`},
		"HTTP/crm":                       {`CORP\crmweb`},
		"MSSQLSvc/*":                     nil, // a wildcard in the value is escaped, not expanded
	}
	// 300 SPNs nobody holds around them, so that the real ones fall into
	// different searches of spnsPerSearch.
	var asked []string
	for i := range 300 {
		asked = append(asked, fmt.Sprintf("MSSQLSvc/nobody%03d.corp.test:1433", i))
	}
	i := 0
	for spn := range wantHolders {
		asked = slices.Insert(asked, i*spnsPerSearch/2, spn) // two to a search
		i++
	}
	asked = append(asked, "MSSQLSvc/SQLA.corp.test:1433") // the same SPN spelt twice
	batch, err := gc.FindHoldersOfSPNs(ctx, asked)
	if err != nil {
		t.Fatal(err)
	}
	wantHolders["MSSQLSvc/SQLA.corp.test:1433"] = []string{`CORP\sqlsvc_a`}
	for _, spn := range asked {
		var got []string
		for _, h := range batch[spn] {
			got = append(got, h.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, wantHolders[spn]) {
			t.Errorf("holders of %s = %q, want %q", spn, got, wantHolders[spn])
		}
	}

	accounts, spns, sqldup := 0, 0, 0
	err = gc.ForEachSPNHolder(ctx, func(h Holder, list []string) error {
		accounts++
		spns += len(list)
		if slices.Contains(list, "MSSQLSvc/sqldup.corp.test:1433") {
			sqldup++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The fixtures alone give 13 accounts with SPNs (plus the DC and krbtgt).
	if accounts < 13 || spns < 25 || sqldup != 2 {
		t.Errorf("scan saw %d accounts, %d SPNs, %d holders of the duplicate; want >= 13, >= 25, 2", accounts, spns, sqldup)
	}
	stop := errors.New("stop")
	n := 0
	if err := gc.ForEachSPNHolder(ctx, func(Holder, []string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("a callback error must stop the scan and be returned: %v after %d accounts", err, n)
	}
	if scope, err := gc.ScanScope(ctx); err != nil || scope != "forest "+w.BaseDN {
		t.Errorf("ScanScope = %q, %v; want the forest of %s", scope, err, w.BaseDN)
	}
}

func TestWorldProtectedUsersNested(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	c := dial(t, ctx, worldDomain(w), nil)

	// Our own objects: a group nested in Protected Users and a user in it.
	suffix := fmt.Sprintf("%06d", rand.IntN(1000000))
	group, user := "kxnest"+suffix, "kxuser"+suffix
	mustSambaTool(t, w, "group", "add", group)
	t.Cleanup(func() { _, _ = w.SambaTool("group", "delete", group) })
	mustSambaTool(t, w, "user", "add", user, "Kx-"+suffix+"-Passw0rd!")
	t.Cleanup(func() { _, _ = w.SambaTool("user", "delete", user) })
	mustSambaTool(t, w, "group", "addmembers", group, user)
	mustSambaTool(t, w, "group", "addmembers", "Protected Users", group)

	for sam, want := range map[string]bool{"bob": true, "carol": false, "alice": false, user: true, group: true} {
		a, err := c.LookupAccount(ctx, sam)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.ProtectedUsersMember(ctx, a.DN)
		if err != nil || got != want {
			t.Errorf("ProtectedUsersMember(%s) = %v, %v; want %v", sam, got, err, want)
		}
	}
}

func mustSambaTool(t *testing.T, w *world.World, args ...string) {
	t.Helper()
	if out, err := w.SambaTool(args...); err != nil {
		t.Fatalf("samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestWorldRBCDUnreadable hides msDS-AllowedToActOnBehalfOfOtherIdentity of
// an account of our own from krbmon with a deny ACE: the client must then
// say "unknown", never "not set".
func TestWorldRBCDUnreadable(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	c := dial(t, ctx, worldDomain(w), nil)
	me, err := c.LookupAccount(ctx, w.MonitorUser)
	if err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%06d", rand.IntN(1000000))
	host := "KXRBCD" + suffix
	mustSambaTool(t, w, "computer", "create", host)
	t.Cleanup(func() { _, _ = w.SambaTool("computer", "delete", host) })
	mustSambaTool(t, w, "delegation", "add-principal", host+"$", "sqlsvc_r")

	a, err := c.LookupAccount(ctx, host+"$")
	if err != nil {
		t.Fatal(err)
	}
	if !a.RBCDReadable || a.RBCD == nil || len(a.RBCD.AllowedSIDs()) != 1 {
		t.Fatalf("before the deny ACE: readable %v, RBCD %v; want one allowed principal", a.RBCDReadable, a.RBCD)
	}
	mustSambaTool(t, w, "dsacl", "set", "--objectdn="+a.DN,
		fmt.Sprintf("--sddl=(OD;;RP;%s;;%s)", rbcdSchemaID, me.SID))
	a, err = c.LookupAccount(ctx, host+"$")
	if err != nil {
		t.Fatal(err)
	}
	if a.RBCD != nil || a.RBCDReadable {
		t.Errorf("after denying krbmon read: RBCD %v, readable %v; want nil and unreadable (unknown)", a.RBCD, a.RBCDReadable)
	}
}

func TestWorldBinds(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	monitorSID := func(c *Conn) string {
		a, err := c.LookupAccount(ctx, w.MonitorUser)
		if err != nil {
			t.Fatal(err)
		}
		return a.SID.String()
	}

	t.Run("StartTLS", func(t *testing.T) {
		d := worldDomain(w)
		d.DomainControllers = []string{"ldap://" + w.DC1}
		d.TLS.StartTLS = true
		c := dial(t, ctx, d, nil)
		if st, ok := c.ldap.TLSConnectionState(); !ok || !st.HandshakeComplete {
			t.Error("StartTLS did not leave a TLS connection")
		}
		if _, err := c.LookupAccount(ctx, "sqlsvc_a"); err != nil {
			t.Error(err)
		}
	})
	t.Run("GSSAPI with keytab", func(t *testing.T) {
		d := worldDomain(w)
		d.Bind = config.Bind{Method: "gssapi"}
		krb := &config.Kerberos{Principal: w.MonitorUser + "@" + w.Realm, KeytabFile: w.MonitorKeytab, Krb5Config: w.Krb5Conf}
		c := dial(t, ctx, d, krb)
		// The DC computes the session's groups for the identity it bound: it must be krbmon.
		token, err := c.tokenSIDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sid := monitorSID(c); !token[sid] {
			t.Errorf("the GSSAPI session's token lacks krbmon's SID %s: %v", sid, token)
		}
	})
	t.Run("certificate verification is on", func(t *testing.T) {
		d := worldDomain(w)
		d.TLS.CAFile = ""
		_, err := Dial(ctx, d, nil)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Dial without the world's CA = %v; want a certificate error", err)
		}
		d.TLS.InsecureSkipVerify = true
		c := dial(t, ctx, d, nil)
		if _, err := c.LookupAccount(ctx, "sqlsvc_a"); err != nil {
			t.Error(err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		d := worldDomain(w)
		d.Bind.Password = config.NewSecret("Wrong-Secret-1")
		_, err := Dial(ctx, d, nil)
		if err == nil || !strings.Contains(err.Error(), "Invalid Credentials") || strings.Contains(err.Error(), "Wrong-Secret-1") {
			t.Errorf("Dial with a wrong password = %v; want invalid credentials, without the password", err)
		}
	})
	t.Run("fail-over to the next DC", func(t *testing.T) {
		d := worldDomain(w)
		d.DomainControllers = []string{"ldaps://127.0.0.9", "ldaps://" + w.DC1}
		c := dial(t, ctx, d, nil)
		if c.URL() != "ldaps://"+w.DC1 {
			t.Errorf("connected to %s, want the second DC", c.URL())
		}
	})
	t.Run("cancellation closes the connection", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		c, err := Dial(cctx, worldDomain(w), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cancel()
		time.Sleep(50 * time.Millisecond)
		if _, err := c.LookupAccount(ctx, "sqlsvc_a"); err == nil {
			t.Error("a search succeeded on a connection whose context was cancelled")
		}
	})
}

func TestWorldRootDSETime(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	for dc, want := range map[string]time.Duration{w.DC1: 0, w.DC2: w.DC2Skew} {
		c, err := DialUnbound(ctx, "ldaps://"+dc, worldDomain(w))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		dcTime, rtt, err := c.RootDSETime(ctx)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		skew := dcTime.Sub(start.Add(rtt / 2))
		// One-second resolution, truncated: the skew lies in (want-1s, want+1s].
		if skew < want-1500*time.Millisecond || skew > want+1500*time.Millisecond || rtt <= 0 {
			t.Errorf("DC %s: skew %v (rtt %v), want %v within the one-second resolution", dc, skew, rtt, want)
		}
	}
}

// The AES marker and the keys facts of the world: its Read-only Domain
// Controllers group exists (Samba provisions at the 2008 R2 level), sqlsvc_old's
// pwdLastSet is 2005 (fixtures.sh), sqlsvc_a allows AES only, crmweb has no
// msDS-SupportedEncryptionTypes, krbtgt was set at provisioning.
func TestWorldAccountKeys(t *testing.T) {
	w := world.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(t, ctx, worldDomain(w), nil)
	aes, err := c.ReadDomainAES(ctx)
	if err != nil || aes.AESSince.IsZero() || aes.Born.IsZero() || aes.AESSince.Before(aes.Born) || aes.AESSince.Sub(aes.Born) > time.Hour {
		t.Fatalf("domain AES marker %+v, %v; want the RID 521 group created at provisioning, just after the domain", aes, err)
	}
	// Samba provisions at the 2008 R2 functional level (msDS-Behavior-Version 4).
	if !aes.FunctionalLevelKnown || aes.FunctionalLevel != 4 {
		t.Errorf("domain functional level %d (read: %v); want 4, 2008 R2", aes.FunctionalLevel, aes.FunctionalLevelKnown)
	}
	old, err := c.ReadAccountKeys(ctx, "sqlsvc_old")
	if err != nil || !old.PwdLastSet.Equal(time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)) || old.SupportedEncTypesSet {
		t.Errorf("sqlsvc_old: %+v, %v; want pwdLastSet 2005-01-01 and no msDS-SupportedEncryptionTypes", old, err)
	}
	a, err := c.ReadAccountKeys(ctx, "sqlsvc_a")
	if err != nil || !a.SupportedEncTypesSet || a.SupportedEncTypes != 0x18 || a.PwdLastSet.Before(aes.AESSince) {
		t.Errorf("sqlsvc_a: %+v, %v; want 0x18 and a password set after %v", a, err, aes.AESSince)
	}
	krbtgt, err := c.ReadKrbtgtKeys(ctx)
	if err != nil || krbtgt.SAM != "krbtgt" || krbtgt.PwdLastSet.IsZero() {
		t.Errorf("krbtgt: %+v, %v", krbtgt, err)
	}
	if _, err := c.ReadAccountKeys(ctx, "nosuchaccount"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing account: %v, want ErrNotFound", err)
	}
}

// bulkAccounts is BULK_ACCOUNTS of testenv/samba/fixtures.sh: accounts
// bulk001..bulk300 in OU=Bulk, each holding HTTP/bulkNNN.corp.test and
// HTTP/bulkNNN.
const bulkAccounts = 300

// TestWorldManySPNHolders reads several pages of SPN holders on fresh
// connections. Each read used to resolve the first holder's NetBIOS domain
// name with a second search while the first one's entries were still
// arriving on the same connection: past ~64 entries go-ldap's reader blocked
// on the outer search and both searches stalled until the timeout.
func TestWorldManySPNHolders(t *testing.T) {
	w := world.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fresh := func() *Conn {
		gc, err := DialGlobalCatalog(ctx, worldDomain(w), nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { gc.Close() })
		return gc
	}
	bulkName := regexp.MustCompile(`^CORP\\bulk[0-9]{3}$`)

	seen := map[string][]string{}
	err := fresh().ForEachSPNHolder(ctx, func(h Holder, spns []string) error {
		if bulkName.MatchString(h.Name) {
			seen[h.Name] = spns
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachSPNHolder: %v", err)
	}
	if len(seen) != bulkAccounts {
		t.Errorf("the scan saw %d of the %d bulk accounts", len(seen), bulkAccounts)
	}
	for name, spns := range seen {
		sam := strings.TrimPrefix(name, `CORP\`)
		want := []string{"HTTP/" + sam, "HTTP/" + sam + ".corp.test"}
		slices.Sort(spns)
		if !slices.Equal(spns, want) {
			t.Errorf("%s holds %q, want %q", name, spns, want)
		}
	}

	var asked []string
	for i := 1; i <= bulkAccounts; i++ {
		asked = append(asked, fmt.Sprintf("HTTP/bulk%03d.corp.test", i), fmt.Sprintf("HTTP/bulk%03d", i))
	}
	// All in one search, so that it returns every bulk account: well past
	// the ~64 entries where the nested lookup stalled (with 64 SPNs to a
	// search, two per account, a search returned 32).
	defer func(n int) { spnsPerSearch = n }(spnsPerSearch)
	spnsPerSearch = len(asked)
	holders, err := fresh().FindHoldersOfSPNs(ctx, asked)
	if err != nil {
		t.Fatalf("FindHoldersOfSPNs: %v", err)
	}
	for _, s := range asked {
		sam := strings.TrimSuffix(strings.TrimPrefix(s, "HTTP/"), ".corp.test")
		if got := holders[s]; len(got) != 1 || got[0].Name != `CORP\`+sam {
			t.Errorf("holders of %s = %v, want CORP\\%s alone", s, got, sam)
		}
	}
}
