package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An unusable state directory stops the server at start, with a message
// naming the directory, before it listens or collects.
func TestServeRefusesAnUnusableStateDirectory(t *testing.T) {
	t.Setenv("KERBEROS_EXPORTER_TEST_PASSWORD", "s3cret")
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	args := []string{"--config.file", "../../config/testdata/good/minimal-domain.yml", "--state.directory", notADir, "--web.listen-address", "127.0.0.1:0"}
	if code := run(args, out, out); code != 1 {
		t.Errorf("run with a file as state directory = %d, want 1", code)
	}
	b, _ := os.ReadFile(out.Name())
	if !strings.Contains(string(b), "state directory "+notADir) {
		t.Errorf("the error does not name the state directory:\n%s", b)
	}
}

// systemd's $STATE_DIRECTORY is the default, its first entry when it
// lists several.
func TestStateDirectoryFromSystemd(t *testing.T) {
	for env, want := range map[string]string{"": "", "/var/lib/kerberos_exporter": "/var/lib/kerberos_exporter", "/var/lib/a:/var/lib/b": "/var/lib/a"} {
		t.Setenv("STATE_DIRECTORY", env)
		if got := stateDirectoryFromSystemd(); got != want {
			t.Errorf("STATE_DIRECTORY=%q: %q, want %q", env, got, want)
		}
	}
}
