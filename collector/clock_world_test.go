package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// TestWorldClockCollector measures the healthy DC and its copy whose clock
// runs seven minutes ahead; a third, dead DC must not hold the others up.
func TestWorldClockCollector(t *testing.T) {
	w := world.ForTest(t)
	cfg := worldConfig(t, w, nil, "")
	cfg.Domains[0].DomainControllers = append(cfg.Domains[0].DomainControllers, "ldaps://127.0.0.9")
	snap := facts.New(testTime)
	if err := (clockCollector{}).Update(context.Background(), worldEnv(cfg), snap); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if len(snap.DCs) != 3 {
		t.Fatalf("DCs: %+v; want 3", snap.DCs)
	}
	// currentTime has one-second resolution: allow a second either way.
	for i, want := range []time.Duration{0, w.DC2Skew} {
		dc := snap.DCs[i]
		t.Logf("DC %s: LDAP skew %v, NTP: %s", dc.Address, dc.LDAPSkew, dc.NTPError)
		if !dc.Up || !dc.LDAPMeasured || dc.LDAPSkew < want-time.Second || dc.LDAPSkew > want+time.Second {
			t.Errorf("DC %s: up %v, LDAP skew %v (measured %v, %s); want %v", dc.Address, dc.Up, dc.LDAPSkew, dc.LDAPMeasured, dc.Error, want)
		}
		// Samba's DC answers no SNTP (no ntpd runs in the world): an error, no sample.
		if dc.NTPMeasured || dc.NTPError == "" {
			t.Errorf("DC %s: NTP measured %v, error %q; want an error and no measurement", dc.Address, dc.NTPMeasured, dc.NTPError)
		}
	}
	if dead := snap.DCs[2]; dead.Up || dead.Address != "127.0.0.9" || dead.Error == "" {
		t.Errorf("dead DC: %+v; want down with an error", dead)
	}

	c := snapshotMetrics{clockCollector{}, snap}
	if got := testutil.CollectAndCount(c, "kerberos_dc_clock_skew_seconds"); got != 2 {
		t.Errorf("%d skew samples, want 2 (ldap for each live DC, no ntp)", got)
	}
	wantUp := fmt.Sprintf(`
# HELP kerberos_dc_up Whether the domain controller answered LDAP (its rootDSE could be read).
# TYPE kerberos_dc_up gauge
kerberos_dc_up{dc=%q,domain=%q} 1
kerberos_dc_up{dc=%q,domain=%q} 1
kerberos_dc_up{dc="127.0.0.9",domain=%q} 0
`, w.DC1, w.Domain, w.DC2, w.Domain, w.Domain)
	if err := testutil.CollectAndCompare(c, strings.NewReader(wantUp), "kerberos_dc_up"); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}
