package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file, located by line and field.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Errors is every problem found in one file; Load reports them all at once
// so that nothing is lost behind the first one.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// MaxFileSize caps the configuration file: a real one is a few KiB; a
// bigger file is a mistake (a log or a binary given as --config.file), and
// reading it whole could exhaust memory.
const MaxFileSize = 4 << 20

// Load reads, parses, defaults and validates the file at path, and resolves
// its secrets.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("file is larger than %d MiB: not a configuration file", MaxFileSize>>20)}}
	}
	return Parse(path, data)
}

// Parse is Load for data already read; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, true)
}

// ParseStatic checks syntax and meaning without touching the file system or
// the environment: files named in the configuration are not opened and
// secrets are not resolved. For linting a file written for another machine.
func ParseStatic(name string, data []byte) (*Config, error) {
	return parse(name, data, false)
}

// parse reports every defect it can find in one pass, in line order: a
// second document, values yaml.v3 cannot decode (an inline secret, an
// unknown field, a bad duration), values that decode but are wrong, and
// (on this machine) files and secrets that cannot be read. Only a file
// that is not YAML at all stops it early, and then says so.
func parse(name string, data []byte, onThisMachine bool) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, Errors{{File: name, Msg: fmt.Sprintf("file is larger than %d MiB: not a configuration file", MaxFileSize>>20)}}
	}
	var errs Errors
	if line, col, ok := invalidUTF8(data); ok {
		// The rest is checked with the bad bytes replaced, so that one
		// mistyped character does not hide the other defects.
		data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
		e := &Error{File: name, Line: line, Msg: fmt.Sprintf("column %d: byte is not UTF-8: the file must be saved as UTF-8", col)}
		var root yaml.Node
		if yaml.Unmarshal(data, &root) == nil {
			e.Field = pathAt(&root, line, 0)
		}
		errs = append(errs, e)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, sortErrors(append(errs, syntaxError(name, err)...))
	}
	if len(bytes.TrimSpace(data)) == 0 || root.Kind == 0 {
		return nil, sortErrors(append(errs, &Error{File: name, Msg: "file is empty; see config.example.yml"}))
	}
	if line, err := secondDocument(data); err != nil {
		errs = append(errs, syntaxError(name, err)...)
	} else if line > 0 {
		errs = append(errs, &Error{File: name, Line: line, Msg: "a second YAML document: the configuration is one document (remove the --- separator and what follows, or merge it)"})
	}
	cfg := &Config{File: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		errs = append(errs, yamlError(name, &root, err)...)
		// yaml.v3 leaves out a list element it cannot decode and moves
		// the rest up: put each element back at its index in the file, so
		// that what validation says about the others names the right one.
		realign(&root, reflect.ValueOf(cfg).Elem())
	}
	// What failed to decode was left at its zero value: validation goes
	// on with the rest, but says nothing more about those fields (a
	// refused inline password is not also a missing one).
	undecoded := fieldsOf(errs)
	cfg.applyDefaults()
	v := validator{file: name, root: &root, checkFiles: onThisMachine}
	cfg.validate(&v)
	if onThisMachine {
		cfg.resolveSecrets(&v)
	}
	for _, e := range v.errs {
		if !related(undecoded, e.Field) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, sortErrors(errs)
	}
	cfg.Warnings = v.warnings
	return cfg, nil
}

// syntaxError is a YAML syntax error, which ends the check: past it the
// parser cannot tell what belongs where.
func syntaxError(name string, err error) Errors {
	out := yamlError(name, nil, err)
	for _, e := range out {
		e.Msg += " (the rest of the file was not checked: fix this first)"
	}
	return out
}

// fieldsOf is the set of fields named by errs.
func fieldsOf(errs Errors) map[string]bool {
	fields := map[string]bool{}
	for _, e := range errs {
		if e.Field != "" {
			fields[e.Field] = true
		}
	}
	return fields
}

// related says whether field is one of fields (a refused secret is not
// also a missing or empty one) or lies inside one of them
// (sql_instances[0].auth when auth was not a mapping). Further up, a defect
// is unrelated: "discovery needs a domain" still stands beside a bad
// discovery.template.
func related(fields map[string]bool, field string) bool {
	if field == "" {
		return false
	}
	for f := range fields {
		if f == field || within(field, f) {
			return true
		}
	}
	return false
}

// realign rebuilds every list under n (the file's tree) and v (what
// yaml.v3 decoded from it) that came out shorter than the file's: one
// element at a time, an element that cannot be decoded left at its zero
// value, so that the list has the file's length and indices. Its own
// errors were reported by the decoder; validation is told to skip it.
func realign(n *yaml.Node, v reflect.Value) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.CanAddr() {
		if _, custom := v.Addr().Interface().(yaml.Unmarshaler); custom {
			return // decoded as a whole by its own method
		}
	}
	switch {
	case v.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, ok := fieldByYAMLName(v, n.Content[i].Value); ok {
				realign(n.Content[i+1], f)
			}
		}
	case v.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		if v.Len() < len(n.Content) && v.CanSet() {
			out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
			for i, elem := range n.Content {
				// Decoded as a one-element list, the element is left out
				// exactly when the decoder left it out of the whole list.
				one := reflect.New(v.Type())
				_ = (&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{elem}}).Decode(one.Interface())
				if one.Elem().Len() == 1 {
					out.Index(i).Set(one.Elem().Index(0))
				}
			}
			v.Set(out)
		}
		for i := 0; i < v.Len() && i < len(n.Content); i++ {
			realign(n.Content[i], v.Index(i))
		}
	}
}

// fieldByYAMLName is the field of struct v that the key name decodes into.
func fieldByYAMLName(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		if tag == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// within says whether path lies inside parent: parent.x or parent[i].
func within(path, parent string) bool {
	return strings.HasPrefix(path, parent) && len(path) > len(parent) && (path[len(parent)] == '.' || path[len(parent)] == '[')
}

// sortErrors puts errors in line order (file-wide ones first) and drops
// repeats, so that each defect is reported once.
func sortErrors(errs Errors) Errors {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			out = append(out, e)
		}
	}
	return out
}

// invalidUTF8 locates the first byte that is not UTF-8 (line and column
// from 1).
func invalidUTF8(data []byte) (line, col int, found bool) {
	if utf8.Valid(data) {
		return 0, 0, false
	}
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return line, col, true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return 0, 0, false
}

// secondDocument is the line where a second YAML document with content
// starts, 0 if the file holds one. yaml.Unmarshal reads the first and
// ignores the rest, which would silently drop half a configuration. An
// empty or null document after a trailing --- holds nothing to drop and
// is accepted. A syntax error after the first document is returned.
func secondDocument(data []byte) (int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first yaml.Node
	if dec.Decode(&first) != nil {
		return 0, nil
	}
	for {
		var next yaml.Node
		if err := dec.Decode(&next); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, nil
			}
			return 0, err
		}
		if isNullDocument(&next) {
			continue
		}
		if next.Line > 0 {
			return next.Line, nil
		}
		return 1, nil
	}
}

// isNullDocument: a document that is empty, comments only, or null.
func isNullDocument(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return true
		}
		n = n.Content[0]
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (?:column (\d+): )?(.*)$`)

// yamlError turns yaml.v3's messages ("yaml: unmarshal errors:\n  line 3:
// field foo not found in type config.Global") into our located errors.
func yamlError(file string, root *yaml.Node, err error) Errors {
	var te *yaml.TypeError
	var lines []string
	if errors.As(err, &te) {
		lines = te.Errors
	} else {
		lines = []string{err.Error()}
	}
	var out Errors
	claimed := map[*yaml.Node]bool{}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		e := &Error{File: file, Msg: l}
		if m := yamlLine.FindStringSubmatch(l); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			e.Msg = m[3]
			if root != nil {
				e.Field = undecodablePath(root, e.Line, col, e.Msg, claimed)
				if e.Field == "" {
					e.Field = pathAt(root, e.Line, col)
				}
			} else {
				e.Msg = "invalid YAML: " + e.Msg
			}
		}
		e.Msg = strings.Replace(e.Msg, "not found in type config.", "is not a known field of ", 1)
		out = append(out, e)
	}
	return out
}

func (c *Config) applyDefaults() {
	setDur(&c.Global.CollectionInterval, DefaultCollectionInterval)
	setDur(&c.Global.CollectorTimeout, min(DefaultCollectorTimeout, c.Global.CollectionInterval.Duration()))
	setDur(&c.Global.SPNScanInterval, DefaultSPNScanInterval)
	setDur(&c.Global.SPNFullScanInterval, max(DefaultSPNFullScanInterval, c.Global.SPNScanInterval.Duration()))
	setDur(&c.DNS.Timeout, DefaultDNSTimeout)
	if c.Global.MaxConcurrentInstances == 0 {
		c.Global.MaxConcurrentInstances = DefaultMaxConcurrentInstances
	}
	if c.Global.DNSConcurrency == 0 {
		c.Global.DNSConcurrency = DefaultDNSConcurrency
	}
	if c.Global.KDCConcurrency == 0 {
		c.Global.KDCConcurrency = DefaultKDCConcurrency
	}
	for _, ttl := range []**Duration{&c.Global.DNSCacheTTL, &c.Global.KDCTicketCacheTTL} {
		if *ttl == nil {
			d := Duration(DefaultLookupCacheTTL)
			*ttl = &d
		}
	}
	setDur(&c.Thresholds.ClockSkewWarning, DefaultSkewWarning)
	setDur(&c.Thresholds.ClockSkewCritical, DefaultSkewCritical)
	if c.Kerberos.Probe == nil {
		c.Kerberos.Probe = boolPtr(c.Kerberos.Principal != "")
	}
	for i := range c.Domains {
		d := &c.Domains[i]
		setDur(&d.Timeout, DefaultLDAPTimeout)
		if d.BaseDN == "" {
			d.BaseDN = BaseDNFromDomain(d.Name)
		}
		if d.NTP == nil {
			d.NTP = boolPtr(true)
		}
		if d.NTPPort == 0 {
			d.NTPPort = 123
		}
		if d.MaxDuplicateSPNs == 0 {
			d.MaxDuplicateSPNs = DefaultMaxDuplicateSPNs
		}
		if d.Bind.Method == "" {
			d.Bind.Method = "simple"
		}
	}
	for i := range c.SQLInstances {
		c.defaultInstance(&c.SQLInstances[i])
	}
	if d := c.Discovery; d != nil {
		setDur(&d.RefreshInterval, DefaultDiscoveryRefresh)
	}
}

// defaultInstance fills in what an instance leaves out.
func (c *Config) defaultInstance(s *SQLInstance) {
	setDur(&s.Timeout, DefaultSQLTimeout)
	setDur(&s.LinkedServers.Timeout, s.Timeout.Duration())
	if s.Port == 0 && s.InstanceName == "" {
		s.Port = 1433
	}
	if s.ExpectKerberos == nil {
		s.ExpectKerberos = boolPtr(s.Auth.Method == "kerberos" || s.Auth.Method == "windows")
	}
	if s.NTLMClientsTop == 0 {
		s.NTLMClientsTop = DefaultNTLMClientsTop
	}
	if s.Encrypt == "" {
		s.Encrypt = "true"
	}
	if s.Domain == "" && len(c.Domains) > 0 {
		s.Domain = c.Domains[0].Name
	}
}

// BaseDNFromDomain maps corp.example.com to DC=corp,DC=example,DC=com.
func BaseDNFromDomain(name string) string {
	if name == "" {
		return ""
	}
	parts := strings.Split(strings.TrimSuffix(name, "."), ".")
	for i, p := range parts {
		parts[i] = "DC=" + p
	}
	return strings.Join(parts, ",")
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

func boolPtr(b bool) *bool { return &b }

// validator collects errors and locates each by its field path in the YAML
// tree, so that a semantic error still points at a line.
type validator struct {
	file       string
	root       *yaml.Node
	checkFiles bool
	errs       Errors
	warnings   []string
}

// checkReadable reports a file named in the configuration that can't be read.
func (v *validator) checkReadable(path, file string) {
	if !v.checkFiles || file == "" {
		return
	}
	f, err := os.Open(file)
	if err != nil {
		v.errorf(path, "cannot be read: %v", err)
		return
	}
	f.Close()
}

// checkPrivate is checkReadable for a file that holds a secret (password
// file, keytab, credential cache). As ssh does with private keys, one that
// every user of the machine may read is refused, with the chmod that fixes
// it; one its group may read is allowed silently when that group is the
// process's (root:kerberos_exporter 0640, as docs/configuration.md and the systemd
// unit recommend), with a warning when it is another group.
func (v *validator) checkPrivate(path, file string) {
	v.checkReadable(path, file)
	if !v.checkFiles || file == "" || runtime.GOOS == "windows" {
		return
	}
	st, err := os.Stat(file)
	if err != nil {
		return // reported by checkReadable
	}
	switch mode := st.Mode().Perm(); {
	case mode&0o007 != 0:
		v.errorf(path, "%s holds a secret but every user may access it (mode %04o): run chmod o-rwx %s "+
			"(a read-only secret mount sets it: Kubernetes defaultMode: 0440 or 0400, compose mode: 0440)", file, mode, file)
	case mode&0o070 != 0 && !inOwnGroup(st):
		v.warnf(path, "%s holds a secret and its group, which the exporter is not in, may read it (mode %04o); "+
			"run chgrp to the exporter's group (root:kerberos_exporter 0640) or chmod g-rwx %s", file, mode, file)
	}
}

func (v *validator) warnf(path string, format string, args ...any) {
	v.warnings = append(v.warnings, (&Error{File: v.file, Line: lineOf(v.root, path), Field: path, Msg: fmt.Sprintf(format, args...)}).Error())
}

func (v *validator) errorf(path string, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: lineOf(v.root, path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// lineOf finds the line of a path like "sql_instances[1].auth.method"; when
// the field itself is absent it returns the line of its nearest parent.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, step := range splitPath(path) {
		var next *yaml.Node
		switch {
		case step.index >= 0 && n.Kind == yaml.SequenceNode && step.index < len(n.Content):
			next = n.Content[step.index]
		case step.index < 0 && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == step.key {
					next = n.Content[i+1]
					line = n.Content[i].Line
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if step.index >= 0 || next.Kind != yaml.ScalarNode {
			line = n.Line
		}
	}
	return line
}

// pathAt names the field at a position, e.g. "sql_instances[0].auth.password":
// the one whose value starts exactly at line:col when col is known (several
// fields can share a line in flow style), else the first whose key is on
// the line; "" when none is.
func pathAt(root *yaml.Node, line, col int) string {
	var walk func(n *yaml.Node, path string) string
	walk = func(n *yaml.Node, path string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p := walk(c, path); p != "" {
					return p
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, val := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if col > 0 && val.Line == line && val.Column == col {
					return p
				}
				if col == 0 && k.Line == line {
					return p
				}
				if found := walk(val, p); found != "" {
					return found
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Line == line && (col == 0 || c.Column == col) && c.Kind == yaml.ScalarNode {
					return p
				}
				if found := walk(c, p); found != "" {
					return found
				}
			}
		}
		return ""
	}
	return walk(root, "")
}

var (
	cannotUnmarshal = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into ")
	unknownField    = regexp.MustCompile(`^field (\S+) not found in type `)
)

// undecodablePath names the value a "cannot unmarshal !!int `5` into ..."
// or the key a "field foo not found in type ..." message is about (yaml.v3
// gives them a line but no column), when the line holds several, as a
// flow list or mapping does: the first value on the line with that tag and
// text (or key with that name) not named by an earlier message (claimed),
// preferring the innermost. "" when msg is another message or col is
// known.
func undecodablePath(root *yaml.Node, line, col int, msg string, claimed map[*yaml.Node]bool) string {
	if col > 0 {
		return ""
	}
	m := cannotUnmarshal.FindStringSubmatch(msg)
	key := unknownField.FindStringSubmatch(msg)
	if m == nil && key == nil {
		return ""
	}
	matches := func(n *yaml.Node, k *yaml.Node) bool {
		if key != nil {
			return k != nil && k.Line == line && k.Value == key[1] && !claimed[k]
		}
		tag, text := m[1], m[2]
		if n.Line != line || n.ShortTag() != tag || claimed[n] {
			return false
		}
		if n.Kind != yaml.ScalarNode {
			return true
		}
		// yaml.v3 cuts values longer than 10 characters to 7 and "...".
		if short, cut := strings.CutSuffix(text, "..."); cut && len(n.Value) > 10 {
			return strings.HasPrefix(n.Value, short)
		}
		return n.Value == text
	}
	var found *yaml.Node
	var foundPath string
	// k is n's key when n is a mapping's value.
	var walk func(n, k *yaml.Node, path string)
	walk = func(n, k *yaml.Node, path string) {
		if found != nil && !within(path, foundPath) {
			return // a match already, and this is not inside it
		}
		if path != "" && matches(n, k) {
			// Inside an earlier match: the innermost wins.
			found, foundPath = n, path
			if key != nil {
				found = k
			}
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, nil, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				walk(n.Content[i+1], n.Content[i], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, nil, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(root, nil, "")
	if found == nil {
		return ""
	}
	claimed[found] = true
	return foundPath
}

type pathStep struct {
	key   string
	index int
}

func splitPath(path string) []pathStep {
	var steps []pathStep
	for _, part := range strings.Split(path, ".") {
		key := part
		idx := -1
		if i := strings.IndexByte(part, '['); i >= 0 {
			key = part[:i]
			idx, _ = strconv.Atoi(strings.TrimSuffix(part[i+1:], "]"))
		}
		if key != "" {
			steps = append(steps, pathStep{key: key, index: -1})
		}
		if idx >= 0 {
			steps = append(steps, pathStep{index: idx})
		}
	}
	return steps
}

var labelSafe = regexp.MustCompile(`^[A-Za-z0-9_.:\-]+$`)

// Lower bounds: below them the exporter would hammer the DCs and SQL
// Servers (a 1 ms interval ran 1,640 collectors in 5 s) or give every
// network call too little time to mean anything.
const (
	MinCollectionInterval = 5 * time.Second
	MinCollectorTimeout   = time.Second
	MinNetworkTimeout     = 100 * time.Millisecond
	MaxNTLMClientsTop     = 1000
)

// atLeast reports a duration below its lower bound.
func (v *validator) atLeast(path string, d Duration, least time.Duration) {
	if d.Duration() < least {
		v.errorf(path, "must be at least %s, got %s", least, d)
	}
}

// concurrency reports a bound on work in flight outside 1..ConcurrencyLimit.
func (v *validator) concurrency(path string, n int) {
	if n < 1 || n > ConcurrencyLimit {
		v.errorf(path, "must be between 1 and %d, got %d", ConcurrencyLimit, n)
	}
}

// cacheTTL reports a cache time to live outside 0 (off)..MaxLookupCacheTTL.
func (v *validator) cacheTTL(path string, ttl *Duration) {
	if ttl != nil && (*ttl < 0 || ttl.Duration() > MaxLookupCacheTTL) {
		v.errorf(path, "must be between 0s (off) and %s, got %s", MaxLookupCacheTTL, ttl)
	}
}

func (c *Config) validate(v *validator) {
	v.atLeast("global.collection_interval", c.Global.CollectionInterval, MinCollectionInterval)
	v.atLeast("global.collector_timeout", c.Global.CollectorTimeout, MinCollectorTimeout)
	v.atLeast("global.spn_scan_interval", c.Global.SPNScanInterval, MinCollectionInterval)
	v.atLeast("dns.timeout", c.DNS.Timeout, MinNetworkTimeout)
	for i := range c.Domains {
		p := fmt.Sprintf("domains[%d]", i)
		v.atLeast(p+".timeout", c.Domains[i].Timeout, MinNetworkTimeout)
		if n := c.Domains[i].MaxDuplicateSPNs; n < 0 {
			v.errorf(p+".max_duplicate_spns", "must not be negative, got %d", n)
		}
	}
	if c.Global.CollectorTimeout > c.Global.CollectionInterval {
		v.errorf("global.collector_timeout", "must not exceed global.collection_interval (%s), got %s", c.Global.CollectionInterval, c.Global.CollectorTimeout)
	}
	if c.Global.SPNFullScanInterval < c.Global.SPNScanInterval {
		v.errorf("global.spn_full_scan_interval", "must not be below global.spn_scan_interval (%s), got %s", c.Global.SPNScanInterval, c.Global.SPNFullScanInterval)
	}
	if n := c.Global.MaxConcurrentInstances; n < 1 || n > MaxConcurrentInstancesLimit {
		v.errorf("global.max_concurrent_instances", "must be between 1 and %d, got %d", MaxConcurrentInstancesLimit, n)
	}
	v.concurrency("global.dns_concurrency", c.Global.DNSConcurrency)
	v.concurrency("global.kdc_concurrency", c.Global.KDCConcurrency)
	v.cacheTTL("global.dns_cache_ttl", c.Global.DNSCacheTTL)
	v.cacheTTL("global.kdc_ticket_cache_ttl", c.Global.KDCTicketCacheTTL)
	if c.Thresholds.ClockSkewWarning >= c.Thresholds.ClockSkewCritical {
		v.errorf("thresholds.clock_skew_warning", "must be below clock_skew_critical (%s), got %s", c.Thresholds.ClockSkewCritical, c.Thresholds.ClockSkewWarning)
	}
	if c.Discovery != nil {
		c.validateDiscovery(v)
	}
	if len(c.Domains) == 0 && len(c.SQLInstances) == 0 {
		v.errorf("domains", "nothing to watch: give at least one domain or one sql_instance")
	}
	c.Kerberos.validate(v, "kerberos")
	seenDomains := map[string]bool{}
	for i := range c.Domains {
		p := fmt.Sprintf("domains[%d]", i)
		d := &c.Domains[i]
		if d.Name == "" {
			v.errorf(p+".name", "is required: the domain's DNS name, e.g. corp.example.com")
		} else if seenDomains[strings.ToLower(d.Name)] {
			v.errorf(p+".name", "domain %q is listed twice", d.Name)
		}
		seenDomains[strings.ToLower(d.Name)] = true
		if len(d.DomainControllers) == 0 {
			v.errorf(p+".domain_controllers", "is required: at least one ldap:// or ldaps:// URL")
		}
		for j, u := range d.DomainControllers {
			validateLDAPURL(v, fmt.Sprintf("%s.domain_controllers[%d]", p, j), u)
		}
		for j, u := range d.GlobalCatalogs {
			validateLDAPURL(v, fmt.Sprintf("%s.global_catalogs[%d]", p, j), u)
		}
		v.checkReadable(p+".tls.ca_file", d.TLS.CAFile)
		if d.TLS.InsecureSkipVerify {
			v.warnf(p+".tls.insecure_skip_verify", "is true: the domain controllers' certificates are not verified, so anyone on the path can pose as a DC and read the bind password")
		}
		if d.Bind.AllowInsecureBind {
			v.warnf(p+".bind.allow_insecure_bind", "is true: a simple bind over ldap:// without StartTLS sends the password in clear text")
		}
		switch d.Bind.Method {
		case "simple":
			if !d.TLS.StartTLS && !d.Bind.AllowInsecureBind {
				for j, u := range append(append([]string(nil), d.DomainControllers...), d.GlobalCatalogs...) {
					if strings.HasPrefix(strings.ToLower(u), "ldap://") {
						field := fmt.Sprintf("%s.domain_controllers[%d]", p, j)
						if j >= len(d.DomainControllers) {
							field = fmt.Sprintf("%s.global_catalogs[%d]", p, j-len(d.DomainControllers))
						}
						v.errorf(field, "a simple bind over %s without StartTLS sends the password in clear text: use ldaps://, or tls.start_tls: true, or gssapi (bind.allow_insecure_bind: true accepts the risk)", u)
					}
				}
			}
			if d.Bind.Username == "" {
				v.errorf(p+".bind.username", "is required for a simple bind (user@domain or DOMAIN\\user)")
			}
			if d.Bind.Password == nil {
				v.errorf(p+".bind.password", "is required for a simple bind: give {file: PATH} or {env: NAME}")
			}
		case "gssapi":
			if c.Kerberos.Principal == "" {
				v.errorf(p+".bind.method", "gssapi needs the kerberos section (principal and keytab_file, ccache_file or password)")
			}
		default:
			v.errorf(p+".bind.method", "must be simple or gssapi, got %q", d.Bind.Method)
		}
		if d.NTPPort < 1 || d.NTPPort > 65535 {
			v.errorf(p+".ntp_port", "must be between 1 and 65535, got %d", d.NTPPort)
		}
	}
	seen := map[string]bool{}
	for i := range c.SQLInstances {
		c.SQLInstances[i].validate(v, fmt.Sprintf("sql_instances[%d]", i), seen, c)
	}
	for i, s := range c.Services {
		p := fmt.Sprintf("services[%d]", i)
		if s.Name == "" || !labelSafe.MatchString(s.Name) {
			v.errorf(p+".name", "is required and may hold only letters, digits, '_', '-', '.', ':', got %q", s.Name)
		}
		if s.Account == "" {
			v.errorf(p+".account", "is required: the account that must hold the SPNs")
		}
		if len(s.SPNs) == 0 {
			v.errorf(p+".spns", "is required: at least one SPN, e.g. HTTP/app.corp.example.com")
		}
		for j, spn := range s.SPNs {
			if !strings.Contains(spn, "/") || strings.ContainsAny(spn, " \t") {
				v.errorf(fmt.Sprintf("%s.spns[%d]", p, j), "must look like class/host[:port], got %q", spn)
			}
		}
	}
	for i, srv := range c.DNS.Servers {
		if _, _, err := net.SplitHostPort(srv); err != nil {
			v.errorf(fmt.Sprintf("dns.servers[%d]", i), "must be host:port, got %q", srv)
		}
	}
}

func (k *Kerberos) validate(v *validator, p string) {
	for i, e := range k.OfferedETypes {
		if !Offerable(e) {
			v.errorf(fmt.Sprintf("%s.offered_etypes[%d]", p, i), "must be one of %s, got %q", strings.Join(OfferableETypes, ", "), e)
		}
	}
	if k.Principal == "" {
		return
	}
	if !strings.Contains(k.Principal, "@") && k.Realm == "" {
		v.errorf(p+".realm", "is required when principal has no @REALM")
	}
	n := 0
	for _, set := range []bool{k.KeytabFile != "", k.CCacheFile != "", k.Password != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.errorf(p+".principal", "needs exactly one of keytab_file, ccache_file or password, got %d", n)
	}
	v.checkPrivate(p+".keytab_file", k.KeytabFile)
	v.checkPrivate(p+".ccache_file", k.CCacheFile)
	v.checkReadable(p+".krb5_config", k.Krb5Config)
}

func (s *SQLInstance) validate(v *validator, p string, seen map[string]bool, c *Config) {
	if s.Name == "" || !labelSafe.MatchString(s.Name) {
		v.errorf(p+".name", "is required and may hold only letters, digits, '_', '-', '.', ':', got %q", s.Name)
	} else if seen[s.Name] {
		v.errorf(p+".name", "instance %q is listed twice", s.Name)
	}
	seen[s.Name] = true
	if s.Host == "" {
		v.errorf(p+".host", "is required: the server's fully qualified DNS name (SPNs are built from it)")
	} else if !strings.Contains(s.Host, ".") {
		v.errorf(p+".host", "must be a fully qualified name (SPNs use the FQDN), got %q", s.Host)
	}
	if s.Port < 0 || s.Port > 65535 {
		v.errorf(p+".port", "must be between 1 and 65535, got %d", s.Port)
	}
	// Bounds live here so that discovery's template, validated through
	// this method too, gets them: every discovered instance inherits it.
	v.atLeast(p+".timeout", s.Timeout, MinNetworkTimeout)
	if s.LinkedServers.Timeout != s.Timeout { // else it is the default, reported once above
		v.atLeast(p+".linked_servers.timeout", s.LinkedServers.Timeout, MinNetworkTimeout)
	}
	if s.NTLMClientsTop < 0 || s.NTLMClientsTop > MaxNTLMClientsTop {
		v.errorf(p+".ntlm_clients_top", "must be between 0 and %d, got %d", MaxNTLMClientsTop, s.NTLMClientsTop)
	}
	if s.AGListenerPort < 0 || s.AGListenerPort > 65535 {
		v.errorf(p+".ag_listener_port", "must be between 1 and 65535, got %d", s.AGListenerPort)
	}
	switch s.Encrypt {
	case "disable", "false", "true", "strict":
	default:
		v.errorf(p+".encrypt", "must be disable, false, true or strict, got %q", s.Encrypt)
	}
	a := &s.Auth
	ap := p + ".auth"
	switch a.Method {
	case "sql", "ntlm":
		if a.Username == "" {
			v.errorf(ap+".username", "is required for %s logins", a.Method)
		}
		if a.Password == nil {
			v.errorf(ap+".password", "is required for %s logins: give {file: PATH} or {env: NAME}", a.Method)
		}
		if a.Method == "ntlm" && !strings.Contains(a.Username, `\`) && !strings.Contains(a.Username, "@") {
			v.errorf(ap+".username", "must be DOMAIN\\user or user@domain for NTLM, got %q", a.Username)
		}
	case "kerberos":
		if a.Username == "" && c.Kerberos.Principal == "" {
			v.errorf(ap+".username", "is required for kerberos logins unless the kerberos section names a principal")
		}
		if a.KeytabFile == "" && a.CCacheFile == "" && a.Password == nil && c.Kerberos.Principal == "" {
			v.errorf(ap+".keytab_file", "kerberos logins need keytab_file, ccache_file or password (here or in the kerberos section)")
		}
	case "windows":
		// Windows integrated security (SSPI) on Windows builds only; checked at connect time.
	case "":
		v.errorf(ap+".method", "is required: sql, ntlm, kerberos or windows")
	default:
		v.errorf(ap+".method", "must be sql, ntlm, kerberos or windows, got %q", a.Method)
	}
	v.checkPrivate(ap+".keytab_file", a.KeytabFile)
	v.checkPrivate(ap+".ccache_file", a.CCacheFile)
	v.checkReadable(ap+".krb5_config", a.Krb5Config)
	if a.NTLMFallback && a.Method != "kerberos" {
		v.errorf(ap+".ntlm_fallback", "only applies to method kerberos")
	}
	if a.NTLMFallback && a.Password == nil {
		v.errorf(ap+".ntlm_fallback", "needs auth.password: NTLM cannot use a keytab")
	}
	for _, t := range s.LinkedServers.Test {
		if t == "" {
			v.errorf(p+".linked_servers.test", "contains an empty name")
		}
	}
}

func (c *Config) validateDiscovery(v *validator) {
	d := c.Discovery
	if len(c.Domains) == 0 {
		v.errorf("discovery", "needs at least one configured domain to search")
	}
	for i, dn := range d.BaseDNs {
		if c.DomainOfDN(dn) == nil {
			v.errorf(fmt.Sprintf("discovery.base_dns[%d]", i), "must lie under a configured domain's base DN, got %q", dn)
		}
	}
	for field, patterns := range map[string][]string{"include": d.Include, "exclude": d.Exclude} {
		for i, p := range patterns {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				v.errorf(fmt.Sprintf("discovery.%s[%d]", field, i), "must be a shell pattern such as *.corp.example.com, got %q", p)
			}
		}
	}
	// The template is checked as an instance would be, minus what
	// discovery fills in.
	probe := c.InstanceFromTemplate("discovered", "discovered.invalid", 1433, "", "")
	probe.validate(v, "discovery.template", map[string]bool{}, c)
}

// DomainOfDN is the configured domain whose base DN holds dn, nil if none.
func (c *Config) DomainOfDN(dn string) *Domain {
	dn = strings.ToLower(strings.ReplaceAll(dn, " ", ""))
	for i := range c.Domains {
		base := strings.ToLower(strings.ReplaceAll(c.Domains[i].BaseDN, " ", ""))
		if base != "" && (dn == base || strings.HasSuffix(dn, ","+base)) {
			return &c.Domains[i]
		}
	}
	return nil
}

// InstanceFromTemplate is a discovered instance with discovery's template
// settings and the defaults of a configured one.
func (c *Config) InstanceFromTemplate(name, host string, port int, instanceName, domain string) SQLInstance {
	t := c.Discovery.Template
	s := SQLInstance{
		Name: name, Host: host, Port: port, InstanceName: instanceName, Domain: domain,
		Auth: t.Auth, Encrypt: t.Encrypt, TrustServerCertificate: t.TrustServerCertificate, Timeout: t.Timeout,
		ExpectKerberos: t.ExpectKerberos, NTLMClientsTop: t.NTLMClientsTop, LinkedServers: t.LinkedServers,
		Discovered: true,
	}
	s.LinkedServers.Test = append([]string(nil), t.LinkedServers.Test...)
	c.defaultInstance(&s)
	return s
}

func validateLDAPURL(v *validator, p, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		v.errorf(p, "must be an ldap://host[:port] or ldaps://host[:port] URL, got %q", raw)
	}
}

func (c *Config) resolveSecrets(v *validator) {
	resolve := func(path string, s *Secret) {
		if s == nil {
			return
		}
		if s.File != "" {
			before := len(v.errs)
			v.checkPrivate(path, s.File)
			if len(v.errs) > before {
				return
			}
		}
		if err := s.resolve(); err != nil {
			v.errorf(path, "%v", err)
		}
	}
	resolve("kerberos.password", c.Kerberos.Password)
	for i := range c.Domains {
		resolve(fmt.Sprintf("domains[%d].bind.password", i), c.Domains[i].Bind.Password)
	}
	for i := range c.SQLInstances {
		resolve(fmt.Sprintf("sql_instances[%d].auth.password", i), c.SQLInstances[i].Auth.Password)
	}
	if c.Discovery != nil {
		resolve("discovery.template.auth.password", c.Discovery.Template.Auth.Password)
	}
}
