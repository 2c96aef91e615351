package tdsserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario describes one SQL Server the stand-in plays. It is loaded from a
// YAML file with the same field names (see testenv/README.md).
type Scenario struct {
	// Name identifies the server in a Group; defaults to the file's base name.
	Name            string         `yaml:"name"`
	Listen          string         `yaml:"listen"`
	MachineName     string         `yaml:"machine_name"`
	PhysicalNetBIOS string         `yaml:"physical_netbios"`
	InstanceName    string         `yaml:"instance_name"` // "" = default instance, reported as NULL
	Domain          string         `yaml:"domain"`        // NetBIOS domain, e.g. CORP
	Behaviour       string         `yaml:"behaviour"`     // normal | stall
	ClockOffset     Duration       `yaml:"clock_offset"`  // added to SYSUTCDATETIME()
	Services        []Service      `yaml:"services"`
	ListenerPorts   []int          `yaml:"listener_ports"`
	Kerberos        *Kerberos      `yaml:"kerberos"`
	SQLLogins       []SQLLogin     `yaml:"sql_logins"`
	Sessions        []ExtraSession `yaml:"sessions"`
	ErrorLog        ErrorLog       `yaml:"error_log"`
	LinkedServers   []LinkedServer `yaml:"linked_servers"`
	path            string         // file it came from, for messages
	errorLogDates   []time.Time    // parsed ErrorLog.Lines[i].LogDate
}

// Service is one row of sys.dm_server_services.
type Service struct {
	ServiceName    string `yaml:"servicename"`
	ServiceAccount string `yaml:"service_account"`
}

// Kerberos configures the service side (verifying clients' tickets) and the
// client side used for a delegated second hop.
type Kerberos struct {
	Keytab    string `yaml:"keytab"`    // the service account's keytab
	Principal string `yaml:"principal"` // the service account, e.g. sqlsvc_a
	Realm     string `yaml:"realm"`     // e.g. CORP.TEST
	Krb5Conf  string `yaml:"krb5_conf"` // krb5.conf naming the KDC, for hops
}

// SQLLogin is a SQL Server authentication login.
type SQLLogin struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
}

// ExtraSession is a session reported in sys.dm_exec_connections and
// sys.dm_exec_sessions besides the live ones.
type ExtraSession struct {
	SessionID    int    `yaml:"session_id"`
	HostName     string `yaml:"host_name"`
	LoginName    string `yaml:"login_name"`
	ProgramName  string `yaml:"program_name"`
	AuthScheme   string `yaml:"auth_scheme"`   // KERBEROS | NTLM | SQL
	NetTransport string `yaml:"net_transport"` // default TCP
}

// ErrorLog is what sys.sp_readerrorlog returns.
type ErrorLog struct {
	Readable *bool          `yaml:"readable"` // default true; false = error 15003
	Lines    []ErrorLogLine `yaml:"lines"`
}

// ErrorLogLine is one error log row. LogDate is "2006-01-02 15:04:05[.fff]"
// (server local time, as the real log has it) or RFC 3339.
type ErrorLogLine struct {
	LogDate     string `yaml:"log_date"`
	ProcessInfo string `yaml:"process_info"`
	Text        string `yaml:"text"`
}

// LinkedServer is a row of sys.servers plus where the hop really goes.
type LinkedServer struct {
	Name       string        `yaml:"name"`
	ServerID   int           `yaml:"server_id"`
	Product    string        `yaml:"product"`
	Provider   string        `yaml:"provider"`
	DataSource string        `yaml:"data_source"`
	Connect    string        `yaml:"connect"`    // host:port of the stand-in playing the remote server
	SPN        string        `yaml:"spn"`        // SPN asked for when the hop uses Kerberos
	Delegation bool          `yaml:"delegation"` // a Kerberos caller's credentials can be delegated
	Logins     []LinkedLogin `yaml:"logins"`
}

// LinkedLogin is a row of sys.linked_logins.
type LinkedLogin struct {
	// LocalLogin names the login a mapping with a non-zero local_principal_id
	// applies to; local_principal_id 0 (and no local_login) applies to all.
	LocalLogin         string `yaml:"local_login"`
	LocalPrincipalID   int    `yaml:"local_principal_id"`
	UsesSelfCredential bool   `yaml:"uses_self_credential"`
	RemoteName         string `yaml:"remote_name"`
	RemotePassword     string `yaml:"remote_password"`
}

// Duration is a time.Duration written as "90s", "-1m30s" or "0".
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: clock offset %q: want a duration such as 90s", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// TestenvDirVar is the one variable scenario paths may use.
const TestenvDirVar = "KERBEROS_TESTENV_DIR"

// TestenvDir returns $KERBEROS_TESTENV_DIR or its default.
func TestenvDir() string {
	if d := os.Getenv(TestenvDirVar); d != "" {
		return d
	}
	return "/tmp/kerberos-testenv"
}

// ErrorLogReadable reports whether sp_readerrorlog succeeds.
func (s *Scenario) ErrorLogReadable() bool { return s.ErrorLog.Readable == nil || *s.ErrorLog.Readable }

// LoadScenario reads, strictly decodes and validates a scenario file.
// Errors name the file and line.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseScenario(path, data)
}

// ParseScenario is LoadScenario on bytes already read; path is used for
// messages and the default name.
func ParseScenario(path string, data []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty scenario", path)
		}
		return nil, yamlError(path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: a scenario file holds one YAML document", path)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(path, err)
	}
	s.path = path
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	v := validator{path: path, root: &root}
	s.validate(&v)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &s, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError rewrites yaml.v3's "line N: msg" into "file:N: msg".
func yamlError(path string, err error) error {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []error
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			out = append(out, fmt.Errorf("%s:%s: %s", path, g[1], g[2]))
		} else {
			out = append(out, fmt.Errorf("%s: %s", path, strings.TrimPrefix(m, "yaml: ")))
		}
	}
	return errors.Join(out...)
}

// validator collects semantic errors with the line of the offending key.
type validator struct {
	path string
	root *yaml.Node
	errs []error
}

// at reports an error at the node found by following keys (string) and
// sequence indexes (int) from the document root; the deepest node found
// gives the line.
func (v *validator) at(path []any, format string, args ...any) {
	n := v.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, step := range path {
		next := (*yaml.Node)(nil)
		switch k := step.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						line = n.Content[i].Line
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	v.errs = append(v.errs, fmt.Errorf("%s:%d: %s", v.path, line, fmt.Sprintf(format, args...)))
}

// keyPath is a path for validator.at: mapping keys and sequence indexes.
func keyPath(steps ...any) []any { return steps }

func (s *Scenario) validate(v *validator) {
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		v.at(keyPath("listen"), "listen: want host:port, got %q", s.Listen)
	}
	if s.MachineName == "" {
		v.at(keyPath("machine_name"), "machine_name is required")
	}
	if s.PhysicalNetBIOS == "" {
		s.PhysicalNetBIOS = s.MachineName
	}
	if s.Domain == "" {
		v.at(keyPath("domain"), "domain (NetBIOS name, e.g. CORP) is required")
	}
	switch s.Behaviour {
	case "":
		s.Behaviour = "normal"
	case "normal", "stall":
	default:
		v.at(keyPath("behaviour"), "behaviour: want normal or stall, got %q", s.Behaviour)
	}
	for i, port := range s.ListenerPorts {
		if port < 1 || port > 65535 {
			v.at(keyPath("listener_ports", i), "listener port %d out of range", port)
		}
	}
	for i, svc := range s.Services {
		if svc.ServiceName == "" || svc.ServiceAccount == "" {
			v.at(keyPath("services", i), "a service needs servicename and service_account")
		}
	}
	if k := s.Kerberos; k != nil {
		for _, f := range []struct {
			key string
			val *string
		}{{"keytab", &k.Keytab}, {"principal", &k.Principal}, {"realm", &k.Realm}, {"krb5_conf", &k.Krb5Conf}} {
			if *f.val == "" {
				v.at(keyPath("kerberos", f.key), "kerberos.%s is required", f.key)
			}
			expanded, err := expandPath(*f.val)
			if err != nil {
				v.at(keyPath("kerberos", f.key), "kerberos.%s: %v", f.key, err)
			}
			*f.val = expanded
		}
	}
	logins := map[string]bool{}
	for i, l := range s.SQLLogins {
		key := strings.ToLower(l.Name)
		if l.Name == "" {
			v.at(keyPath("sql_logins", i), "a SQL login needs a name")
		} else if logins[key] {
			v.at(keyPath("sql_logins", i, "name"), "duplicate SQL login %q", l.Name)
		}
		logins[key] = true
	}
	ids := map[int]bool{}
	for i := range s.Sessions {
		e := &s.Sessions[i]
		if e.SessionID < 1 || e.SessionID > 32767 {
			v.at(keyPath("sessions", i, "session_id"), "session_id %d out of range 1..32767", e.SessionID)
		} else if ids[e.SessionID] {
			v.at(keyPath("sessions", i, "session_id"), "duplicate session_id %d", e.SessionID)
		}
		ids[e.SessionID] = true
		switch e.AuthScheme {
		case "KERBEROS", "NTLM", "SQL":
		default:
			v.at(keyPath("sessions", i, "auth_scheme"), "auth_scheme: want KERBEROS, NTLM or SQL, got %q", e.AuthScheme)
		}
		if e.NetTransport == "" {
			e.NetTransport = "TCP"
		}
	}
	for i, line := range s.ErrorLog.Lines {
		t, err := parseLogDate(line.LogDate)
		if err != nil {
			v.at(keyPath("error_log", "lines", i, "log_date"), "%v", err)
		}
		s.errorLogDates = append(s.errorLogDates, t)
	}
	names := map[string]bool{}
	serverIDs := map[int]bool{}
	for i := range s.LinkedServers {
		ls := &s.LinkedServers[i]
		key := strings.ToLower(ls.Name)
		switch {
		case ls.Name == "":
			v.at(keyPath("linked_servers", i), "a linked server needs a name")
		case ucs2Len(ls.Name) > 128:
			v.at(keyPath("linked_servers", i, "name"), "linked server name longer than 128 characters (sysname)")
		case names[key]:
			v.at(keyPath("linked_servers", i, "name"), "duplicate linked server %q", ls.Name)
		}
		names[key] = true
		if ls.ServerID < 1 || serverIDs[ls.ServerID] {
			v.at(keyPath("linked_servers", i, "server_id"), "server_id must be unique and at least 1 (0 is the local server)")
		}
		serverIDs[ls.ServerID] = true
		if _, _, err := net.SplitHostPort(ls.Connect); err != nil {
			v.at(keyPath("linked_servers", i, "connect"), "connect: want host:port, got %q", ls.Connect)
		}
		if ls.Delegation && (ls.SPN == "" || s.Kerberos == nil) {
			v.at(keyPath("linked_servers", i, "delegation"), "delegation needs spn on the linked server and a kerberos section")
		}
		for j, m := range ls.Logins {
			if !m.UsesSelfCredential && m.RemoteName == "" {
				v.at(keyPath("linked_servers", i, "logins", j), "a mapping with uses_self_credential false needs remote_name")
			}
			if (m.LocalPrincipalID == 0) != (m.LocalLogin == "") {
				v.at(keyPath("linked_servers", i, "logins", j), "local_principal_id 0 maps every login and takes no local_login; any other id needs local_login")
			}
		}
	}
}

// expandPath expands ${KERBEROS_TESTENV_DIR}; any other variable is an
// error, so a typo cannot silently become an empty path.
func expandPath(s string) (string, error) {
	var bad []string
	out := os.Expand(s, func(name string) string {
		if name == TestenvDirVar {
			return TestenvDir()
		}
		bad = append(bad, name)
		return ""
	})
	if len(bad) > 0 {
		return s, fmt.Errorf("unknown variable $%s (only ${%s} is expanded)", bad[0], TestenvDirVar)
	}
	return out, nil
}

func parseLogDate(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("log_date %s: want \"2006-01-02 15:04:05.00\" or RFC 3339", strconv.Quote(s))
}
