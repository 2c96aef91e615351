// Package firstseen remembers since when each finding and each root cause
// has been active, so that a dashboard and the findings page can say "new
// in the last hour", and keeps that memory across restarts in a JSON file
// in the state directory.
//
// What it remembers:
//
//   - a finding by its identity, (check, target) with the target compared
//     ignoring case, the identity kerberos_finding has; a root cause by
//     diagnosis.Cause.Key (its kind and subject);
//   - when it was first seen, and, while it is not seen, since when it has
//     not been.
//
// The rules (Store.Observe):
//
//   - A finding seen again keeps its first-seen time, whatever its severity
//     now: a warning that became critical is the same problem, not a new
//     one. Restarting the exporter does not reset it either: the times are
//     loaded from the state file at start.
//   - A finding that is not seen is forgotten (it cleared) only when the
//     observation could judge it: the caller says, per SQL instance, and
//     for the fleet-wide work (instance ""), whether this observation's
//     facts about it are complete. An instance whose collection failed, or
//     whose SQL Server the exporter could not log in to, tells nothing about
//     the findings that need its facts (its NTLM fallback, its linked
//     servers...); they are kept, unseen, and come back with their old time
//     when the facts do. A probe judges only its own instance, so it never
//     forgets the others' findings, nor the fleet-wide ones.
//   - Judging by instance rather than by check follows how the cycle
//     collects: each instance's SQL and directory work runs apart from the
//     others' and from the fleet-wide work, so "which part of the facts is
//     incomplete" is known exactly, while which collectors feed which check
//     is the rules' business and changes with them.
//   - A probe adds only its own instance's findings and causes (Scope.Owns);
//     the fleet-wide ones it reports are stamped with the background's
//     times when the background knows them, and left without a time
//     otherwise, so that a probe's view of the fleet, which is partial,
//     never adds entries that the background would forget on its next
//     cycle.
//   - An entry unseen for longer than MaxUnseen (a day) is forgotten anyway:
//     after so long nobody can say the problem never cleared, and an
//     instance that stays down must not keep entries for ever.
//   - A root cause follows the same rules; it is judged by the instances of
//     all its findings (and the fleet-wide work if one of them has none).
//     Seen again, it keeps the instances the observation could not judge
//     besides those it saw: a probe of A, or a cycle where B failed, sees a
//     cause over A and B on A only, and must not forget B's part of it.
//
// The state file is written atomically (a temporary file, fsync, rename)
// after a cycle that changed something, so a crash leaves the old or the
// new file, never half of one. A file that cannot be read or parsed is
// renamed to NAME.corrupt, logged, and the store starts empty: first-seen
// times are a convenience, never a reason not to start.
package firstseen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

// FileName is the state file's name in the state directory.
const FileName = "first-seen.json"

// fileVersion is the state file's format version.
const fileVersion = 1

const (
	// MaxUnseen is how long an entry that cannot be judged is kept unseen.
	MaxUnseen = 24 * time.Hour
	// MaxEntries bounds the entries kept (findings and causes together):
	// the file and the memory stay bounded whatever the fleet reports.
	MaxEntries = 100000
	// maxFileSize bounds what is read at start (MaxEntries entries fit
	// several times over).
	maxFileSize = 64 << 20
)

// Scope says what one observation covered.
type Scope struct {
	// Judged says whether the observation's facts about a SQL instance
	// (or, for "", about the fleet-wide work: DCs, DNS, delegated users,
	// services) were complete, so that a finding about it that was not
	// seen has cleared.
	Judged func(instance string) bool
	// Owns says whether the observation may add entries about an instance
	// ("" for the fleet-wide ones); nil: every one.
	Owns func(instance string) bool
}

func (sc Scope) ownsAll(instances []string) bool {
	if sc.Owns == nil {
		return true
	}
	for _, i := range instances {
		if !sc.Owns(i) {
			return false
		}
	}
	return true
}

// entry is what is remembered about one finding or cause.
type entry struct {
	FirstSeen time.Time
	// UnseenSince is zero while it is seen; else when it was first not.
	UnseenSince time.Time
	// Instances it belongs to ("" for fleet-wide), to judge it when unseen.
	Instances []string
	// Names, as last seen, for the file's readers.
	Check, Target  string // a finding's
	Cause, Subject string // a cause's
}

// Store keeps first-seen times. It is safe for concurrent use: the
// background cycle and probes observe into one store.
type Store struct {
	path     string // "" keeps the times in memory only
	readOnly bool
	logger   *slog.Logger

	mu       sync.Mutex
	findings map[string]*entry
	causes   map[string]*entry
	dirty    bool
	capWarn  bool
	// full: this observation found nothing to evict, so it stops trying.
	full bool

	saveMu sync.Mutex
}

// NewMemory is a store that keeps its times in memory only.
func NewMemory(logger *slog.Logger) *Store {
	return &Store{logger: logger, findings: map[string]*entry{}, causes: map[string]*entry{}}
}

// PrepareDir makes sure dir exists (creating it if need be) and that files
// can be created in it, with an error naming the directory if not.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state directory %s: cannot create it: %w", dir, err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("state directory %s: not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("state directory %s: not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("state directory %s: cannot remove a test file: %w", dir, err)
	}
	return nil
}

// Open loads the store kept in dir (FileName), which PrepareDir has checked.
// A missing file is an empty store; an unreadable or corrupt one is logged,
// kept as FileName.corrupt, and the store starts empty.
func Open(dir string, logger *slog.Logger) *Store {
	s := NewMemory(logger)
	s.path = filepath.Join(dir, FileName)
	s.load()
	return s
}

// OpenReadOnly loads the store kept in dir but never writes to it, not even
// to set a corrupt file aside (for the check command, which may run beside
// a server that owns the directory).
func OpenReadOnly(dir string, logger *slog.Logger) *Store {
	s := NewMemory(logger)
	s.path = filepath.Join(dir, FileName)
	s.readOnly = true
	s.load()
	return s
}

// Path is the state file, "" for a store in memory only.
func (s *Store) Path() string { return s.path }

// findingKey is a finding's identity, as kerberos_finding's (check, target).
func findingKey(check, target string) string {
	return check + "\x00" + strings.ToLower(target)
}

// Observe records one observation's findings and causes at time at, sets
// their FirstSeen (and that of each cause's findings) and forgets what was
// not seen and judged cleared (see the package doc). A finding or cause the
// store does not know and the scope does not own keeps a zero FirstSeen.
func (s *Store) Observe(at time.Time, findings []diagnosis.Finding, causes []diagnosis.Cause, scope Scope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.full = false
	seen := map[string]bool{}
	for i := range findings {
		f := &findings[i]
		key := findingKey(f.Check, f.Target)
		seen[key] = true
		e := s.see(s.findings, key, at, []string{f.Instance}, scope)
		if e == nil {
			continue
		}
		e.Check, e.Target = f.Check, f.Target
		f.FirstSeen = e.FirstSeen
	}
	s.forget(s.findings, seen, at, scope.Judged)

	seen = map[string]bool{}
	for i := range causes {
		c := &causes[i]
		key := c.Key()
		seen[key] = true
		if e := s.see(s.causes, key, at, causeInstances(*c), scope); e != nil {
			e.Cause, e.Subject = c.Cause, c.Subject
			c.FirstSeen = e.FirstSeen
		}
		for j := range c.Findings {
			if e := s.findings[findingKey(c.Findings[j].Check, c.Findings[j].Target)]; e != nil {
				c.Findings[j].FirstSeen = e.FirstSeen
			}
		}
	}
	s.forget(s.causes, seen, at, scope.Judged)
}

// causeInstances are the instances of a cause's findings, "" included when
// one of them is fleet-wide, sorted.
func causeInstances(c diagnosis.Cause) []string {
	set := map[string]bool{}
	for _, f := range c.Findings {
		set[f.Instance] = true
	}
	if len(set) == 0 {
		for _, i := range c.Instances {
			set[i] = true
		}
	}
	if len(set) == 0 {
		set[""] = true
	}
	out := make([]string, 0, len(set))
	for i := range set {
		out = append(out, i)
	}
	sort.Strings(out)
	return out
}

// see marks key seen at at, adding it if new and owned; nil when it is
// not known and not owned, or the store is full. The names are the caller's
// to fill.
func (s *Store) see(m map[string]*entry, key string, at time.Time, instances []string, scope Scope) *entry {
	owned := scope.ownsAll(instances)
	e, ok := m[key]
	if !ok && !owned {
		return nil
	}
	if !ok {
		if len(s.findings)+len(s.causes) >= MaxEntries && (s.full || !s.evictOne()) {
			s.full = true
			if !s.capWarn {
				s.capWarn = true
				s.logger.Warn("first-seen store is full: new findings get no first-seen time until some clear", "max_entries", MaxEntries)
			}
			return nil
		}
		e = &entry{FirstSeen: at}
		m[key] = e
		s.dirty = true
	}
	if !e.UnseenSince.IsZero() {
		e.UnseenSince = time.Time{}
		s.dirty = true
	}
	if owned {
		// The instances this observation cannot judge keep their place: a
		// probe sees only its own instance, a cycle where one failed sees
		// only the others, and the cause may still be active there.
		if ins := judgedUnion(instances, e.Instances, scope.Judged); !equalStrings(e.Instances, ins) {
			e.Instances = ins
			s.dirty = true
		}
	}
	return e
}

// judgedUnion is instances plus those of old that judged cannot judge,
// sorted.
func judgedUnion(instances, old []string, judged func(string) bool) []string {
	out := slices.Clone(instances)
	for _, i := range old {
		if !judged(i) && !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	if len(out) == len(instances) {
		return instances
	}
	sort.Strings(out)
	return out
}

// forget handles the entries of m not seen in this observation.
func (s *Store) forget(m map[string]*entry, seen map[string]bool, at time.Time, judged func(string) bool) {
	for key, e := range m {
		if seen[key] {
			continue
		}
		cleared := true
		for _, inst := range e.Instances {
			if !judged(inst) {
				cleared = false
				break
			}
		}
		switch {
		case cleared:
			delete(m, key)
			s.dirty = true
		case e.UnseenSince.IsZero():
			e.UnseenSince = at
			s.dirty = true
		case at.Sub(e.UnseenSince) > MaxUnseen:
			delete(m, key)
			s.dirty = true
		}
	}
}

// evictOne makes room by dropping the entry unseen the longest; false when
// every entry is seen.
func (s *Store) evictOne() bool {
	var oldestMap map[string]*entry
	var oldestKey string
	var oldest time.Time
	for _, m := range []map[string]*entry{s.findings, s.causes} {
		for k, e := range m {
			if !e.UnseenSince.IsZero() && (oldestMap == nil || e.UnseenSince.Before(oldest)) {
				oldestMap, oldestKey, oldest = m, k, e.UnseenSince
			}
		}
	}
	if oldestMap == nil {
		return false
	}
	delete(oldestMap, oldestKey)
	return true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Len is how many findings and causes are remembered.
func (s *Store) Len() (findings, causes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.findings), len(s.causes)
}

// fileFormat is the state file.
type fileFormat struct {
	// Version of the format; a file of another version is set aside.
	Version  int           `json:"version"`
	Saved    time.Time     `json:"saved"`
	Findings []fileFinding `json:"findings"`
	Causes   []fileCause   `json:"causes"`
}

type fileFinding struct {
	Check       string    `json:"check"`
	Target      string    `json:"target"`
	Instance    string    `json:"instance,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	UnseenSince time.Time `json:"unseen_since,omitzero"`
}

type fileCause struct {
	Cause       string    `json:"cause"`
	Subject     string    `json:"subject"`
	Instances   []string  `json:"instances,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	UnseenSince time.Time `json:"unseen_since,omitzero"`
}

// load reads the state file into the empty store.
func (s *Store) load() {
	data, err := readLimited(s.path)
	if errors.Is(err, os.ErrNotExist) {
		s.logger.Info("no first-seen state yet; starting empty", "file", s.path)
		return
	}
	if err == nil {
		err = s.decode(data)
	}
	if err != nil {
		s.findings, s.causes = map[string]*entry{}, map[string]*entry{}
		s.setAside(err)
		return
	}
	s.logger.Info("first-seen state loaded", "file", s.path, "findings", len(s.findings), "causes", len(s.causes))
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return data, nil
}

// decode fills the store from the file's bytes; an error names what is
// wrong with them.
func (s *Store) decode(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileFormat
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("not valid state JSON: %w", err)
	}
	if f.Version != fileVersion {
		return fmt.Errorf("format version %d, this exporter reads version %d", f.Version, fileVersion)
	}
	for i, ff := range f.Findings {
		if ff.Check == "" || ff.FirstSeen.IsZero() {
			return fmt.Errorf("findings[%d]: check and first_seen are required", i)
		}
		if len(s.findings)+len(s.causes) >= MaxEntries {
			break
		}
		s.findings[findingKey(ff.Check, ff.Target)] = &entry{
			FirstSeen: ff.FirstSeen, UnseenSince: ff.UnseenSince, Instances: []string{ff.Instance},
			Check: ff.Check, Target: ff.Target,
		}
	}
	for i, fc := range f.Causes {
		if fc.Cause == "" || fc.FirstSeen.IsZero() {
			return fmt.Errorf("causes[%d]: cause and first_seen are required", i)
		}
		if len(s.findings)+len(s.causes) >= MaxEntries {
			break
		}
		instances := fc.Instances
		if len(instances) == 0 {
			instances = []string{""}
		}
		s.causes[diagnosis.Cause{Cause: fc.Cause, Subject: fc.Subject}.Key()] = &entry{
			FirstSeen: fc.FirstSeen, UnseenSince: fc.UnseenSince, Instances: instances,
			Cause: fc.Cause, Subject: fc.Subject,
		}
	}
	return nil
}

// setAside keeps a bad state file as FileName.corrupt for a person to look
// at, and says so.
func (s *Store) setAside(problem error) {
	if s.readOnly {
		s.logger.Warn("first-seen state unusable; first-seen times start afresh", "file", s.path, "problem", problem)
		return
	}
	aside := s.path + ".corrupt"
	if err := os.Rename(s.path, aside); err != nil {
		s.logger.Warn("first-seen state unusable and could not be set aside; first-seen times start afresh and the next save replaces it",
			"file", s.path, "problem", problem, "rename_error", err)
		return
	}
	s.logger.Warn("first-seen state unusable; kept a copy and first-seen times start afresh",
		"file", s.path, "problem", problem, "copy", aside)
}

// Save writes the store to its file if it changed since the last save:
// atomically, so a crash leaves the old file or the new one. A store in
// memory only, or opened read-only, writes nothing.
func (s *Store) Save(now time.Time) error {
	if s.path == "" || s.readOnly {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	data, err := s.encode(now)
	s.dirty = false
	s.mu.Unlock()
	if err == nil {
		err = writeAtomic(s.path, data)
	}
	if err != nil {
		s.mu.Lock()
		s.dirty = true // try again after the next cycle
		s.mu.Unlock()
		return fmt.Errorf("saving first-seen state to %s: %w", s.path, err)
	}
	return nil
}

// encode is the file's bytes, entries sorted so that the file diffs well.
func (s *Store) encode(now time.Time) ([]byte, error) {
	f := fileFormat{Version: fileVersion, Saved: now.UTC(), Findings: []fileFinding{}, Causes: []fileCause{}}
	for _, e := range s.findings {
		inst := ""
		if len(e.Instances) > 0 {
			inst = e.Instances[0]
		}
		f.Findings = append(f.Findings, fileFinding{Check: e.Check, Target: e.Target, Instance: inst, FirstSeen: e.FirstSeen.UTC(), UnseenSince: utc(e.UnseenSince)})
	}
	sort.Slice(f.Findings, func(i, j int) bool {
		a, b := f.Findings[i], f.Findings[j]
		return findingKey(a.Check, a.Target) < findingKey(b.Check, b.Target)
	})
	for _, e := range s.causes {
		var instances []string
		if !equalStrings(e.Instances, []string{""}) { // fleet-wide only: no list
			instances = e.Instances
		}
		f.Causes = append(f.Causes, fileCause{Cause: e.Cause, Subject: e.Subject, Instances: instances, FirstSeen: e.FirstSeen.UTC(), UnseenSince: utc(e.UnseenSince)})
	}
	sort.Slice(f.Causes, func(i, j int) bool {
		a, b := f.Causes[i], f.Causes[j]
		return diagnosis.Cause{Cause: a.Cause, Subject: a.Subject}.Key() < diagnosis.Cause{Cause: b.Cause, Subject: b.Subject}.Key()
	})
	return json.MarshalIndent(f, "", "  ")
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// writeAtomic writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the directory.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
