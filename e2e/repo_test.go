package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the directory holding go.mod, found from this package's
// directory (go test runs tests in the package directory).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// requireTool returns the path of an external program the test needs. It
// fails the test when the program is missing, except under -short, where it
// skips: CI runs the full suite and must not pass without the real tools.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: not running %s", name)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH: install Debian's packages prometheus and prometheus-alertmanager (testenv/install-deps.sh)", name)
	}
	return path
}

var (
	documentedOnce    sync.Once
	documentedMetrics map[string]bool
	documentedErr     error
)

// metricRow is a table row of docs/metrics.md whose first cell is a metric name.
var metricRow = regexp.MustCompile("^\\|\\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\\s*\\|")

// documented returns the metric names of docs/metrics.md, the contract.
func documented(t testing.TB) map[string]bool {
	t.Helper()
	documentedOnce.Do(func() {
		f, err := os.Open(filepath.Join(repoRoot(t), "docs", "metrics.md"))
		if err != nil {
			documentedErr = err
			return
		}
		defer f.Close()
		documentedMetrics = map[string]bool{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := metricRow.FindStringSubmatch(sc.Text()); m != nil {
				documentedMetrics[m[1]] = true
			}
		}
		documentedErr = sc.Err()
	})
	if documentedErr != nil {
		t.Fatalf("reading docs/metrics.md: %v", documentedErr)
	}
	if len(documentedMetrics) < 20 {
		t.Fatalf("docs/metrics.md: found only %d metric names; has its table format changed?", len(documentedMetrics))
	}
	return documentedMetrics
}

// prometheusOwnMetrics are series Prometheus makes itself, not the exporter.
var prometheusOwnMetrics = map[string]bool{"up": true, "scrape_duration_seconds": true}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func trimLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}
