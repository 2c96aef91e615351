package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// configField is one field of the configuration file as the Go types
// declare it: its path (sql_instances[].auth.method) and its type as
// docs/configuration.md names it.
type configField struct {
	path, kind string
}

// configFields walks the configuration's types by their yaml tags. A
// section type met a second time (discovery.template.auth is an
// sql_instances[].auth) is one "object" row, documented where first met.
func configFields() []configField {
	secret := reflect.TypeOf(config.Secret{})
	duration := reflect.TypeOf(config.Duration(0))
	pkg := reflect.TypeOf(config.Config{}).PkgPath()
	seen := map[reflect.Type]bool{}
	var out []configField
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			path := prefix + tag
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			list := ""
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				ft, list = ft.Elem(), "[]"
			}
			switch {
			case ft == secret:
				out = append(out, configField{path, "secret"})
			case ft == duration:
				out = append(out, configField{path, "duration"})
			case ft.Kind() == reflect.Struct && ft.PkgPath() == pkg:
				if prefix != "" { // top-level sections are headings, not rows
					out = append(out, configField{path + list, "object"})
				}
				if !seen[ft] {
					seen[ft] = true
					walk(ft, path+list+".")
				}
			case ft.Kind() == reflect.Bool:
				out = append(out, configField{path, "boolean"})
			case ft.Kind() == reflect.Int:
				out = append(out, configField{path, "integer"})
			case ft.Kind() == reflect.String:
				out = append(out, configField{path, "string"})
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
				out = append(out, configField{path, "list of strings"})
			default:
				out = append(out, configField{path, "unknown type " + ft.String()})
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}), "")
	return out
}

// configRow is a row of docs/configuration.md: field, type, default, meaning.
var configRow = regexp.MustCompile("^\\|\\s*`([a-z0-9_\\[\\]\\.]+)`\\s*\\|\\s*([^|]*?)\\s*\\|\\s*([^|]*?)\\s*\\|")

// singleLiteral is a default stated as one value in backquotes.
var singleLiteral = regexp.MustCompile("^`([^`]+)`$")

// TestConfigurationReference: docs/configuration.md has one row per field
// of the configuration, none for a field that does not exist, each with its
// type; a default stated as a single value is the one the loader applies.
func TestConfigurationReference(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ kind, def string }
	rows := map[string]row{}
	for _, l := range strings.Split(string(data), "\n") {
		m := configRow.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/configuration.md: %s has two rows", m[1])
		}
		rows[m[1]] = row{m[2], m[3]}
	}
	fields := configFields()
	known := map[string]bool{}
	for _, f := range fields {
		known[f.path] = true
		r, ok := rows[f.path]
		switch {
		case !ok:
			t.Errorf("docs/configuration.md has no row for %s (%s)", f.path, f.kind)
		case r.kind != f.kind:
			t.Errorf("docs/configuration.md: %s is a %s, the row says %q", f.path, f.kind, r.kind)
		}
	}
	for path := range rows {
		if !known[path] {
			t.Errorf("docs/configuration.md has a row for %s, which the configuration does not have", path)
		}
	}

	cfg := parseDefaultsConfig(t)
	checked := 0
	for path, r := range rows {
		m := singleLiteral.FindStringSubmatch(r.def)
		if m == nil || !known[path] {
			continue
		}
		v, ok := valueAt(cfg, path)
		if !ok {
			t.Errorf("docs/configuration.md: %s: no value to compare the default %s with", path, r.def)
			continue
		}
		if got, want := formatValue(v), normaliseLiteral(v, m[1]); got != want {
			t.Errorf("docs/configuration.md says %s defaults to %s; the loader makes it %s", path, m[1], got)
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("compared only %d defaults; has the table format changed?", checked)
	}
}

// parseDefaultsConfig is the least configuration that has every section
// (one of each list), so that the loader fills in every default.
func parseDefaultsConfig(t *testing.T) *config.Config {
	t.Helper()
	const minimal = `
domains:
  - name: corp.example.com
    domain_controllers: [ldaps://dc1.corp.example.com:636]
    bind: {username: u@corp.example.com, password: {env: UNUSED}}
sql_instances:
  - name: sqla
    host: sqla.corp.example.com
    auth: {method: sql, username: u, password: {env: UNUSED}}
discovery:
  template:
    auth: {method: sql, username: u, password: {env: UNUSED}}
`
	cfg, err := config.ParseStatic("defaults.yml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// valueAt follows a documented path through the loaded configuration; the
// first element of each list stands for all. discovery.template.X is read
// from an instance discovery makes, which is where its defaults apply.
func valueAt(cfg *config.Config, path string) (reflect.Value, bool) {
	v := reflect.ValueOf(cfg).Elem()
	if rest, ok := strings.CutPrefix(path, "discovery.template."); ok {
		inst := cfg.InstanceFromTemplate("d", "d.corp.example.com", 0, "", "")
		v, path = reflect.ValueOf(inst), rest
	}
	for _, step := range strings.Split(path, ".") {
		name, isList := strings.CutSuffix(step, "[]")
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		}
		found := false
		for i := 0; i < v.NumField(); i++ {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return v, false
		}
		if isList {
			if v.Len() == 0 {
				return v, false
			}
			v = v.Index(0)
		}
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return v, false
		}
		v = v.Elem()
	}
	return v, true
}

func formatValue(v reflect.Value) string {
	if d, ok := v.Interface().(config.Duration); ok {
		return d.Duration().String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int:
		return strconv.FormatInt(v.Int(), 10)
	default:
		return v.String()
	}
}

// normaliseLiteral writes a documented default as formatValue writes the
// loaded one (60s and 1m0s are the same duration).
func normaliseLiteral(v reflect.Value, literal string) string {
	if _, ok := v.Interface().(config.Duration); ok {
		if d, err := time.ParseDuration(literal); err == nil {
			return d.String()
		}
	}
	return literal
}

// TestReadmeMinimalConfigLoads: the README's configuration is a real one.
// It is loaded as the exporter loads it, with the files it names made, as
// an administrator would, under a temporary directory.
func TestReadmeMinimalConfigLoads(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(string(data))
	if block == nil {
		t.Fatal("README.md has no ```yaml block")
	}
	yml := block[1]
	dir := t.TempDir()
	for _, m := range regexp.MustCompile(`/etc/kerberos_exporter/[^\s,}\]]+`).FindAllString(yml, -1) {
		local := filepath.Join(dir, strings.TrimPrefix(m, "/etc/kerberos_exporter/"))
		if err := os.WriteFile(local, []byte("placeholder\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		yml = strings.ReplaceAll(yml, m, local)
	}
	for _, m := range regexp.MustCompile(`\{env: ([A-Z0-9_]+)\}`).FindAllStringSubmatch(yml, -1) {
		t.Setenv(m[1], "a-password")
	}
	file := filepath.Join(dir, "kerberos_exporter.yml")
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("the README's configuration does not load:\n%v", err)
	}
	if len(cfg.SQLInstances) == 0 || len(cfg.Domains) == 0 {
		t.Errorf("the README's configuration watches %d instances in %d domains; it should show one of each", len(cfg.SQLInstances), len(cfg.Domains))
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("the README's configuration loads with warnings: %v", cfg.Warnings)
	}
}
