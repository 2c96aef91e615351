package diagnosis

import (
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func TestDNSRules(t *testing.T) {
	runRuleCases(t, dnsFindings, []ruleCase{
		{name: "healthy"},
		{name: "PTR names the host without the trailing dot, in another case", mutate: func(_ *config.Config, s *facts.Snapshot) {
			s.DNS[0].PTR = map[string][]string{"127.0.0.11": {"SQLA.corp.test"}}
			s.DNS[0].ReverseMatches = false // the collector's own comparison may be stricter
		}},
		{
			name: "forward lookup fails",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.DNS[1] = facts.HostDNS{Host: "sqlb.corp.test", ForwardError: "lookup sqlb.corp.test on 127.0.0.1:53: no such host", NotFound: true}
			},
			want:     []string{"dns_forward_failed critical sqlb.corp.test"},
			contains: map[string][]string{"dns_forward_failed": {"no such host", "# Add-DnsServerResourceRecordA -ZoneName 'corp.test' -Name 'sqlb'"}},
		},
		{
			name: "forward lookup times out: the name may exist",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.DNS[1] = facts.HostDNS{Host: "sqlb.corp.test", ForwardError: "lookup sqlb.corp.test on 127.0.0.1:53: i/o timeout"}
			},
			want:     []string{"dns_forward_failed warning sqlb.corp.test"},
			contains: map[string][]string{"dns_forward_failed": {"cannot tell whether the name exists"}},
		},
		{
			name: "PTR names the host and a former name",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.DNS[1].PTR = map[string][]string{"127.0.0.12": {"sqlb.corp.test.", "oldb.corp.test."}}
				s.DNS[1].ReverseMatches = false
			},
			want: []string{"dns_reverse_mismatch warning sqlb.corp.test"},
			contains: map[string][]string{"dns_reverse_mismatch": {
				"Remove-DnsServerResourceRecord -ZoneName '0.0.127.in-addr.arpa' -RRType Ptr -Name '12' -RecordData 'oldb.corp.test.' -Force",
			}},
		},
		{
			name: "reverse names another host",
			mutate: func(c *config.Config, s *facts.Snapshot) {
				c.SQLInstances = append(c.SQLInstances, config.SQLInstance{Name: "sqlm", Host: "sqlm.corp.test"})
				s.DNS = append(s.DNS, facts.HostDNS{Host: "sqlm.corp.test", Addresses: []string{"127.0.0.19"}, PTR: map[string][]string{"127.0.0.19": {"oldname.corp.test."}}})
			},
			want: []string{"dns_reverse_mismatch warning sqlm.corp.test"},
			contains: map[string][]string{"dns_reverse_mismatch": {
				"127.0.0.19 → oldname.corp.test",
				"Remove-DnsServerResourceRecord -ZoneName '0.0.127.in-addr.arpa' -RRType Ptr -Name '19' -RecordData 'oldname.corp.test.' -Force",
				"Add-DnsServerResourceRecordPtr -ZoneName '0.0.127.in-addr.arpa' -Name '19' -PtrDomainName 'sqlm.corp.test.'",
			}},
		},
		{
			name: "no PTR at all",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.DNS[1].PTR, s.DNS[1].ReverseMatches, s.DNS[1].ReverseError = nil, false, "lookup 12.0.0.127.in-addr.arpa: no such host"
			},
			want:     []string{"dns_reverse_missing warning sqlb.corp.test"},
			contains: map[string][]string{"dns_reverse_missing": {"Add-DnsServerResourceRecordPtr -ZoneName '0.0.127.in-addr.arpa' -Name '12' -PtrDomainName 'sqlb.corp.test.'"}},
		},
	})
}

func TestDCRules(t *testing.T) {
	runRuleCases(t, dcFindings, []ruleCase{
		{name: "healthy"},
		{
			name: "one DC of two down",
			mutate: func(_ *config.Config, s *facts.Snapshot) {
				s.DCs = append(s.DCs, facts.DomainController{Domain: "corp.test", Address: "dc2.corp.test", Error: "dial tcp: i/o timeout"})
			},
			want:     []string{"dc_unreachable warning dc2.corp.test"},
			contains: map[string][]string{"dc_unreachable": {"i/o timeout"}},
		},
		{
			name:   "every DC of the domain down",
			mutate: func(_ *config.Config, s *facts.Snapshot) { s.DCs[0].Up, s.DCs[0].Error = false, "connection refused" },
			want:   []string{"dc_unreachable critical dc1.corp.test"},
		},
	})
}

// A DNS alias's address rightly maps back to its canonical host; a PTR
// naming a third name is fixed towards the canonical host, never the alias.
func TestDNSAliasReverse(t *testing.T) {
	alias := func(ptr string, matches bool) func(*config.Config, *facts.Snapshot) {
		return func(c *config.Config, s *facts.Snapshot) {
			c.Services[0].Hosts = append(c.Services[0].Hosts, "crmalias.corp.test")
			s.DNS = append(s.DNS, facts.HostDNS{Host: "crmalias.corp.test", CanonicalName: "crm.corp.test", Addresses: []string{"127.0.0.20"},
				PTR: map[string][]string{"127.0.0.20": {ptr}}, ReverseMatches: matches})
		}
	}
	runRuleCases(t, dnsFindings, []ruleCase{
		{name: "PTR names the canonical host", mutate: alias("crm.corp.test.", true)},
		{
			name:   "PTR names a former name",
			mutate: alias("oldcrm.corp.test.", false),
			want:   []string{"dns_reverse_mismatch warning crmalias.corp.test"},
			contains: map[string][]string{"dns_reverse_mismatch": {
				"-RecordData 'oldcrm.corp.test.'", "-PtrDomainName 'crm.corp.test.'",
			}},
		},
	})
}
