package sqlclient

import (
	"strconv"
	"strings"
)

// DataSource is a linked server's data_source split into its parts:
// "tcp:sqlb.corp.example.com,1433" or "SQLB\INST".
type DataSource struct {
	Host     string
	Instance string
	Port     int // 0 when not written
}

// ParseDataSource splits a SQL Server data source. The protocol prefix
// (tcp:, np:, lpc:, admin:) is dropped; a port follows a comma.
func ParseDataSource(ds string) DataSource {
	s := strings.TrimSpace(ds)
	if proto, rest, ok := strings.Cut(s, ":"); ok {
		switch strings.ToLower(proto) {
		case "tcp", "np", "lpc", "admin":
			s = rest
		}
	}
	var d DataSource
	if host, port, ok := strings.Cut(s, ","); ok {
		s = host
		d.Port, _ = strconv.Atoi(strings.TrimSpace(port))
	}
	d.Host, d.Instance, _ = strings.Cut(s, `\`)
	d.Host, d.Instance = strings.TrimSpace(d.Host), strings.TrimSpace(d.Instance)
	return d
}
