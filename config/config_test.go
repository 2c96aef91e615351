package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGoodFilesLoad(t *testing.T) {
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "s3cret")
	files, _ := filepath.Glob("testdata/good/*.yml")
	if len(files) == 0 {
		t.Fatal("no good test files")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	data, err := os.ReadFile("../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseStatic("config.example.yml", data)
	if err != nil {
		t.Fatalf("config.example.yml does not parse: %v", err)
	}
	if got := cfg.SQLInstances[0].Auth.Method; got != "kerberos" {
		t.Errorf("example sql auth method = %q, want kerberos", got)
	}
	if len(cfg.Services) != 1 || len(cfg.DelegatedPrincipals.Users) != 2 {
		t.Errorf("example lost services or delegated principals: %+v %+v", cfg.Services, cfg.DelegatedPrincipals)
	}
}

// Every bad file must be refused with an error that names the file, the line
// and the field, and says what is wrong.
func TestBadFilesAreRefusedWithLocatedErrors(t *testing.T) {
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "s3cret")
	cases := map[string][]string{
		"unknown-field.yml":                  {"unknown-field.yml:2:", "global.colection_interval", "not a known field"},
		"inline-secret.yml":                  {"inline-secret.yml:6:", "domains[0].bind.password", "not written inline"},
		"bad-duration.yml":                   {"bad-duration.yml:2:", "global.collection_interval", "not a duration"},
		"short-host.yml":                     {"short-host.yml:3:", "sql_instances[0].host", "fully qualified"},
		"bad-port.yml":                       {"bad-port.yml:4:", "sql_instances[0].port", "between 1 and 65535"},
		"bad-auth-method.yml":                {"bad-auth-method.yml:5:", "sql_instances[0].auth.method", "kerbero"},
		"duplicate-instance.yml":             {"duplicate-instance.yml:5:", "sql_instances[1].name", "listed twice"},
		"missing-secret-env.yml":             {"missing-secret-env.yml:4:", "sql_instances[0].auth.password", "KERBEROS_EXPORTER_TEST_UNSET_VARIABLE is not set"},
		"missing-secret-file.yml":            {"missing-secret-file.yml:4:", "sql_instances[0].auth.password", "cannot be read"},
		"secret-both.yml":                    {"secret-both.yml:4:", "exactly one of file or env"},
		"bad-ldap-url.yml":                   {"bad-ldap-url.yml:3:", "domains[0].domain_controllers[0]", "ldaps://"},
		"skew-thresholds.yml":                {"skew-thresholds.yml:2:", "thresholds.clock_skew_warning", "below clock_skew_critical"},
		"empty.yml":                          {"empty.yml", "empty"},
		"nothing-to-watch.yml":               {"nothing-to-watch.yml", "nothing to watch"},
		"ntlm-fallback-no-password.yml":      {"ntlm-fallback-no-password.yml:7:", "sql_instances[0].auth.ntlm_fallback", "needs auth.password"},
		"not-yaml.yml":                       {"not-yaml.yml:1:", "invalid YAML"},
		"bad-label.yml":                      {"bad-label.yml:2:", "sql_instances[0].name", "letters, digits"},
		"interval-too-short.yml":             {"interval-too-short.yml:2:", "global.collection_interval", "at least 5s, got 1ms"},
		"collector-timeout-too-short.yml":    {"collector-timeout-too-short.yml:2:", "global.collector_timeout", "at least 1s, got 10ms"},
		"sql-timeout-too-short.yml":          {"sql-timeout-too-short.yml:4:", "sql_instances[0].timeout", "at least 100ms, got 1ms"},
		"negative-ntlm-clients-top.yml":      {"negative-ntlm-clients-top.yml:4:", "sql_instances[0].ntlm_clients_top", "between 0 and 1000, got -5"},
		"negative-max-duplicate-spns.yml":    {"negative-max-duplicate-spns.yml:4:", "domains[0].max_duplicate_spns", "not be negative, got -1"},
		"two-documents.yml":                  {"two-documents.yml:5:", "second YAML document"},
		"secret-extra-field.yml":             {`secret-extra-field.yml:7: sql_instances[0].auth.password: "value" is not a field of a secret`, "never the value inline"},
		"list-element-not-mapping.yml":       {"list-element-not-mapping.yml:4: sql_instances[0]: cannot unmarshal", "list-element-not-mapping.yml:11: sql_instances[2].port: must be between 1 and 65535, got 80000"},
		"discovery-template-not-mapping.yml": {"discovery-template-not-mapping.yml:3: discovery.template: cannot unmarshal", "discovery-template-not-mapping.yml:3: discovery: needs at least one configured domain"},
		"insecure-simple-bind.yml":           {"insecure-simple-bind.yml:3:", "domains[0].domain_controllers[1]", "clear text", "allow_insecure_bind"},
		"not-utf8.yml":                       {"not-utf8.yml:4:", "sql_instances[0].service_account", "column 30", "not UTF-8"},
		"bad-etype.yml":                      {"bad-etype.yml:2:", "kerberos.offered_etypes[1]", "des-cbc-md5"},
		"spn-scan-interval-too-short.yml":    {"spn-scan-interval-too-short.yml:2:", "global.spn_scan_interval", "at least 5s, got 1ms"},
		"spn-scan-intervals.yml":             {"spn-scan-intervals.yml:3:", "global.spn_full_scan_interval", "not be below global.spn_scan_interval"},
		"discovery-template-host.yml":        {"discovery-template-host.yml:6:", "discovery.template.host", "not a known field"},
		"discovery-template-auth.yml":        {"discovery-template-auth.yml:6:", "discovery.template.auth.username", "required for sql logins"},
		"discovery-base-dn.yml":              {"discovery-base-dn.yml:5:", "discovery.base_dns[0]", "under a configured domain"},
		"discovery-template-bounds.yml":      {"discovery-template-bounds.yml:7: discovery.template.ntlm_clients_top: must be between 0 and 1000, got -5", "discovery-template-bounds.yml:8: discovery.template.timeout: must be at least 100ms, got 1ns"},
		"discovery-pattern.yml":              {"discovery-pattern.yml:5:", "discovery.include[0]", "shell pattern"},
		"bad-max-concurrent-instances.yml":   {"bad-max-concurrent-instances.yml:2:", "global.max_concurrent_instances", "between 1 and 1024"},
		"several-defects.yml":                {"several-defects.yml:3:", "several-defects.yml:15:", "second YAML document"},
		"bad-lookup-concurrency.yml":         {"bad-lookup-concurrency.yml:2: global.dns_concurrency: must be between 1 and 256, got -1", "bad-lookup-concurrency.yml:3: global.kdc_concurrency: must be between 1 and 256, got 1000"},
		"bad-lookup-cache-ttl.yml":           {"bad-lookup-cache-ttl.yml:2: global.dns_cache_ttl: must be between 0s (off) and 24h0m0s, got 25h0m0s", "bad-lookup-cache-ttl.yml:3: global.kdc_ticket_cache_ttl: must be between 0s (off) and 24h0m0s, got 48h0m0s"},
	}
	files, _ := filepath.Glob("testdata/bad/*.yml")
	if len(files) != len(cases) {
		t.Errorf("%d bad files but %d cases: every bad file needs its expected error", len(files), len(cases))
	}
	for _, f := range files {
		want, ok := cases[filepath.Base(f)]
		if !ok {
			t.Errorf("%s has no expected error", f)
			continue
		}
		_, err := Load(f)
		if err == nil {
			t.Errorf("%s: loaded, want an error", f)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", f, err, w)
			}
		}
	}
}

// Git keeps no permissions but the executable bit: the secret in testdata
// is made private here, as an operator must make theirs.
func TestMain(m *testing.M) {
	if err := os.Chmod("testdata/secret.txt", 0o600); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// Secret files and keytabs: readable by every user is refused with the
// chmod that fixes it; readable by the group is fine when the group is the
// exporter's own (root:kerberos_exporter 0640) and a warning otherwise.
func TestSecretFilePermissions(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "password")
	keytab := filepath.Join(dir, "krbmon.keytab")
	for _, f := range []string{secret, keytab} {
		if err := os.WriteFile(f, []byte("s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	own, other := os.Getgid(), otherGroup(t)
	cfg := fmt.Sprintf("kerberos: {principal: krbmon@CORP.TEST, keytab_file: %s}\nsql_instances:\n  - name: a\n    host: a.corp.test\n    auth: {method: sql, username: u, password: {file: %s}}\n", keytab, secret)
	for _, tc := range []struct {
		file      string
		mode      os.FileMode
		gid       int
		err, warn string
	}{
		{secret, 0o600, own, "", ""},
		{secret, 0o644, own, "sql_instances[0].auth.password: " + secret + " holds a secret but every user may access it (mode 0644): run chmod o-rwx " + secret + " (a read-only secret mount sets it: Kubernetes defaultMode: 0440 or 0400, compose mode: 0440)", ""},
		{secret, 0o640, own, "", ""},
		{secret, 0o640, other, "", "sql_instances[0].auth.password: " + secret + " holds a secret and its group, which the exporter is not in, may read it (mode 0640)"},
		{keytab, 0o604, own, "kerberos.keytab_file: " + keytab + " holds a secret but every user may access it (mode 0604): run chmod o-rwx", ""},
		{keytab, 0o660, own, "", ""},
		{keytab, 0o660, other, "", "kerberos.keytab_file: " + keytab + " holds a secret and its group, which the exporter is not in, may read it"},
	} {
		if tc.gid < 0 {
			continue // no group to give the file away to: not root
		}
		for _, f := range []string{secret, keytab} {
			_ = os.Chmod(f, 0o600)
			_ = os.Chown(f, -1, own)
		}
		if err := os.Chown(tc.file, -1, tc.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tc.file, tc.mode); err != nil {
			t.Fatal(err)
		}
		c, err := Parse("perm.yml", []byte(cfg))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s %04o gid %d: refused: %v", tc.file, tc.mode, tc.gid, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s %04o gid %d: err %v, want %q", tc.file, tc.mode, tc.gid, err, tc.err)
		case err == nil && tc.warn == "" && len(c.Warnings) > 0:
			t.Errorf("%s %04o gid %d: unexpected warnings %q", tc.file, tc.mode, tc.gid, c.Warnings)
		case err == nil && tc.warn != "" && !strings.Contains(strings.Join(c.Warnings, "\n"), tc.warn):
			t.Errorf("%s %04o gid %d: warnings %q, want %q", tc.file, tc.mode, tc.gid, c.Warnings, tc.warn)
		}
	}
}

// otherGroup is a gid the process is not in (nobody's 65534), or -1 when
// the test cannot give a file to it (only root may chown to any group).
func otherGroup(t *testing.T) int {
	if os.Getuid() != 0 {
		t.Log("not root: the other-group cases are skipped")
		return -1
	}
	groups, _ := os.Getgroups()
	for _, g := range append(groups, os.Getgid()) {
		if g == 65534 {
			t.Log("in group 65534: the other-group cases are skipped")
			return -1
		}
	}
	return 65534
}

// Settings that weaken LDAP security are allowed when asked for, loudly.
func TestInsecureLDAPSettingsWarn(t *testing.T) {
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "s3cret")
	c, err := Parse("w.yml", []byte("domains:\n  - name: corp.test\n    domain_controllers: [ldap://dc1.corp.test]\n    tls: {insecure_skip_verify: true}\n    bind: {username: u@corp.test, password: {env: KERBEROS_EXPORTER_TEST_PASSWORD}, allow_insecure_bind: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(c.Warnings, "\n")
	for _, want := range []string{"w.yml:4: domains[0].tls.insecure_skip_verify: is true", "w.yml:5: domains[0].bind.allow_insecure_bind: is true"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
	// StartTLS protects the bind: no error, no warning.
	c, err = Parse("s.yml", []byte("domains:\n  - name: corp.test\n    domain_controllers: [ldap://dc1.corp.test]\n    tls: {start_tls: true}\n    bind: {username: u@corp.test, password: {env: KERBEROS_EXPORTER_TEST_PASSWORD}}\n"))
	if err != nil || len(c.Warnings) > 0 {
		t.Errorf("StartTLS: err %v, warnings %q", err, c.Warnings)
	}
}

// A file over the size cap is refused before it is parsed.
func TestOversizedFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.yml")
	data := append([]byte("global:\n  collection_interval: 60s\n# "), bytes.Repeat([]byte("x"), MaxFileSize)...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "huge.yml: file is larger than 4 MiB") {
		t.Fatalf("err = %v, want the size cap named", err)
	}
}

// A file with several problems reports all of them, not only the first.
func TestAllErrorsAreReported(t *testing.T) {
	_, err := Parse("multi.yml", []byte("global:\n  colector_timeout: 5s\nsql_instances:\n  - name: a\n    host: a\n    port: 99999\n    auth: {method: sql, username: u, password: x}\n"))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, w := range []string{"multi.yml:2: global.colector_timeout", "multi.yml:7: sql_instances[0].auth.password"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// A file with defects of every stage (a second document, values that do
// not decode, values that decode but are wrong, a secret that cannot be
// read) reports them all in one pass, each once, in line order.
func TestEveryDefectReportedOnceInLineOrder(t *testing.T) {
	_, err := Load("testdata/bad/several-defects.yml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v (%T), want config.Errors", err, err)
	}
	f := "testdata/bad/several-defects.yml"
	want := []string{
		f + ":3: global.colection_interval: field colection_interval is not a known field of Global",
		f + `:4: global.collector_timeout: "soon" is not a duration such as 30s or 5m`,
		f + ":8: domains[0].bind.password: secrets are not written inline: give {file: PATH} or {env: NAME}",
		f + `:11: sql_instances[0].host: must be a fully qualified name (SPNs use the FQDN), got "sqla"`,
		f + ":12: sql_instances[0].port: must be between 1 and 65535, got 70000",
		f + `:13: sql_instances[0].encrypt: must be disable, false, true or strict, got "maybe"`,
		f + ":14: sql_instances[0].auth.password: cannot be read: open testdata/no-such-secret: no such file or directory",
		f + ":15: a second YAML document: the configuration is one document (remove the --- separator and what follows, or merge it)",
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A field that could not be decoded is reported for what is wrong with
// it, not again as missing; and a YAML syntax error says that checking
// stopped there.
func TestDecodeErrorsAreNotRepeatedAsMissing(t *testing.T) {
	_, err := Parse("x.yml", []byte("sql_instances:\n  - name: a\n    host: a.corp.test\n    auth: {method: sql, username: u, password: hunter2}\n"))
	if err == nil || strings.Count(err.Error(), "sql_instances[0].auth.password") != 1 || !strings.Contains(err.Error(), "not written inline") {
		t.Errorf("err = %v, want the inline secret reported once", err)
	}
	// Two steps up is another matter: discovery still needs a domain.
	_, err = ParseStatic("z.yml", []byte("sql_instances:\n  - name: a\n    host: a.corp.test\n    auth: {method: windows}\ndiscovery:\n  template:\n    timeout: soon\n"))
	if err == nil || !strings.Contains(err.Error(), "discovery: needs at least one configured domain") || !strings.Contains(err.Error(), "z.yml:7: discovery.template.timeout") {
		t.Errorf("err = %v, want both the bad template field and the missing domain", err)
	}
	_, err = Parse("y.yml", []byte("global:\n  collection_interval: 30s\n---\nsql_instances: [\n"))
	if err == nil || !strings.Contains(err.Error(), "y.yml:4: invalid YAML") || !strings.Contains(err.Error(), "the rest of the file was not checked") {
		t.Errorf("err = %v, want the syntax error in the second document, and that checking stopped", err)
	}
}

// A list element that cannot be decoded (yaml.v3 leaves it out and moves
// the rest up) does not shift the others: each defect after it is reported
// under its own index and line, none hidden as related to the bad element.
func TestUndecodableListElementKeepsTheOthersInPlace(t *testing.T) {
	f := "testdata/bad/list-element-not-mapping.yml"
	_, err := Load(f)
	want := []string{
		f + ":4: sql_instances[0]: cannot unmarshal !!int `5` into config.SQLInstance",
		f + ":7: sql_instances[1].port: must be between 1 and 65535, got 70000",
		f + ":11: sql_instances[2].port: must be between 1 and 65535, got 80000",
		f + ":13: sql_instances[3]: cannot unmarshal !!seq into config.SQLInstance",
		f + `:14: sql_instances[4].encrypt: must be disable, false, true or strict, got "maybe"`,
		f + ":18: services[0].spns[1]: cannot unmarshal !!map into string",
		f + `:18: services[0].spns[2]: must look like class/host[:port], got "HTTP app"`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("errors:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	// In flow style the bad elements share their line with the others (on
	// one line, what cannot be decoded comes first).
	_, err = ParseStatic("flow.yml", []byte("sql_instances: [5, {name: a, host: a.corp.example.com, port: 70000, auth: {method: windows}}, 6]\n"))
	want = []string{
		"flow.yml:1: sql_instances[0]: cannot unmarshal !!int `5` into config.SQLInstance",
		"flow.yml:1: sql_instances[2]: cannot unmarshal !!int `6` into config.SQLInstance",
		"flow.yml:1: sql_instances[1].port: must be between 1 and 65535, got 70000",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("errors:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// A field that cannot be decoded hides only what lies inside it: the
// defects of the section around it are still reported.
func TestUndecodableFieldDoesNotHideItsSection(t *testing.T) {
	for _, discovery := range []string{"{template: 3}", "{pattern: 3}", "\n  template: 3", "\n  pattern: 3", "{template: {timeout: soon}}"} {
		data := "sql_instances: [{name: a, host: a.corp.example.com, auth: {method: windows}}]\ndiscovery: " + discovery + "\n"
		_, err := ParseStatic("d.yml", []byte(data))
		if err == nil || !strings.Contains(err.Error(), "discovery: needs at least one configured domain") {
			t.Errorf("discovery: %s: err = %v, want the missing domain reported", discovery, err)
		}
	}
	// The secret itself is what failed: not also reported as empty.
	_, err := Parse("s.yml", []byte("sql_instances: [{name: a, host: a.corp.example.com, auth: {method: sql, username: u, password: {env: X, value: y}}}]\n"))
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), `s.yml:1: sql_instances[0].auth.password: "value" is not a field of a secret`) {
		t.Errorf("err = %v, want only the refused secret field", err)
	}
	_, err = Parse("s.yml", []byte("sql_instances:\n  - name: a\n    host: a.corp.example.com\n    auth:\n      method: sql\n      username: u\n      password:\n        file: [x]\n"))
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "s.yml:8: sql_instances[0].auth.password: file must be a path") {
		t.Errorf("err = %v, want only the secret's bad file", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "TopSecretValue")
	cfg, err := Load("testdata/good/minimal-domain.yml")
	if err != nil {
		t.Fatal(err)
	}
	pw := cfg.Domains[0].Bind.Password
	if pw.Value() != "TopSecretValue" {
		t.Fatalf("secret not resolved: %q", pw.Value())
	}
	for _, s := range []string{pw.String(), strings.TrimSpace(sprintf("%v %+v %s", pw, cfg.Domains[0].Bind, pw))} {
		if strings.Contains(s, "TopSecretValue") {
			t.Errorf("secret leaked in %q", s)
		}
	}
}

func TestSecretFromFileTrimsNewline(t *testing.T) {
	cfg, err := Load("testdata/good/minimal-sql.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SQLInstances[0].Auth.Password.Value(); got != "Passw0rd!Sql1" {
		t.Errorf("secret = %q", got)
	}
}

func TestDefaults(t *testing.T) {
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "x")
	cfg, err := Load("testdata/good/minimal-domain.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Global.CollectionInterval.Duration() != time.Minute || cfg.Global.CollectorTimeout.Duration() != 30*time.Second {
		t.Errorf("interval/timeout defaults: %s %s", cfg.Global.CollectionInterval, cfg.Global.CollectorTimeout)
	}
	if cfg.Global.SPNScanInterval.Duration() != 5*time.Minute || cfg.Global.SPNFullScanInterval.Duration() != time.Hour {
		t.Errorf("SPN scan interval defaults: %s %s", cfg.Global.SPNScanInterval, cfg.Global.SPNFullScanInterval)
	}
	if cfg.Domains[0].BaseDN != "DC=corp,DC=test" {
		t.Errorf("base dn = %q", cfg.Domains[0].BaseDN)
	}
	if cfg.Thresholds.ClockSkewWarning.Duration() != 60*time.Second || cfg.Thresholds.ClockSkewCritical.Duration() != 240*time.Second {
		t.Errorf("skew thresholds: %s %s", cfg.Thresholds.ClockSkewWarning, cfg.Thresholds.ClockSkewCritical)
	}
}

// FuzzParse: the loader must never panic, and whatever it accepts must
// satisfy the invariants the rest of the exporter relies on.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yml")
	files = append(files, "../config.example.yml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseStatic("fuzz.yml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if cfg.Global.CollectionInterval <= 0 || cfg.Global.CollectorTimeout > cfg.Global.CollectionInterval {
			t.Fatalf("accepted bad timing: %+v", cfg.Global)
		}
		seen := map[string]bool{}
		for _, s := range cfg.SQLInstances {
			if s.Name == "" || seen[s.Name] || s.Port < 0 || s.Port > 65535 {
				t.Fatalf("accepted bad instance: %+v", s)
			}
			seen[s.Name] = true
		}
	})
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func TestDiscoveryTemplateMakesInstances(t *testing.T) {
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "s3cret")
	cfg, err := Load("testdata/good/discovery.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Discovery.RefreshInterval.Duration(); got != 15*time.Minute {
		t.Errorf("refresh_interval = %s", got)
	}
	s := cfg.InstanceFromTemplate("sql02.corp.example.com:1444", "sql02.corp.example.com", 1444, "", "corp.example.com")
	if !s.Discovered || s.Auth.Username != "krbmon_sql" || s.Auth.Password.Value() != "s3cret" || s.Encrypt != "true" ||
		s.Timeout.Duration() != 5*time.Second || s.LinkedServers.Timeout.Duration() != 5*time.Second || s.NTLMClientsTop != DefaultNTLMClientsTop || *s.ExpectKerberos {
		t.Errorf("discovered instance %+v", s)
	}
	if d := cfg.DomainOfDN("ou=sql servers, dc=CORP,dc=example,dc=com"); d == nil || d.Name != "corp.example.com" {
		t.Errorf("DomainOfDN = %v", d)
	}
	if d := cfg.DomainOfDN("DC=example,DC=com"); d != nil {
		t.Errorf("the parent of the domain is not in it: %v", d)
	}
}
