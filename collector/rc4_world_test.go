package collector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// RC4 enforcement readiness and DNS aliases against the real DC, KDC and
// DNS: the dns, spn, kdc, aeskeys and cname collectors in their phases,
// then the diagnosis. Accounts (fixtures.sh): sqlsvc_a allows AES only
// (0x18), sqlsvc_rc4 RC4 only (0x4), crmweb has no
// msDS-SupportedEncryptionTypes, sqlsvc_old's stored keys lack AES and its
// pwdLastSet is 2005. Aliases: crmalias -> crm (HTTP/crm.corp.test is on
// crmweb: healthy), reports -> rptnode1 (rptweb holds HTTP/reports only).
func TestWorldRC4ReadinessAndAliases(t *testing.T) {
	w := world.ForTest(t)
	cfg := worldConfig(t, w, []worldInstance{{"sqla", `CORP\sqlsvc_a`}}, fmt.Sprintf(`services:
  - {name: rc4only, account: 'CORP\sqlsvc_rc4', spns: [MSSQLSvc/sqlrc4.corp.test:1433]}
  - {name: crm, account: 'CORP\crmweb', spns: [HTTP/crm.corp.test], hosts: [crm.corp.test]}
  - {name: old, account: 'CORP\sqlsvc_old', spns: [MSSQLSvc/sqlold.corp.test:1433]}
  - {name: crm-alias, account: 'CORP\crmweb', spns: [HTTP/crmalias.corp.test], hosts: [crmalias.corp.test]}
  - {name: reports, account: 'CORP\rptweb', spns: [HTTP/reports.corp.test], hosts: [reports.corp.test]}
kerberos: {principal: %s@%s, krb5_config: %s, keytab_file: %s}
dns: {servers: ['%s']}
`, w.MonitorUser, w.Realm, w.Krb5Conf, w.MonitorKeytab, w.DNSServer()))
	// sqla's SPNs are derived without asking SQL Server: only the FQDN:port form matters here.
	cfg.SQLInstances[0].Auth.Method = "windows"
	snap := facts.New(testTime)
	env := worldEnv(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := (dnsCollector{}).Update(ctx, env, snap); err != nil {
		t.Fatalf("dns: %v", err)
	}
	for name, c := range map[string]Collector{"spn": spnCollector{}, "kdc": kdcCollector{}, "aeskeys": aesKeysCollector{}, "cname": cnameCollector{}} {
		if err := c.Update(ctx, env, snap); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	tickets := map[string]string{}
	for _, p := range snap.Tickets {
		tickets[p.SPN] = fmt.Sprintf("%s/%s/%d", p.TicketEType, p.SessionKeyEType, p.ErrorCode)
	}
	for spn, want := range map[string]string{
		"MSSQLSvc/sqla.corp.test:1433":   "aes256-cts-hmac-sha1-96/aes256-cts-hmac-sha1-96/0",
		"MSSQLSvc/sqlrc4.corp.test:1433": "rc4-hmac/rc4-hmac/0",
		"HTTP/crm.corp.test":             "rc4-hmac/aes256-cts-hmac-sha1-96/0",
		"MSSQLSvc/sqlold.corp.test:1433": "rc4-hmac/aes256-cts-hmac-sha1-96/0",
		// the probe asks what a Windows client asks: the canonical hosts' SPNs
		"HTTP/rptnode1.corp.test": "//7",
	} {
		if tickets[spn] != want {
			t.Errorf("ticket for %s: %q, want %q", spn, tickets[spn], want)
		}
	}
	if _, asked := tickets["HTTP/reports.corp.test"]; asked {
		t.Error("the probe asked for the alias's SPN, which no Windows client asks for")
	}

	for _, c := range []struct {
		c      Collector
		name   string
		labels string
		want   float64
	}{
		{kdcCollector{}, "kerberos_kdc_ticket_etype", `etype="rc4-hmac",spn="MSSQLSvc/sqlold.corp.test:1433",target="old"`, 1},
		{kdcCollector{}, "kerberos_kdc_session_key_etype", `etype="aes256-cts-hmac-sha1-96",spn="MSSQLSvc/sqlold.corp.test:1433",target="old"`, 1},
		{kdcCollector{}, "kerberos_kdc_ticket_etype", `etype="aes256-cts-hmac-sha1-96",spn="MSSQLSvc/sqla.corp.test:1433",target="sqla"`, 1},
		{aesKeysCollector{}, "kerberos_account_aes_keys_possible", `account="CORP\\sqlsvc_old"`, 0},
		{aesKeysCollector{}, "kerberos_account_aes_keys_possible", `account="CORP\\crmweb"`, 1},
		{aesKeysCollector{}, "kerberos_account_aes_keys_possible", `account="CORP\\krbtgt"`, 1},
		{aesKeysCollector{}, "kerberos_account_password_last_set_timestamp_seconds", `account="CORP\\sqlsvc_old"`, float64(time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC).Unix())},
		{dnsCollector{}, "kerberos_dns_cname", `host="reports.corp.test"`, 1},
		{dnsCollector{}, "kerberos_dns_cname", `host="crm.corp.test"`, 0},
		{dnsCollector{}, "kerberos_dns_canonical_name_info", `canonical_name="rptnode1.corp.test",host="reports.corp.test"`, 1},
		{cnameCollector{}, "kerberos_spn_requested_on_expected_account", `requested_spn="HTTP/rptnode1.corp.test",spn="HTTP/reports.corp.test",target="reports"`, 0},
		{cnameCollector{}, "kerberos_spn_requested_on_expected_account", `requested_spn="HTTP/crm.corp.test",spn="HTTP/crmalias.corp.test",target="crm-alias"`, 1},
		{cnameCollector{}, "kerberos_spn_requested_holders", `requested_spn="HTTP/rptnode1.corp.test",spn="HTTP/reports.corp.test",target="reports"`, 0},
	} {
		if got, ok := gaugeValue(t, snapshotMetrics{c.c, snap}, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s{%s} = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := gaugeValue(t, snapshotMetrics{aesKeysCollector{}, snap}, "kerberos_domain_aes_keys_since_timestamp_seconds", `domain="corp.test"`); !ok {
		t.Error("kerberos_domain_aes_keys_since_timestamp_seconds is missing for corp.test")
	}

	findings := map[string]string{}
	for _, f := range diagnosis.Evaluate(cfg, snap) {
		findings[f.Check+" "+f.Target] = string(f.Severity)
	}
	for key, want := range map[string]string{
		"spn_rc4_ticket MSSQLSvc/sqlrc4.corp.test:1433": "warning",
		"spn_rc4_ticket HTTP/crm.corp.test":             "warning",
		"spn_rc4_ticket MSSQLSvc/sqlold.corp.test:1433": "warning",
		`account_no_aes_keys CORP\sqlsvc_old`:           "warning",
		"spn_cname_mismatch HTTP/reports.corp.test":     "critical",
		// correct AES setup, accounts with AES keys, the healthy alias
		"spn_rc4_ticket MSSQLSvc/sqla.corp.test:1433":   "",
		`account_no_aes_keys CORP\sqlsvc_a`:             "",
		`account_no_aes_keys CORP\crmweb`:               "",
		`account_no_aes_keys CORP\sqlsvc_rc4`:           "",
		"krbtgt_no_aes_keys corp.test":                  "",
		"spn_cname_mismatch HTTP/crmalias.corp.test":    "",
		"spn_missing HTTP/crmalias.corp.test":           "",
		"kdc_principal_unknown HTTP/rptnode1.corp.test": "",
	} {
		if findings[key] != want {
			t.Errorf("finding %s: severity %q, want %q", key, findings[key], want)
		}
	}

	// Once the DCs enforce AES, the account without AES keys is broken.
	cfg.Kerberos.RC4Enforced = true
	if !slices.ContainsFunc(diagnosis.Evaluate(cfg, snap), func(f diagnosis.Finding) bool {
		return f.Check == "account_no_aes_keys" && f.Target == `CORP\sqlsvc_old` && f.Severity == diagnosis.Critical
	}) {
		t.Error("with rc4_enforced, account_no_aes_keys for CORP\\sqlsvc_old is not critical")
	}
}

// gaugeValue is the value of the series name{labels} a collector emits;
// labels as in the exposition format, sorted by name.
func gaugeValue(t *testing.T, c prometheus.Collector, name, labels string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	escape := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, l.GetName()+`="`+escape.Replace(l.GetValue())+`"`)
			}
			if strings.Join(parts, ",") == labels {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}
