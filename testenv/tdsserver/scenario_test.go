package tdsserver_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
)

func TestShippedScenariosLoad(t *testing.T) {
	t.Setenv(tdsserver.TestenvDirVar, "/srv/world")
	files, err := filepath.Glob(filepath.Join("..", "scenarios", "*.yml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("scenarios: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := tdsserver.LoadScenario(f); err != nil {
			t.Error(err)
		}
	}
	a, err := tdsserver.LoadScenario(filepath.Join("..", "scenarios", "sqla.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "sqla" || a.Kerberos.Keytab != "/srv/world/keytabs/sqlsvc_a.keytab" || a.Kerberos.Krb5Conf != "/srv/world/krb5.conf" {
		t.Errorf("sqla: name %q, kerberos %+v", a.Name, a.Kerberos)
	}
	b, _ := tdsserver.LoadScenario(filepath.Join("..", "scenarios", "sqlb.yml"))
	if b.ClockOffset.Duration != 90*time.Second {
		t.Errorf("sqlb clock offset %v", b.ClockOffset)
	}
	d, _ := tdsserver.LoadScenario(filepath.Join("..", "scenarios", "sqld.yml"))
	if d.ErrorLogReadable() {
		t.Error("sqld error log readable")
	}
}

func TestScenarioErrorsNameFileAndLine(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"unknown field", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nbehavior: stall\n",
			"bad.yml:4: field behavior not found"},
		{"unknown nested field", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nlinked_servers:\n  - name: B\n    server_id: 1\n    connect: 127.0.0.1:2\n    login: []\n",
			"bad.yml:8: field login not found"},
		{"bad behaviour", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nbehaviour: asleep\n",
			`bad.yml:4: behaviour: want normal or stall, got "asleep"`},
		{"bad listen", "machine_name: X\ndomain: C\nlisten: nowhere\n",
			`bad.yml:3: listen: want host:port`},
		{"bad auth scheme", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nsessions:\n  - session_id: 60\n    auth_scheme: Negotiate\n",
			`bad.yml:6: auth_scheme: want KERBEROS, NTLM or SQL, got "Negotiate"`},
		{"bad clock offset", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nclock_offset: soon\n",
			`bad.yml:4: clock offset "soon"`},
		{"unknown variable", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nkerberos:\n  keytab: ${HOME}/k\n  principal: p\n  realm: R\n  krb5_conf: /k\n",
			"bad.yml:5: kerberos.keytab: unknown variable $HOME"},
		{"mapping without remote name", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nlinked_servers:\n  - name: B\n    server_id: 1\n    connect: 127.0.0.1:2\n    logins:\n      - uses_self_credential: false\n",
			"bad.yml:9: a mapping with uses_self_credential false needs remote_name"},
		{"delegation without spn", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nlinked_servers:\n  - name: B\n    server_id: 1\n    connect: 127.0.0.1:2\n    delegation: true\n",
			"bad.yml:8: delegation needs spn"},
		{"bad log date", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nerror_log:\n  lines:\n    - log_date: yesterday\n      text: x\n",
			"bad.yml:6: log_date \"yesterday\""},
		{"wrong type", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\nlistener_ports: [many]\n",
			"bad.yml:4: cannot unmarshal"},
		{"two documents", "listen: 127.0.0.1:1\nmachine_name: X\ndomain: C\n---\nlisten: 127.0.0.1:2\n",
			"bad.yml: a scenario file holds one YAML document"},
	} {
		_, err := tdsserver.ParseScenario("bad.yml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}
