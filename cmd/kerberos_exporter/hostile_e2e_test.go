package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// hostileUser is the Samba fixtures' hostile account (testenv/samba/fixtures.sh,
// hostile_account): sensitive, with an SPN, its name made of PowerShell quotes.
const hostileUser = "CORP\\o'b\u2019r\u2018$(x)`"

// The real path for hostile names: the SQL Server stand-in's hostile
// scenario (linked servers, client hosts and error-log text made to become
// code or terminal control) and the Samba fixtures' odd account, through
// the collectors, the diagnosis and `check --fix-script`.
func TestCheckWithHostileNames(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Samba world; skipped under -short")
	}
	w, err := world.Start()
	if err != nil {
		t.Fatalf("test world: %v", err)
	}
	var scs []*tdsserver.Scenario
	for _, name := range []string{"sqlb", "hostile"} {
		sc, err := tdsserver.LoadScenario(filepath.Join("..", "..", "testenv", "scenarios", name+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	g, err := tdsserver.StartGroup(scs, tdsserver.GroupOptions{EphemeralPorts: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	host, port, _ := net.SplitHostPort(g.Server("hostile").Addr())

	dir := t.TempDir()
	cfgFile := writeDemoConfig(t, w, dir)
	demo, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	head := string(demo[:strings.Index(string(demo), "sql_instances:")])
	cfg := head + `sql_instances:
  - name: sqlh
    host: sqlc.corp.test
    address: ` + host + `
    port: ` + port + `
    encrypt: disable
    timeout: 5s
    auth: {method: kerberos, ntlm_fallback: true, username: krbmon, password: {file: ` + filepath.Join(w.Dir, "secrets", "krbmon-password") + `}}
    linked_servers: {test: ["*"]}
delegated_principals:
  users: ["` + strings.ReplaceAll(hostileUser, `\`, `\\`) + `"]
dns:
  servers: [127.0.0.1:53]
  timeout: 2s
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _ := os.Create(filepath.Join(dir, "stdout"))
	stderr, _ := os.Create(filepath.Join(dir, "stderr"))
	fix := filepath.Join(dir, "fix.ps1")
	code := run([]string{"--config.file", cfgFile, "check", "--fix-script", fix}, stdout, stderr)
	stdout.Close()
	stderr.Close()
	report, _ := os.ReadFile(stdout.Name())
	logs, _ := os.ReadFile(stderr.Name())
	script, err := os.ReadFile(fix)
	if err != nil {
		t.Fatalf("check exited %d without a fix script: %v\n%s", code, err, logs)
	}
	if code != checkCritical {
		t.Errorf("check exited %d, want 1 (critical findings)", code)
	}
	for what, out := range map[string]string{"text report": string(report), "log": string(logs), "fix script": string(script)} {
		for i, r := range out {
			if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029') {
				t.Errorf("%s: raw %U at byte %d: %q", what, r, i, out[max(0, i-60):min(len(out), i+20)])
				break
			}
		}
	}
	// The names did flow through, escaped.
	for _, want := range []string{`EVIL\nStart-Process calc #`, `CLEAR\x1b[2J`} {
		if !strings.Contains(string(report), want) || !strings.Contains(string(script), want) {
			t.Errorf("report or fix script lacks the escaped name %q", want)
		}
	}
	if !strings.Contains(string(report), hostileUser[strings.Index(hostileUser, `\`)+1:]) {
		t.Errorf("report lacks the Samba fixture's hostile user %q", hostileUser)
	}
	// Every line of the script is a comment or one of our commands.
	commands := []string{"setspn ", "dsacls ", "w32tm ", "throw ", "$ErrorActionPreference ", "Set-AD", "Enable-ADAccount ", "Unlock-ADAccount ",
		"Remove-ADGroupMember ", "Add-DnsServerResourceRecord", "Remove-DnsServerResourceRecord "}
	for _, l := range strings.Split(string(script), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		ok := false
		for _, c := range commands {
			ok = ok || strings.HasPrefix(l, c)
		}
		if !ok {
			t.Errorf("fix script line is not one of our commands: %q", l)
		}
	}
	t.Logf("fix script:\n%s", script)

	// The same scenario served: the alerts follow its findings too, with
	// hostile text in the labels the promtool input has to carry.
	t.Run("alerts follow the findings", func(t *testing.T) {
		bin := buildExporter(t, dir)
		addr := freeAddr(t)
		var logs syncBuffer
		cmd := exec.Command(bin, "--config.file="+cfgFile, "--web.listen-address="+addr)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("exporter log:\n%s", logs.String())
			}
		}()
		checkAlertsAgree(t, waitForCollection(t, "http://"+addr))
	})
}
