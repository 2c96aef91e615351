package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/internal/firstseen"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// TestFirstSeenSurvivesRestart runs the real binary with a state directory
// against the world, stops it and starts it again: every finding's and root
// cause's first-seen time is the one the first run gave it.
func TestFirstSeenSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs the Samba world; skipped under -short")
	}
	w, err := world.Start()
	if err != nil {
		t.Fatalf("test world: %v", err)
	}
	group := startStandIns(t, w)
	defer group.Close()

	dir := t.TempDir()
	cfgFile := writeDemoConfig(t, w, dir)
	bin := buildExporter(t, dir)
	state := filepath.Join(dir, "state", "kerberos_exporter") // created by the exporter

	firstSeen := func(run string) (map[string]string, string) {
		t.Helper()
		addr := freeAddr(t)
		var logs syncBuffer
		cmd := exec.Command(bin, "--config.file="+cfgFile, "--web.listen-address="+addr, "--state.directory="+state)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		body := waitForCollection(t, "http://"+addr)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s run: exporter exited with %v:\n%s", run, err, logs.String())
		}
		times := map[string]string{}
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "kerberos_finding_first_seen_timestamp_seconds{") || strings.HasPrefix(line, "kerberos_root_cause_first_seen_timestamp_seconds{") {
				i := strings.LastIndexByte(line, ' ')
				times[line[:i]] = line[i+1:]
			}
		}
		if t.Failed() {
			t.Logf("%s run's log:\n%s", run, logs.String())
		}
		return times, body
	}

	before, body := firstSeen("first")
	findings := strings.Count(body, "\nkerberos_finding{")
	stamped := 0
	for series := range before {
		if strings.HasPrefix(series, "kerberos_finding_first_seen_timestamp_seconds{") {
			stamped++
		}
	}
	if findings == 0 || stamped != findings {
		t.Fatalf("first run: %d findings, %d with a first-seen time; want every one stamped", findings, stamped)
	}
	if _, err := os.Stat(filepath.Join(state, firstseen.FileName)); err != nil {
		t.Fatalf("the first run left no state file: %v", err)
	}

	after, _ := firstSeen("second")
	// Tests of other packages may add a finding to the shared world for a
	// moment (an account with a duplicate SPN): compare what both runs saw.
	common := 0
	for series, v := range before {
		got, ok := after[series]
		if !ok {
			continue
		}
		common++
		if got != v {
			t.Errorf("%s: %s before the restart, %s after", series, v, got)
		}
	}
	stable := `kerberos_finding_first_seen_timestamp_seconds{check="first_hop_ntlm",severity="critical",target="sqlc"}`
	if _, ok := after[stable]; !ok || common < len(before)/2 {
		t.Errorf("the runs share %d of %d first-seen series (want most, %s among them)", common, len(before), stable)
	}
}
