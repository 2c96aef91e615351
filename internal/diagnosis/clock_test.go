package diagnosis

import (
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func TestClockRules(t *testing.T) {
	runRuleCases(t, clockFindings, []ruleCase{
		{name: "healthy"},
		{
			name:     "DC beyond the warning threshold",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { s.DCs[0].NTPSkew = 90 * time.Second },
			want:     []string{"clock_skew_dc warning dc1.corp.test"},
			contains: map[string][]string{"clock_skew_dc": {"1m30s ahead of", "300 s", "KRB_AP_ERR_SKEW", "w32tm /resync /rediscover  # on dc1.corp.test"}},
		},
		{
			name: "DC beyond the critical threshold, measured by LDAP only",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.DCs[0].NTPMeasured, s.DCs[0].LDAPSkew = false, -250*time.Second
			},
			want:     []string{"clock_skew_dc critical dc1.corp.test"},
			contains: map[string][]string{"clock_skew_dc": {"4m10s behind", "LDAP currentTime"}},
		},
		{
			name: "every DC off the same way points at the exporter's host",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.DCs[0].NTPSkew = -5 * time.Minute
				s.DCs = append(s.DCs, facts.DomainController{Domain: "corp.test", Address: "dc2.corp.test", Up: true, NTPMeasured: true, NTPSkew: -5 * time.Minute})
			},
			want:     []string{"clock_skew_dc critical dc1.corp.test", "clock_skew_dc critical dc2.corp.test"},
			contains: map[string][]string{"clock_skew_dc": {"exporter's own host has probably drifted", "# on the exporter's host"}},
		},
		{
			name: "thresholds come from the configuration",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				c.Thresholds.ClockSkewWarning = config.Duration(10 * time.Second)
				s.DCs[0].NTPSkew = 20 * time.Second
			},
			want: []string{"clock_skew_dc warning dc1.corp.test"},
		},
		{
			name:   "unreachable DC has no clock verdict",
			mutate: func(_ *config.Config, s *facts.Snapshot) { s.DCs[0].Up, s.DCs[0].NTPSkew = false, time.Hour },
		},
		{
			name:     "SQL instance against the exporter, and against the DC",
			mutate:   func(_ *config.Config, s *facts.Snapshot) { s.SQL["sqlb"].ClockSkew = 6 * time.Minute },
			want:     []string{"clock_skew_sql critical sqlb"}, // the hop itself measured 2s
			contains: map[string][]string{"clock_skew_sql": {"6m0s ahead of", "beyond the tolerance", "w32tm /resync /rediscover  # on sqlb.corp.test"}},
		},
		{
			name: "hop measured through the linked server",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.LinkedServers["sqla"].Servers[0].HopClockSkew = -2 * time.Minute
			},
			want:     []string{"clock_skew_hop warning sqla/SQLB"},
			contains: map[string][]string{"clock_skew_hop": {"2m0s behind sqla's"}},
		},
		{
			name: "hop derived from both instances when the hop failed",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.LinkedServers["sqla"].Servers[0].HopOK = false
				s.SQL["sqla"].ClockSkew, s.SQL["sqlb"].ClockSkew = -40*time.Second, 40*time.Second
			},
			want: []string{"clock_skew_hop warning sqla/SQLB"},
		},
		{
			name: "several linked servers to one back end: one finding",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				ls := s.LinkedServers["sqla"]
				ls.Servers[0].HopClockSkew = 2 * time.Minute
				fixed := ls.Servers[0]
				fixed.Name, fixed.SelfMapped, fixed.FixedLogin = "SQLB_FIXED", false, true
				ls.Servers = append(ls.Servers, fixed)
			},
			want: []string{"clock_skew_hop warning sqla/SQLB"},
		},
		{
			name: "a back end already reported against the exporter is not reported again per hop",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.LinkedServers["sqla"].Servers[0].HopClockSkew = 90 * time.Second
				s.SQL["sqlb"].ClockSkew = 90 * time.Second
			},
			want: []string{"clock_skew_sql warning sqlb"},
		},
		{
			name: "unmeasured SQL clock has no verdict",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.SQL["sqlb"].ClockSkew, s.SQL["sqlb"].ClockMeasured = time.Hour, false
			},
		},
	})
}
