package spn

import (
	"reflect"
	"testing"
)

func TestExpectedSQLSPNs(t *testing.T) {
	tests := []struct {
		name string
		in   Instance
		want []string
	}{
		{
			name: "default instance on 1433",
			in:   Instance{FQDN: "sql01.corp.example.com", Port: 1433},
			want: []string{"MSSQLSvc/sql01.corp.example.com:1433", "MSSQLSvc/sql01.corp.example.com"},
		},
		{
			name: "default instance named explicitly, with NetBIOS",
			in:   Instance{FQDN: "sql01.corp.example.com", NetBIOS: "SQL01", Port: 1433, InstanceName: "mssqlserver"},
			want: []string{
				"MSSQLSvc/sql01.corp.example.com:1433", "MSSQLSvc/sql01.corp.example.com",
				"MSSQLSvc/SQL01:1433", "MSSQLSvc/SQL01",
			},
		},
		{
			name: "named instance on a static port",
			in:   Instance{FQDN: "sql02.corp.example.com", Port: 50123, InstanceName: "INST1"},
			want: []string{"MSSQLSvc/sql02.corp.example.com:50123", "MSSQLSvc/sql02.corp.example.com:INST1"},
		},
		{
			name: "named instance, port unknown",
			in:   Instance{FQDN: "sql02.corp.example.com", NetBIOS: "SQL02", InstanceName: "INST1"},
			want: []string{"MSSQLSvc/sql02.corp.example.com:INST1", "MSSQLSvc/SQL02:INST1"},
		},
		{
			name: "availability group listener",
			in: Instance{FQDN: "sql03.corp.example.com", Port: 1433,
				AGListener: "aglisten.corp.example.com", AGListenerPort: 1433},
			want: []string{
				"MSSQLSvc/sql03.corp.example.com:1433", "MSSQLSvc/sql03.corp.example.com",
				"MSSQLSvc/aglisten.corp.example.com:1433", "MSSQLSvc/aglisten.corp.example.com",
			},
		},
		{
			name: "listener without port",
			in:   Instance{FQDN: "sql03.corp.example.com", AGListener: "aglisten.corp.example.com"},
			want: []string{"MSSQLSvc/sql03.corp.example.com", "MSSQLSvc/aglisten.corp.example.com"},
		},
		{
			name: "whitespace and root dot trimmed",
			in:   Instance{FQDN: " sql01.corp.example.com. ", NetBIOS: " SQL01 ", Port: 1433, InstanceName: " INST1 "},
			want: []string{
				"MSSQLSvc/sql01.corp.example.com:1433", "MSSQLSvc/sql01.corp.example.com:INST1",
				"MSSQLSvc/SQL01:1433", "MSSQLSvc/SQL01:INST1",
			},
		},
		{
			name: "NetBIOS same as FQDN differing in case is not repeated",
			in:   Instance{FQDN: "sql01", NetBIOS: "SQL01", Port: 1433},
			want: []string{"MSSQLSvc/sql01:1433", "MSSQLSvc/sql01"},
		},
		{
			name: "NetBIOS only",
			in:   Instance{NetBIOS: "SQL01", Port: 1433},
			want: []string{"MSSQLSvc/SQL01:1433", "MSSQLSvc/SQL01"},
		},
		{
			name: "negative port ignored",
			in:   Instance{FQDN: "sql01.corp.example.com", Port: -1},
			want: []string{"MSSQLSvc/sql01.corp.example.com"},
		},
		{name: "nothing", in: Instance{Port: 1433}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ExpectedSQLSPNs(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ExpectedSQLSPNs(%+v) =\n%q\nwant\n%q", tt.in, got, tt.want)
			}
			for _, s := range got {
				if _, err := Parse(s); err != nil {
					t.Errorf("expected SPN does not parse: %v", err)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want SPN
	}{
		{"MSSQLSvc/sql01.corp.example.com:1433", SPN{ServiceClass: "MSSQLSvc", Host: "sql01.corp.example.com", Port: 1433}},
		{"MSSQLSvc/sql01.corp.example.com", SPN{ServiceClass: "MSSQLSvc", Host: "sql01.corp.example.com"}},
		{"MSSQLSvc/sql02.corp.example.com:INST1", SPN{ServiceClass: "MSSQLSvc", Host: "sql02.corp.example.com", InstanceName: "INST1"}},
		{"mssqlsvc/SQL01:65535", SPN{ServiceClass: "mssqlsvc", Host: "SQL01", Port: 65535}},
		{"HOST/sql01", SPN{ServiceClass: "HOST", Host: "sql01"}},
		{"ldap/dc1.corp.example.com/corp.example.com", SPN{ServiceClass: "ldap", Host: "dc1.corp.example.com", ServiceName: "corp.example.com"}},
		{"ldap/dc1.corp.example.com:389/corp.example.com", SPN{ServiceClass: "ldap", Host: "dc1.corp.example.com", Port: 389, ServiceName: "corp.example.com"}},
		{"E3514235-4B06-11D1-AB04-00C04FC2DCD2/5f3c2e1a-0000-0000-0000-000000000000/corp.example.com",
			SPN{ServiceClass: "E3514235-4B06-11D1-AB04-00C04FC2DCD2", Host: "5f3c2e1a-0000-0000-0000-000000000000", ServiceName: "corp.example.com"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func TestParseBad(t *testing.T) {
	for _, in := range []string{
		"",
		"MSSQLSvc",
		"MSSQLSvc/",
		"/sql01",
		"MSSQLSvc/:1433",
		"MSSQLSvc/sql01:",
		"MSSQLSvc/sql01:0",
		"MSSQLSvc/sql01:65536",
		"MSSQLSvc/sql01:99999999999999999999",
		"MSSQLSvc/sql01:1433:1",
		"MSSQLSvc/sql01/",
		"MSSQLSvc/sql01/a/b",
		"MSSQLSvc/sql 01:1433",
		" MSSQLSvc/sql01:1433",
		"MSSQLSvc/sql01:1433\n",
		"MSSQLSvc/sql01\t",
		"MSSQLSvc/sql01:1433@CORP.EXAMPLE.COM",
		"MS:SQL/sql01",
	} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want error", in, got)
		}
	}
}

func TestKeyAndEqual(t *testing.T) {
	if !Equal("MSSQLSvc/SQL01.corp.example.com:1433", "mssqlsvc/sql01.CORP.example.com:1433") {
		t.Error("SPNs differing only in case are not equal")
	}
	if !Equal(" MSSQLSvc/sql01:1433", "MSSQLSvc/sql01:1433 ") {
		t.Error("surrounding space should not matter")
	}
	if Equal("MSSQLSvc/sql01:1433", "MSSQLSvc/sql01:1434") {
		t.Error("different ports are equal")
	}
	if Equal("MSSQLSvc/sql01", "MSSQLSvc/sql01:1433") {
		t.Error("port and no port are equal")
	}
	if Key("MSSQLSvc/SQL01:INST1") != "mssqlsvc/sql01:inst1" {
		t.Errorf("Key = %q", Key("MSSQLSvc/SQL01:INST1"))
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"MSSQLSvc/sql01:1433", "MSSQLSvc/sql02:INST1", "ldap/dc/corp", "a/b:1/c", "x/y:01433"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parsed, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(parsed.String())
		if err != nil || again != parsed {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, parsed, parsed.String(), again, err)
		}
	})
}
