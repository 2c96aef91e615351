package collector

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// holdersOf reads the scanner's index: the accounts holding s, in any scope.
func (s *SPNScanner) holdersOf(name string) []string {
	var out []string
	for _, si := range s.scopes {
		out = append(out, si.index.holders(name)...)
	}
	slices.Sort(out)
	return out
}

// TestWorldSPNScanIncremental changes an account of its own on DC1 between
// scans and checks what each scan mode sees: additions, modifications and
// SPN removals incrementally; a deleted account incrementally only for an
// identity that may read tombstones (Administrator; krbmon, an ordinary
// user, may not), and at the next full scan for everyone; and a full scan
// when the scanner reaches DC2, a copy of DC1 with the same invocationId
// (the URL tells them apart).
func TestWorldSPNScanIncremental(t *testing.T) {
	w := world.ForTest(t)
	ctx := context.Background()
	cfg := worldConfig(t, w, nil, "")
	admin := worldConfig(t, w, nil, "")
	admin.Domains[0].Bind = config.Bind{Method: "simple", Username: w.AdminUser + "@" + w.Domain, Password: config.NewSecret(w.AdminPassword)}
	user, asAdmin := NewSPNScanner(), NewSPNScanner()
	scans := map[*SPNScanner]map[string]int{user: {}, asAdmin: {}}
	scan := func(s *SPNScanner, c *config.Config, wantMode string) {
		t.Helper()
		res := s.Scan(ctx, c, slog.New(slog.DiscardHandler))
		if !res.Scanned || res.Error != "" {
			t.Fatalf("scan: %+v", res)
		}
		scans[s][wantMode]++
		if res.Scans[scanFull] != scans[s][scanFull] || res.Scans[scanIncremental] != scans[s][scanIncremental] {
			t.Errorf("scans so far %v, want %v (this one %s)", res.Scans, scans[s], wantMode)
		}
		if res.Total != 1 || res.AccountsScanned < 313 {
			t.Errorf("%s scan: %d duplicates, %d accounts; want the fixtures' 1 and at least 313", wantMode, res.Total, res.AccountsScanned)
		}
	}
	both := func(wantMode string) {
		t.Helper()
		scan(user, cfg, wantMode)
		scan(asAdmin, admin, wantMode)
	}
	expect := func(s *SPNScanner, spnName string, want ...string) {
		t.Helper()
		if got := s.holdersOf(spnName); !slices.Equal(got, want) {
			t.Errorf("holders of %s = %q, want %q", spnName, got, want)
		}
	}

	both(scanFull)
	expect(user, "MSSQLSvc/sqldup.corp.test:1433", `CORP\sqldup1`, `CORP\sqldup2`)
	expect(user, "HTTP/bulk300", `CORP\bulk300`)
	both(scanIncremental) // nothing changed

	sam := fmt.Sprintf("kxscan%06d", rand.IntN(1000000))
	name := `CORP\` + sam
	first, second := "HTTP/"+sam+"-one.corp.test", "HTTP/"+sam+"-two.corp.test"
	mustSambaTool(t, w, "user", "add", sam, "Kx-"+sam+"-Passw0rd!")
	t.Cleanup(func() { _, _ = w.SambaTool("user", "delete", sam) })

	mustSambaTool(t, w, "spn", "add", first, sam) // added
	both(scanIncremental)
	for _, s := range []*SPNScanner{user, asAdmin} {
		expect(s, first, name)
	}

	mustSambaTool(t, w, "spn", "add", second, sam) // modified: one more, then one less
	mustSambaTool(t, w, "spn", "delete", first, sam)
	both(scanIncremental)
	for _, s := range []*SPNScanner{user, asAdmin} {
		expect(s, first)
		expect(s, second, name)
	}

	mustSambaTool(t, w, "spn", "delete", second, sam) // its last SPN removed
	both(scanIncremental)
	for _, s := range []*SPNScanner{user, asAdmin} {
		expect(s, second)
	}

	mustSambaTool(t, w, "spn", "add", first, sam)
	both(scanIncremental)
	mustSambaTool(t, w, "user", "delete", sam) // deleted with its SPN
	both(scanIncremental)
	expect(asAdmin, first)    // its tombstone was read
	expect(user, first, name) // krbmon sees no tombstone: missed until the next full scan
	cfg.Global.SPNFullScanInterval = config.Duration(time.Nanosecond)
	scan(user, cfg, scanFull)
	expect(user, first)
	cfg.Global.SPNFullScanInterval = config.Duration(time.Hour)
	scan(user, cfg, scanIncremental)

	// DC2: the same directory as DC1 was at start-up, the same DC object and
	// invocationId, its own USNs.
	dc2 := worldConfig(t, w, nil, "")
	dc2.Domains[0].GlobalCatalogs = []string{"ldaps://" + w.DC2 + ":3269"}
	scan(user, dc2, scanFull)
	expect(user, "HTTP/bulk300", `CORP\bulk300`)
	scan(user, dc2, scanIncremental)
	scan(user, cfg, scanFull) // and back
	for _, si := range user.scopes {
		if !strings.HasPrefix(si.server.URL, "ldaps://"+w.DC1) || si.server.InvocationID == "" || si.server.HighestCommittedUSN == 0 {
			t.Errorf("server state %+v, want DC1's", si.server)
		}
	}
}

func mustSambaTool(t *testing.T, w *world.World, args ...string) {
	t.Helper()
	if out, err := w.SambaTool(args...); err != nil {
		t.Fatalf("samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
