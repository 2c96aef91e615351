package firstseen

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)) }

// all judges every part of the facts complete (a cycle where everything ran).
var all = Scope{Judged: func(string) bool { return true }}

// none judges nothing (a cycle where everything failed).
var none = Scope{Judged: func(string) bool { return false }}

// only judges the named parts.
func only(parts ...string) Scope {
	return Scope{Judged: func(inst string) bool { return slices.Contains(parts, inst) }}
}

// probe is the scope of a probe of instance that got complete facts.
func probe(instance string) Scope {
	is := func(i string) bool { return i == instance }
	return Scope{Judged: is, Owns: is}
}

func finding(check, target, instance string, sev diagnosis.Severity) diagnosis.Finding {
	return diagnosis.Finding{Check: check, Target: target, Instance: instance, Severity: sev}
}

// observe runs one observation of findings, each with a cause of its own
// (the grouping is the diagnosis' business), and returns them with
// FirstSeen set.
func observe(s *Store, at time.Time, scope Scope, fs ...diagnosis.Finding) ([]diagnosis.Finding, []diagnosis.Cause) {
	fs = append([]diagnosis.Finding(nil), fs...)
	var causes []diagnosis.Cause
	for _, f := range fs {
		causes = append(causes, diagnosis.Cause{Cause: "cause_of_" + f.Check, Severity: f.Severity, Subject: f.Target, Findings: []diagnosis.Finding{f}})
	}
	s.Observe(at, fs, causes, scope)
	return fs, causes
}

func TestNewFindingFirstSeenIsNowAndKept(t *testing.T) {
	s := NewMemory(quiet())
	ntlm := finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical)
	fs, causes := observe(s, t0, all, ntlm)
	if !fs[0].FirstSeen.Equal(t0) {
		t.Fatalf("new finding: FirstSeen %v, want %v", fs[0].FirstSeen, t0)
	}
	if !causes[0].FirstSeen.Equal(t0) || !causes[0].Findings[0].FirstSeen.Equal(t0) {
		t.Fatalf("new cause: FirstSeen %v (its finding %v), want %v", causes[0].FirstSeen, causes[0].Findings[0].FirstSeen, t0)
	}
	// Seen again, target in another case: the same finding, same time.
	again := ntlm
	again.Target = "SQLC"
	fs, causes = observe(s, t0.Add(time.Minute), all, again)
	if !fs[0].FirstSeen.Equal(t0) || !causes[0].FirstSeen.Equal(t0) {
		t.Errorf("seen again: FirstSeen %v / cause %v, want %v", fs[0].FirstSeen, causes[0].FirstSeen, t0)
	}
}

func TestSeverityChangeKeepsFirstSeen(t *testing.T) {
	s := NewMemory(quiet())
	observe(s, t0, all, finding("clock_skew_dc", "dc1", "", diagnosis.Warning))
	fs, causes := observe(s, t0.Add(5*time.Minute), all, finding("clock_skew_dc", "dc1", "", diagnosis.Critical))
	if !fs[0].FirstSeen.Equal(t0) {
		t.Errorf("after warning -> critical: FirstSeen %v, want %v", fs[0].FirstSeen, t0)
	}
	if !causes[0].FirstSeen.Equal(t0) {
		t.Errorf("cause after warning -> critical: FirstSeen %v, want %v", causes[0].FirstSeen, t0)
	}
}

func TestClearedFindingIsForgotten(t *testing.T) {
	s := NewMemory(quiet())
	spn := finding("spn_missing", "MSSQLSvc/sqlc.corp.test:1433", "sqlc", diagnosis.Critical)
	observe(s, t0, all, spn)
	observe(s, t0.Add(time.Minute), all) // fixed: a complete cycle without it
	if f, c := s.Len(); f != 0 || c != 0 {
		t.Fatalf("after it cleared: %d findings, %d causes remembered, want none", f, c)
	}
	fs, _ := observe(s, t0.Add(2*time.Minute), all, spn) // broken again: new
	if want := t0.Add(2 * time.Minute); !fs[0].FirstSeen.Equal(want) {
		t.Errorf("back after clearing: FirstSeen %v, want %v (new again)", fs[0].FirstSeen, want)
	}
}

func TestUnjudgedInstanceKeepsFindings(t *testing.T) {
	s := NewMemory(quiet())
	ntlm := finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical)
	skew := finding("clock_skew_dc", "dc1", "", diagnosis.Warning)
	observe(s, t0, all, ntlm, skew)

	// sqlc's collection failed (or its login did): its finding went unseen
	// but has not cleared; the fleet-wide one was judged and cleared.
	observe(s, t0.Add(time.Minute), only("", "sqla"))
	if f, _ := s.Len(); f != 1 {
		t.Fatalf("after a cycle that could not judge sqlc: %d findings remembered, want 1 (sqlc's)", f)
	}
	fs, causes := observe(s, t0.Add(2*time.Minute), all, ntlm)
	if !fs[0].FirstSeen.Equal(t0) || !causes[0].FirstSeen.Equal(t0) {
		t.Errorf("sqlc back: FirstSeen %v / cause %v, want the original %v", fs[0].FirstSeen, causes[0].FirstSeen, t0)
	}
}

func TestFleetFailureKeepsFleetFindings(t *testing.T) {
	s := NewMemory(quiet())
	skew := finding("clock_skew_dc", "dc1", "", diagnosis.Warning)
	observe(s, t0, all, skew)
	observe(s, t0.Add(time.Minute), only("sqla")) // the fleet-wide work failed
	fs, _ := observe(s, t0.Add(2*time.Minute), all, skew)
	if !fs[0].FirstSeen.Equal(t0) {
		t.Errorf("after a failed fleet run: FirstSeen %v, want %v", fs[0].FirstSeen, t0)
	}
}

// A probe judges its own instance only: it adds what it sees, forgets its
// instance's cleared findings, and leaves everything else alone.
func TestProbeForgetsOnlyItsInstance(t *testing.T) {
	s := NewMemory(quiet())
	a := finding("spn_missing", "MSSQLSvc/sqla.corp.test:1433", "sqla", diagnosis.Critical)
	c := finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical)
	fleet := finding("clock_skew_dc", "dc1", "", diagnosis.Warning)
	observe(s, t0, all, a, c, fleet)

	// A probe of sqlc that no longer sees sqlc's finding, nor the others.
	observe(s, t0.Add(time.Minute), probe("sqlc"))
	if f, _ := s.Len(); f != 2 {
		t.Fatalf("after a probe of sqlc: %d findings remembered, want 2 (sqla's and the fleet's)", f)
	}
	fs, _ := observe(s, t0.Add(2*time.Minute), all, a, fleet)
	for _, f := range fs {
		if !f.FirstSeen.Equal(t0) {
			t.Errorf("%s %s: FirstSeen %v, want %v", f.Check, f.Target, f.FirstSeen, t0)
		}
	}
}

// A probe stamps what the background knows, adds its own instance's new
// findings, and adds no fleet-wide ones (the background would forget them).
func TestProbeAddsOnlyItsInstance(t *testing.T) {
	s := NewMemory(quiet())
	fleet := finding("clock_skew_dc", "dc1", "", diagnosis.Warning)
	observe(s, t0, all, fleet)
	at := t0.Add(time.Minute)
	kdc := finding("kdc_unreachable", "CORP.TEST", "", diagnosis.Warning)
	own := finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical)
	fs, causes := observe(s, at, probe("sqlc"), fleet, kdc, own)
	if !fs[0].FirstSeen.Equal(t0) {
		t.Errorf("probe: fleet-wide finding the background knows: FirstSeen %v, want %v", fs[0].FirstSeen, t0)
	}
	if !fs[1].FirstSeen.IsZero() || !causes[1].FirstSeen.IsZero() {
		t.Errorf("probe: fleet-wide finding the background does not know: FirstSeen %v (cause %v), want none", fs[1].FirstSeen, causes[1].FirstSeen)
	}
	if !fs[2].FirstSeen.Equal(at) || !causes[2].FirstSeen.Equal(at) {
		t.Errorf("probe: its instance's new finding: FirstSeen %v (cause %v), want %v", fs[2].FirstSeen, causes[2].FirstSeen, at)
	}
	// The background sees the probe's finding (in all mode): same time.
	fs, _ = observe(s, t0.Add(2*time.Minute), all, fleet, own)
	if !fs[1].FirstSeen.Equal(at) {
		t.Errorf("background after a probe: FirstSeen %v, want the probe's %v", fs[1].FirstSeen, at)
	}
}

// A cause over two instances, observed by a view that sees only one of
// them (a probe, or a cycle where the other failed), keeps the other: when
// the first is fixed, the cause is still active on the second and keeps its
// first-seen time.
func TestPartialViewKeepsCauseInstances(t *testing.T) {
	spnsOf := func(instances ...string) []diagnosis.Cause {
		c := diagnosis.Cause{Cause: "service_account_spns", Subject: `CORP\svc`, Severity: diagnosis.Critical}
		for _, i := range instances {
			c.Findings = append(c.Findings, finding("spn_missing", "MSSQLSvc/"+i+".corp.test:1433", i, diagnosis.Critical))
		}
		return []diagnosis.Cause{c}
	}
	for _, tc := range []struct {
		name    string
		partial Scope // sees sqla only
	}{
		{"probe of sqla", probe("sqla")},
		{"cycle where sqlb failed", only("", "sqla")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemory(quiet())
			s.Observe(t0, nil, spnsOf("sqla", "sqlb"), all)
			s.Observe(t0.Add(time.Minute), nil, spnsOf("sqla"), tc.partial)
			s.Observe(t0.Add(2*time.Minute), nil, nil, tc.partial) // sqla fixed
			if _, c := s.Len(); c != 1 {
				t.Fatalf("after sqla was fixed: %d causes remembered, want 1 (still active on sqlb)", c)
			}
			causes := spnsOf("sqlb")
			s.Observe(t0.Add(3*time.Minute), nil, causes, all)
			if !causes[0].FirstSeen.Equal(t0) {
				t.Errorf("cause still on sqlb: FirstSeen %v, want the original %v", causes[0].FirstSeen, t0)
			}
		})
	}
	// A view that judges both instances narrows the cause: sqla fixed, then
	// sqlb fixed, and it is gone.
	s := NewMemory(quiet())
	s.Observe(t0, nil, spnsOf("sqla", "sqlb"), all)
	s.Observe(t0.Add(time.Minute), nil, spnsOf("sqlb"), all)
	s.Observe(t0.Add(2*time.Minute), nil, nil, probe("sqlb"))
	if _, c := s.Len(); c != 0 {
		t.Errorf("after both were fixed: %d causes remembered, want none", c)
	}
}

func TestUnseenTooLongIsForgotten(t *testing.T) {
	s := NewMemory(quiet())
	ntlm := finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical)
	observe(s, t0, all, ntlm)
	observe(s, t0.Add(time.Minute), none)
	observe(s, t0.Add(time.Minute+MaxUnseen/2), none)
	if f, _ := s.Len(); f != 1 {
		t.Fatalf("unseen for half of MaxUnseen: %d findings remembered, want 1", f)
	}
	observe(s, t0.Add(2*time.Minute+MaxUnseen), none)
	if f, c := s.Len(); f != 0 || c != 0 {
		t.Fatalf("unseen for longer than MaxUnseen: %d findings, %d causes remembered, want none", f, c)
	}
}

func TestRestartKeepsTimes(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir, quiet())
	ntlm := finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical)
	stale := finding("spn_missing", "MSSQLSvc/sqlc.corp.test:1433", "sqlc", diagnosis.Critical)
	observe(s, t0, all, ntlm, stale)
	observe(s, t0.Add(time.Minute), none, ntlm) // stale unseen, not judged
	if err := s.Save(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	restarted := Open(dir, quiet())
	if f, c := restarted.Len(); f != 2 || c != 2 {
		t.Fatalf("after restart: %d findings, %d causes, want 2 and 2", f, c)
	}
	fs, causes := observe(restarted, t0.Add(time.Hour), all, ntlm, stale)
	for _, f := range fs {
		if !f.FirstSeen.Equal(t0) {
			t.Errorf("after restart, %s %s: FirstSeen %v, want %v", f.Check, f.Target, f.FirstSeen, t0)
		}
	}
	for _, c := range causes {
		if !c.FirstSeen.Equal(t0) {
			t.Errorf("after restart, cause %s %s: FirstSeen %v, want %v", c.Cause, c.Subject, c.FirstSeen, t0)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
}

func TestSaveOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir, quiet())
	f := finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical)
	observe(s, t0, all, f)
	if err := s.Save(t0); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	before, _ := os.ReadFile(path)
	observe(s, t0.Add(time.Minute), all, finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Warning))
	if err := s.Save(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("an unchanged store was written again:\nbefore %s\nafter %s", before, after)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state directory holds %d files, want only %s (no temporary files left)", len(entries), FileName)
	}
}

func TestCorruptFileIsSetAside(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":        "{\"version\": 1, \"findings\": [",
		"another version": `{"version": 99, "findings": [], "causes": []}`,
		"missing time":    `{"version": 1, "findings": [{"check": "spn_missing", "target": "x"}], "causes": []}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			s := Open(dir, slog.New(slog.NewTextHandler(&logs, nil)))
			if f, c := s.Len(); f != 0 || c != 0 {
				t.Errorf("corrupt file: store holds %d findings, %d causes, want an empty store", f, c)
			}
			if !strings.Contains(logs.String(), path) || !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("the warning does not name the file:\n%s", logs.String())
			}
			kept, err := os.ReadFile(path + ".corrupt")
			if err != nil || string(kept) != content {
				t.Errorf("the corrupt file was not kept as %s.corrupt: %v", FileName, err)
			}
			// The store works and writes a good file again.
			observe(s, t0, all, finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical))
			if err := s.Save(t0); err != nil {
				t.Fatal(err)
			}
			if f, _ := Open(dir, quiet()).Len(); f != 1 {
				t.Errorf("after a fresh start and a save: %d findings on reload, want 1", f)
			}
		})
	}
}

func TestReadOnlyNeverWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := OpenReadOnly(dir, quiet())
	observe(s, t0, all, finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical))
	if err := s.Save(t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "garbage" {
		t.Errorf("a read-only store changed its file: %q", got)
	}
	if _, err := os.Stat(path + ".corrupt"); err == nil {
		t.Error("a read-only store set its corrupt file aside")
	}
}

func TestFileFormat(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir, quiet())
	observe(s, t0, all, finding("first_hop_ntlm", "sqlc", "sqlc", diagnosis.Critical), finding("clock_skew_dc", "dc1", "", diagnosis.Warning))
	if err := s.Save(t0); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version  int `json:"version"`
		Findings []struct {
			Check     string    `json:"check"`
			Target    string    `json:"target"`
			Instance  string    `json:"instance"`
			FirstSeen time.Time `json:"first_seen"`
		} `json:"findings"`
		Causes []struct {
			Cause     string    `json:"cause"`
			Subject   string    `json:"subject"`
			FirstSeen time.Time `json:"first_seen"`
		} `json:"causes"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("state file is not JSON: %v\n%s", err, data)
	}
	if f.Version != 1 || len(f.Findings) != 2 || len(f.Causes) != 2 {
		t.Fatalf("state file: version %d, %d findings, %d causes; want 1, 2, 2:\n%s", f.Version, len(f.Findings), len(f.Causes), data)
	}
	if got := f.Findings[1]; got.Check != "first_hop_ntlm" || got.Target != "sqlc" || got.Instance != "sqlc" || !got.FirstSeen.Equal(t0) {
		t.Errorf("second finding in the file: %+v", got)
	}
}

func TestPrepareDir(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "a", "b")
	if err := PrepareDir(fresh); err != nil {
		t.Fatalf("a directory that can be created: %v", err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := PrepareDir(file)
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("a file as state directory: error %v, want one naming %s", err, file)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(base, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		err := PrepareDir(ro)
		if err == nil || !strings.Contains(err.Error(), ro) || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("a read-only state directory: error %v, want one naming %s as not writable", err, ro)
		}
	}
}

func TestStoreIsBounded(t *testing.T) {
	s := NewMemory(quiet())
	var fs []diagnosis.Finding
	for i := range MaxEntries + 10 {
		fs = append(fs, finding("spn_missing", "MSSQLSvc/h"+strconv.Itoa(i), "", diagnosis.Warning))
	}
	s.Observe(t0, fs, nil, all)
	if f, _ := s.Len(); f != MaxEntries {
		t.Errorf("store holds %d entries, want at most %d", f, MaxEntries)
	}
	unstamped := 0
	for _, f := range fs {
		if f.FirstSeen.IsZero() {
			unstamped++
		}
	}
	if unstamped != 10 {
		t.Errorf("%d findings without a first-seen time, want the 10 beyond the cap", unstamped)
	}
}
