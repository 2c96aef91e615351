package collector

import (
	"context"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/prometheus/common/promslog"
)

// A probe asks about one instance: the collectors whose work is the
// fleet's (every DC's clock, every delegated user) leave it to the
// background loop. Without Env.Probe honoured they would dial the DC.
func TestProbeSkipsFleetWideWork(t *testing.T) {
	ntp := false
	cfg := &config.Config{
		Domains: []config.Domain{{Name: "corp.test", BaseDN: "DC=corp,DC=test", DomainControllers: []string{"ldap://127.0.0.1:1"},
			NTP: &ntp, Timeout: config.Duration(time.Second), Bind: config.Bind{Method: "simple", Username: "u@corp.test", Password: config.NewSecret("x")}}},
		DelegatedPrincipals: config.DelegatedPrincipals{Users: []string{`CORP\carol`}},
	}
	for _, tc := range []struct {
		name string
		c    Collector
		got  func(*facts.Snapshot) int
	}{
		{"clock", clockCollector{}, func(s *facts.Snapshot) int { return len(s.DCs) }},
		{"users", usersCollector{}, func(s *facts.Snapshot) int { return len(s.Users) }},
	} {
		for _, probe := range []bool{false, true} {
			snap := facts.New(time.Now())
			env := &Env{Config: cfg, Logger: promslog.NewNopLogger(), Probe: probe}
			_ = tc.c.Update(context.Background(), env, snap)
			if n := tc.got(snap); probe && n != 0 {
				t.Errorf("%s: a probe looked at %d fleet-wide objects, want none", tc.name, n)
			} else if !probe && n == 0 {
				t.Errorf("%s: the background loop looked at nothing: the test proves nothing", tc.name)
			}
		}
	}
}
