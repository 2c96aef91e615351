package sqlclient

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// ErrorLogLine is one row of sys.sp_readerrorlog.
type ErrorLogLine struct {
	Time time.Time
	Text string
}

// The SQL Server Network Interface library's start-up messages:
//
//	26059: The SQL Server Network Interface library successfully registered
//	       the Service Principal Name (SPN) [ MSSQLSvc/host:1433 ] for the SQL Server service.
//	26067: The SQL Server Network Interface library could not register the
//	       Service Principal Name (SPN) [ MSSQLSvc/host:1433 ] for the SQL Server
//	       service. Windows return code: 0x2098, state: 15. ...
var (
	spnRegistered   = regexp.MustCompile(`(?i)successfully registered the Service Principal Name \(SPN\) \[\s*([^\]]*?)\s*\]`)
	spnUnregistered = regexp.MustCompile(`(?i)could not register the Service Principal Name \(SPN\) \[\s*([^\]]*?)\s*\]`)
	spnReturnCode   = regexp.MustCompile(`(?i)Windows return code:\s*(0x[0-9a-f]+|\d+)(?:,\s*state:\s*(\d+))?`)
)

// ParseSPNRegistration reads one error log line; ok is false when it is not
// a registration message.
func ParseSPNRegistration(l ErrorLogLine) (r facts.SPNRegistration, ok bool) {
	if m := spnRegistered.FindStringSubmatch(l.Text); m != nil && m[1] != "" {
		return facts.SPNRegistration{Time: l.Time, SPN: m[1], Registered: true}, true
	}
	m := spnUnregistered.FindStringSubmatch(l.Text)
	if m == nil || m[1] == "" {
		return r, false
	}
	r = facts.SPNRegistration{Time: l.Time, SPN: m[1]}
	if c := spnReturnCode.FindStringSubmatch(l.Text); c != nil {
		r.ReturnCode = strings.ToLower(c[1])
		if strings.HasPrefix(r.ReturnCode, "0x") {
			r.ReturnCode = "0x" + strings.ToUpper(r.ReturnCode[2:]) // as Windows prints it: 0x2098
		}
		r.State, _ = strconv.Atoi(c[2])
	}
	return r, true
}

// ParseSPNRegistrations keeps, per SPN (compared case-insensitively, as AD
// does), the latest registration message, sorted by SPN.
func ParseSPNRegistrations(lines []ErrorLogLine) []facts.SPNRegistration {
	latest := map[string]facts.SPNRegistration{}
	for _, l := range lines {
		r, ok := ParseSPNRegistration(l)
		if !ok {
			continue
		}
		key := strings.ToLower(r.SPN)
		// Later rows win ties: the log is read oldest first.
		if prev, seen := latest[key]; !seen || !r.Time.Before(prev.Time) {
			latest[key] = r
		}
	}
	out := make([]facts.SPNRegistration, 0, len(latest))
	for _, r := range latest {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].SPN) < strings.ToLower(out[j].SPN) })
	return out
}
