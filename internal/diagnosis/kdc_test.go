package diagnosis

import (
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func TestKDCRules(t *testing.T) {
	probe := func(code int32, name string) func(*config.Config, *facts.Snapshot) {
		return func(_ *config.Config, s *facts.Snapshot) {
			s.Tickets[0] = facts.TicketProbe{Target: "sqla", SPN: spnA, Realm: "CORP.TEST", ErrorCode: code, ErrorName: name}
		}
	}
	runRuleCases(t, kdcFindings, []ruleCase{
		{name: "healthy"},
		{
			name: "principal unknown where spn_missing already says it",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				probe(7, "KDC_ERR_S_PRINCIPAL_UNKNOWN")(c, s)
				expectedSPN(s, spnA).Holders = nil
			},
		},
		{
			name: "principal unknown for a duplicate SPN is spn_duplicate's",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				probe(7, "KDC_ERR_S_PRINCIPAL_UNKNOWN")(c, s)
				expectedSPN(s, spnA).Holders = []string{`CORP\sqlsvc_a`, `CORP\sqldup2`}
			},
		},
		{
			// the lookup saw one holder, the forest-wide scan a second one (in another
			// domain, in upper case): spn_duplicate says it, as spnFindings merges both
			name: "principal unknown for an SPN only the forest scan shows duplicated",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				probe(7, "KDC_ERR_S_PRINCIPAL_UNKNOWN")(c, s)
				s.Duplicates = &facts.DuplicateSPNs{Scanned: true, Total: 1, Top: []facts.DuplicateSPN{{SPN: strings.ToUpper(spnA), Accounts: []string{`CORP\sqlsvc_a`, `EU\sqlsvc_a2`}}}}
			},
		},
		{
			name:     "principal unknown although the directory has it: replication",
			mutate:   probe(7, "KDC_ERR_S_PRINCIPAL_UNKNOWN"),
			want:     []string{"kdc_principal_unknown warning " + spnA},
			contains: map[string][]string{"kdc_principal_unknown": {"replicated"}},
		},
		{
			name: "principal unknown without directory facts",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				probe(7, "KDC_ERR_S_PRINCIPAL_UNKNOWN")(c, s)
				s.SPNs = nil
			},
			want:     []string{"kdc_principal_unknown critical " + spnA},
			contains: map[string][]string{"kdc_principal_unknown": {"fall back to NTLM"}},
		},
		{
			name:     "clock skew without a DC clock finding",
			mutate:   probe(37, "KRB_AP_ERR_SKEW"),
			want:     []string{"kdc_clock_skew critical CORP.TEST"},
			contains: map[string][]string{"kdc_clock_skew": {"w32tm /resync /rediscover"}},
		},
		{
			name: "clock skew already reported by clock_skew_dc",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				probe(37, "KRB_AP_ERR_SKEW")(c, s)
				s.DCs[0].NTPSkew = -6 * time.Minute
			},
		},
		{
			name:     "no usable key on an account that allows AES",
			mutate:   probe(14, "KDC_ERR_ETYPE_NOSUPP"),
			want:     []string{`account_no_aes_keys critical CORP\sqlsvc_a`},
			contains: map[string][]string{"account_no_aes_keys": {"Set-ADAccountPassword -Identity 'sqlsvc_a' -Reset", "AES keys"}},
		},
		{
			name: "no usable key on an RC4-only account is account_rc4_only's",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				probe(14, "KDC_ERR_ETYPE_NOSUPP")(c, s)
				s.Accounts[0].SupportedEncTypes = 4
			},
		},
		{
			name: "KDC not reached",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				for i := range s.Tickets {
					s.Tickets[i].OK, s.Tickets[i].Error = false, "dial udp 127.0.0.1:88: connection refused"
				}
			},
			want: []string{"kdc_unreachable warning CORP.TEST"},
		},
		{
			name:     "other KDC errors are explained",
			mutate:   probe(24, "KDC_ERR_PREAUTH_FAILED"),
			want:     []string{"kdc_ticket_failed warning " + spnA},
			contains: map[string][]string{"kdc_ticket_failed": {"wrong password or an out-of-date keytab"}},
		},
		{
			// explained from internal/krberr's table, which knows every RFC 4120 code
			name:     "a code the rules do not single out is explained by krberr",
			mutate:   probe(19, ""),
			want:     []string{"kdc_ticket_failed warning " + spnA},
			contains: map[string][]string{"kdc_ticket_failed": {"KDC_ERR_SERVICE_REVOKED", "the service account is disabled, locked out or expired"}},
		},
	})
}
