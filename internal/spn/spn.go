// Package spn builds the service principal names a SQL Server instance needs
// for Kerberos, parses SPNs read from Active Directory, and normalises the
// account names a SQL Server service can run as.
package spn

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// SQLServiceClass is the service class of SQL Server's database engine.
const SQLServiceClass = "MSSQLSvc"

// defaultInstanceName is what SQL Server calls its default instance.
const defaultInstanceName = "MSSQLSERVER"

// Instance describes how clients reach one SQL Server instance.
type Instance struct {
	FQDN         string // DNS name of the host, e.g. "sql01.corp.example.com"
	NetBIOS      string // short host name, e.g. "SQL01"; optional
	Port         int    // TCP port; 0 if TCP is not used or unknown
	InstanceName string // "" or "MSSQLSERVER" for the default instance
	// AGListener is the DNS name of an availability group listener that
	// fronts this instance, and AGListenerPort its TCP port; both optional.
	AGListener     string
	AGListenerPort int
}

// ExpectedSQLSPNs returns the SPNs clients will ask the KDC for when they
// connect to the instance, so the ones that must be registered on the service
// account. The rules follow Microsoft's "Register a Service Principal Name for
// Kerberos Connections":
//
//   - MSSQLSvc/<host>:<port> — TCP clients ask for this for default and named
//     instances alike, because the client resolves a named instance to its
//     port (through SQL Browser) before it builds the SPN.
//   - MSSQLSvc/<host> for a default instance, MSSQLSvc/<host>:<instance> for
//     a named one — clients on named pipes and shared memory, which have no
//     port, ask for these.
//   - Both again with the NetBIOS name when one is given, for clients that
//     connect by short name and do not canonicalise it to the FQDN.
//   - MSSQLSvc/<listener>:<port> and MSSQLSvc/<listener> for an availability
//     group listener: clients name the listener, not the replica, so these
//     must sit on the service account of every replica's instance.
//
// The result is in that order, without duplicates (compared as AD does,
// ignoring case). Empty host names produce nothing.
func ExpectedSQLSPNs(in Instance) []string {
	var out []string
	seen := make(map[string]bool)
	add := func(name string) {
		if k := Key(name); !seen[k] {
			seen[k] = true
			out = append(out, name)
		}
	}
	named := !isDefaultInstance(in.InstanceName)
	for _, host := range []string{cleanHost(in.FQDN), cleanHost(in.NetBIOS)} {
		if host == "" {
			continue
		}
		if in.Port > 0 {
			add(SQLServiceClass + "/" + host + ":" + strconv.Itoa(in.Port))
		}
		if named {
			add(SQLServiceClass + "/" + host + ":" + strings.TrimSpace(in.InstanceName))
		} else {
			add(SQLServiceClass + "/" + host)
		}
	}
	if listener := cleanHost(in.AGListener); listener != "" {
		if in.AGListenerPort > 0 {
			add(SQLServiceClass + "/" + listener + ":" + strconv.Itoa(in.AGListenerPort))
		}
		add(SQLServiceClass + "/" + listener)
	}
	return out
}

func isDefaultInstance(name string) bool {
	name = strings.TrimSpace(name)
	return name == "" || strings.EqualFold(name, defaultInstanceName)
}

// cleanHost trims spaces and a DNS root dot ("host.example.com."), which SPNs
// never carry.
func cleanHost(h string) string {
	return strings.TrimSuffix(strings.TrimSpace(h), ".")
}

// SPN is a parsed service principal name: ServiceClass/Host[:Port|:InstanceName][/ServiceName].
type SPN struct {
	ServiceClass string
	Host         string
	// Port is set when the part after the colon is a number; InstanceName
	// when it is not (MSSQLSvc uses that for named instances).
	Port         int
	InstanceName string
	// ServiceName is the optional third component, e.g. the domain in
	// "ldap/dc1.example.com/example.com".
	ServiceName string
}

// Parse splits an SPN into its parts. It rejects empty components,
// whitespace and control characters, a realm suffix ("@REALM", which belongs
// to a Kerberos principal, not to an SPN), and ports outside 1-65535.
func Parse(s string) (SPN, error) {
	fail := func(reason string) (SPN, error) {
		return SPN{}, fmt.Errorf("spn: invalid SPN %q: %s", s, reason)
	}
	if s == "" {
		return fail("empty")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fail("contains whitespace or a control character")
		}
	}
	if strings.Contains(s, "@") {
		return fail("contains '@': an SPN has no realm")
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return fail("want serviceclass/host[:port][/servicename]")
	}
	var out SPN
	out.ServiceClass = parts[0]
	if out.ServiceClass == "" {
		return fail("empty service class")
	}
	if strings.Contains(out.ServiceClass, ":") {
		return fail("service class contains ':'")
	}
	host, suffix, hasSuffix := strings.Cut(parts[1], ":")
	if host == "" {
		return fail("empty host")
	}
	out.Host = host
	if hasSuffix {
		switch {
		case suffix == "":
			return fail("empty port or instance name after ':'")
		case strings.Contains(suffix, ":"):
			return fail("more than one ':' in the host part")
		case isDigits(suffix):
			port, err := strconv.Atoi(suffix)
			if err != nil || port < 1 || port > 65535 {
				return fail("port " + suffix + " out of range 1-65535")
			}
			out.Port = port
		default:
			out.InstanceName = suffix
		}
	}
	if len(parts) == 3 {
		if parts[2] == "" {
			return fail("empty service name after the second '/'")
		}
		out.ServiceName = parts[2]
	}
	return out, nil
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// String reassembles the SPN.
func (s SPN) String() string {
	var b strings.Builder
	b.WriteString(s.ServiceClass)
	b.WriteByte('/')
	b.WriteString(s.Host)
	switch {
	case s.Port > 0:
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(s.Port))
	case s.InstanceName != "":
		b.WriteByte(':')
		b.WriteString(s.InstanceName)
	}
	if s.ServiceName != "" {
		b.WriteByte('/')
		b.WriteString(s.ServiceName)
	}
	return b.String()
}

// Key returns a case-insensitive key for an SPN, for maps and duplicate
// detection: AD compares servicePrincipalName values ignoring case, so
// "MSSQLSvc/SQL01.example.com:1433" and "mssqlsvc/sql01.EXAMPLE.com:1433"
// are the same SPN (and registering both on different accounts is a duplicate).
func Key(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// Equal reports whether two SPNs are the same to AD.
func Equal(a, b string) bool { return Key(a) == Key(b) }
