package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// TestWorldCheckLeadsWithCauses runs `check` on the demo world (make demo's
// configuration and stand-ins) as an operator would: its findings collapse
// to exactly these root causes, most urgent first, the text report leads
// with them, and the fix script writes each command once.
func TestWorldCheckLeadsWithCauses(t *testing.T) {
	w := world.ForTest(t)
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	g := startStandIns(t, w)
	defer g.Close()
	dir := t.TempDir()
	cfgFile := writeDemoConfig(t, w, dir)
	bin := buildExporter(t, dir)
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"check", "--config.file=" + cfgFile}, args...)...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != checkCritical {
			t.Fatalf("check %v: %v, want exit code %d", args, err, checkCritical)
		}
		return out
	}

	fix := filepath.Join(dir, "fix.ps1")
	var report struct {
		Causes []struct {
			Cause, Severity, Subject string
			AffectedCount            int `json:"affected_count"`
			Findings                 []struct{ Check, Target string }
		}
		Groups []struct{ Findings []struct{ Check string } }
	}
	if err := json.Unmarshal(run("--output=json", "--fix-script="+fix), &report); err != nil {
		t.Fatal(err)
	}
	var got []string
	inCauses, findings := 0, 0
	for _, c := range report.Causes {
		got = append(got, fmt.Sprintf("%s %s %s %d", c.Severity, c.Cause, c.Subject, c.AffectedCount))
		inCauses += len(c.Findings)
	}
	for _, g := range report.Groups {
		findings += len(g.Findings)
	}
	want := []string{
		// sqlc: its two SPNs, the failed registration, and the NTLM first
		// hop, the NTLM clients and the failed second hop they explain
		`critical service_account_spns CORP\sqlsvc_c 4`,
		`critical clock_skew 127.0.0.2 1`, // DC2 runs 7 minutes ahead
		`critical host_dns sqlstall.corp.test 1`,
		`critical service_account_cannot_delegate CORP\sqlsvc_c 1`,
		`critical service_account_spns CORP\rptweb 1`,   // the alias's canonical SPN
		`critical service_account_spns CORP\sqlsvc_d 1`, // its SPN on CORP\wrongacct
		`warning spn_form_policy corp.test 14`,          // every short-name and port-less form
		`warning service_account_rc4 CORP\crmweb 2`,
		`warning service_account_rc4 CORP\sqlsvc_f 2`,
		`warning service_account_rc4 CORP\sqlsvc_g 2`,
		`warning service_account_rc4 CORP\sqlsvc_h 2`,
		`warning service_account_rc4 CORP\sqlsvc_old 2`,
		`warning clock_skew sqlb.corp.test 1`,
		`warning delegated_user CORP\alice 1`,
		`warning delegated_user CORP\bob 1`,
		`warning host_dns sqlm.corp.test 1`,
		`warning service_account_rc4 CORP\wrongacct 1`,
		`warning service_account_spns CORP\sqldup1, CORP\sqldup2 1`,
		`warning service_account_spns stall 1`,
		`warning sql_unreachable stall 1`,
		`info exporter_access krbmon_sql 1`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("causes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if inCauses != findings || findings == 0 {
		t.Errorf("the causes hold %d findings, the groups %d", inCauses, findings)
	}

	script, err := os.ReadFile(fix)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(script), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if seen[line] {
			t.Errorf("the fix script repeats %q", line)
		}
		seen[line] = true
	}

	text := string(run())
	lead := strings.Index(text, fmt.Sprintf("%d causes — fix these first", len(want)))
	first := strings.Index(text, ` 1. CRITICAL  service_account_spns  CORP\sqlsvc_c`)
	groups := strings.Index(text, "== SQL instance sqla ==")
	if lead < 0 || first < lead || groups < first {
		t.Errorf("the text report does not lead with the causes:\n%s", text)
	}
}
