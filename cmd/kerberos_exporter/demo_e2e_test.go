package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// demoCritical is how many critical findings the demo's world has: the
// world's deliberate defects (see testenv/README.md). Change it together
// with testdata/e2e-output.txt when a scenario or a check changes them.
const demoCritical = 9

// TestDemoFirstReportIsSteady runs the real `make demo` script (world,
// stand-ins, exporter on a free port, its files in a temporary directory)
// and checks that the exporter's first report is its steady one: the
// findings of the first completed cycle equal those of the next, so the
// demo never shows, even for one cycle, instances that were only still
// starting. It uses the stand-ins' own addresses, as TestEndToEnd does
// (the two run one after the other, never at once).
func TestDemoFirstReportIsSteady(t *testing.T) {
	w := world.ForTest(t)
	run := t.TempDir()
	addr := freeAddr(t)
	script, err := filepath.Abs("../../testenv/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	demo := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(),
			"KERBEROS_TESTENV_DIR="+w.Dir,
			"KERBEROS_DEMO_DIR="+run,
			"DEMO_LISTEN="+addr,
			// One cycle at start and then only the one the test triggers:
			// the first report fetched is certainly the first cycle's.
			"DEMO_COLLECTION_INTERVAL=10m",
			// Slow stand-ins: an exporter that did not wait for them
			// would certainly find them down in its first cycle.
			"DEMO_STANDIN_START_DELAY=3s",
		)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Whatever happens below, the demo's processes go; the world, which
	// other tests share, stays.
	t.Cleanup(func() {
		if out, err := demo("stop", "--keep-world"); err != nil {
			t.Errorf("demo.sh stop --keep-world: %v\n%s", err, out)
		}
	})
	logs := func() string {
		var b strings.Builder
		for _, f := range []string{"exporter.log", "sqlstandin.log"} {
			data, _ := os.ReadFile(filepath.Join(run, f))
			fmt.Fprintf(&b, "--- %s:\n%s\n", f, data)
		}
		return b.String()
	}

	out, err := demo("up")
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s\n%s", err, out, logs())
	}
	if !strings.Contains(out, fmt.Sprintf("first collection: %d critical", demoCritical)) {
		t.Errorf("demo.sh does not report %d critical findings for the first collection:\n%s", demoCritical, out)
	}
	base := "http://" + addr
	firstBody := fetchBody(t, base+"/metrics")
	firstAt := lastCollection(t, firstBody)
	first := findingSet(t, firstBody)

	// The next cycle, at once: a reload of the same file starts one.
	resp, err := http.Post(base+"/-/reload", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: status %d", resp.StatusCode)
	}
	var steadyBody string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		steadyBody = fetchBody(t, base+"/metrics")
		if lastCollection(t, steadyBody) > firstAt {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no second collection within 2 minutes\n%s", logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	steady := findingSet(t, steadyBody)

	if missing, extra := setDiff(steady, first); len(missing) > 0 || len(extra) > 0 {
		t.Errorf("the first report differs from the steady one:\nonly in the steady report:\n  %s\nonly in the first report:\n  %s\n%s",
			strings.Join(missing, "\n  "), strings.Join(extra, "\n  "), logs())
	}
	for name, set := range map[string]map[string]bool{"first": first, "steady": steady} {
		n := 0
		for f := range set {
			if strings.Contains(f, "severity=critical") {
				n++
			}
		}
		if n != demoCritical {
			t.Errorf("%s report: %d critical findings, want %d", name, n, demoCritical)
		}
	}
}

// lastCollection is kerberos_exporter_last_collection_timestamp_seconds.
func lastCollection(t *testing.T, body string) float64 {
	t.Helper()
	mf, ok := parseFamilies(t, body)["kerberos_exporter_last_collection_timestamp_seconds"]
	if !ok || len(mf.Metric) != 1 {
		t.Fatalf("no completed collection in /metrics")
	}
	return mf.Metric[0].GetGauge().GetValue()
}

// findingSet is the active findings as "check severity=S target" strings.
func findingSet(t *testing.T, body string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	mf, ok := parseFamilies(t, body)["kerberos_finding"]
	if !ok {
		return set
	}
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		set[labels["check"]+" severity="+labels["severity"]+" "+labels["target"]] = true
	}
	return set
}

// setDiff is what a has and b lacks, and the reverse, sorted.
func setDiff(a, b map[string]bool) (onlyA, onlyB []string) {
	for k := range a {
		if !b[k] {
			onlyA = append(onlyA, k)
		}
	}
	for k := range b {
		if !a[k] {
			onlyB = append(onlyB, k)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}
