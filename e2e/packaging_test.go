package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxUnitExposure is the highest `systemd-analyze security` exposure the
// example unit may have (0 is locked down, 10 is fully exposed).
const maxUnitExposure = 3.0

// The example systemd unit is hardened: systemd's own offline review
// scores it under 3.
func TestSystemdUnitSecurityScore(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd; testenv/install-deps.sh installs it)")
	}
	unit := filepath.Join(repoRoot(t), "examples", "kerberos_exporter.service")
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for kerberos_exporter\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	if score >= maxUnitExposure {
		t.Errorf("exposure %.1f, want under %.1f:\n%s", score, maxUnitExposure, out)
	}
	t.Logf("systemd-analyze security: exposure %.1f", score)
}

// PrivateTmp gives the service its own /tmp, so a credential cache the
// configuration example points at must live elsewhere, where the unit lets
// the service read it.
func TestCCachePathWorksWithTheUnit(t *testing.T) {
	root := repoRoot(t)
	unit, err := os.ReadFile(filepath.Join(root, "examples", "kerberos_exporter.service"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "config.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*#?\s*ccache_file:\s*(/\S+)`).FindSubmatch(example)
	if m == nil {
		t.Fatal("config.example.yml shows no ccache_file path")
	}
	path := string(m[1])
	if strings.Contains(string(unit), "PrivateTmp=true") && strings.HasPrefix(path, "/tmp/") {
		t.Errorf("ccache_file %s is under /tmp, which PrivateTmp=true hides from the service", path)
	}
	if !strings.Contains(string(unit), "StateDirectory=kerberos_exporter") || !strings.HasPrefix(path, "/var/lib/kerberos_exporter/") {
		t.Errorf("ccache_file %s is not in the unit's StateDirectory /var/lib/kerberos_exporter", path)
	}
}

// The Dockerfile's base images are pinned by digest.
func TestDockerfilePinsBaseImagesByDigest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	pinned := regexp.MustCompile(`@sha256:[0-9a-f]{64}(\s|$)`)
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.EqualFold(f[0], "FROM") {
			n++
			if !pinned.MatchString(l) {
				t.Errorf("base image not pinned by digest: %s", l)
			}
		}
	}
	if n == 0 {
		t.Error("no FROM line in the Dockerfile")
	}
}

// `make build` stamps the binary as Prometheus exporters are stamped: the
// release from VERSION, and the checkout's revision and branch, and the
// build date, all shown by --version.
func TestMakeBuildStampsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary with make")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "kerberos_exporter")
	if out, err := exec.Command("make", "-C", root, "build", "OUT="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	want, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	if !strings.Contains(text, "version "+strings.TrimSpace(string(want))+" ") {
		t.Errorf("--version does not show version %q:\n%s", strings.TrimSpace(string(want)), text)
	}
	if rev, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		if !strings.Contains(text, "revision: "+strings.TrimSpace(string(rev))) {
			t.Errorf("--version does not show revision %s:\n%s", strings.TrimSpace(string(rev)), text)
		}
	}
	for _, field := range []string{`branch: [^,)\s]+`, `build date:\s+\d{8}-\d\d:\d\d:\d\d`, `build user:\s+\S+@\S+`} {
		if !regexp.MustCompile(field).MatchString(text) {
			t.Errorf("--version lacks %s:\n%s", field, text)
		}
	}
}
