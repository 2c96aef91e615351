package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
)

// severalDefects is a file with a defect of every stage; its defects, as
// the config package reports them, are what every path must show once.
const severalDefects = "../../config/testdata/bad/several-defects.yml"

func defectsOf(t *testing.T, file string) []string {
	t.Helper()
	_, err := config.Load(file)
	if err == nil {
		t.Fatalf("%s loads", file)
	}
	problems := configProblems(err)
	if len(problems) < 5 {
		t.Fatalf("%s: only %d problems: %q", file, len(problems), problems)
	}
	return problems
}

// --config.check, and a start with a bad file, print every defect once,
// one a line, then how many there are, and exit 3.
func TestConfigCheckPrintsEveryDefectOnce(t *testing.T) {
	problems := defectsOf(t, severalDefects)
	for _, args := range [][]string{
		{"--config.file", severalDefects, "--config.check"},
		{"--config.file", severalDefects},
	} {
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		if code := run(args, out, out); code != checkConfigInvalid {
			t.Errorf("run %v = %d, want %d", args, code, checkConfigInvalid)
		}
		out.Close()
		b, _ := os.ReadFile(out.Name())
		want := strings.Join(problems, "\n") + "\n" + countProblems(len(problems)) + " in " + severalDefects + "\n"
		if string(b) != want {
			t.Errorf("run %v printed:\n%s\nwant:\n%s", args, b, want)
		}
	}
}

// A refused reload logs every defect once, then the refusal with their
// count, and answers with all of them.
func TestReloadReportsEveryDefect(t *testing.T) {
	problems := defectsOf(t, severalDefects)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	r := newReloader(severalDefects, cycle.NewRunner(&config.Config{}, logger), logger)
	err := r.reload()
	if err == nil {
		t.Fatal("reload accepted a bad file")
	}
	if err.Error() != strings.Join(problems, "\n") {
		t.Errorf("reload error:\n%v\nwant:\n%s", err, strings.Join(problems, "\n"))
	}
	var logged []string
	refusals := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg      string `json:"msg"`
			Problem  string `json:"problem"`
			Problems int    `json:"problems"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch {
		case rec.Problem != "":
			logged = append(logged, rec.Problem)
		case strings.HasPrefix(rec.Msg, "configuration reload refused"):
			refusals++
			if rec.Problems != len(problems) {
				t.Errorf("refusal counts %d problems, want %d", rec.Problems, len(problems))
			}
		}
	}
	if strings.Join(logged, "\n") != strings.Join(problems, "\n") || refusals != 1 {
		t.Errorf("logged %d refusals and problems:\n%s\nwant once each:\n%s", refusals, strings.Join(logged, "\n"), strings.Join(problems, "\n"))
	}
}
