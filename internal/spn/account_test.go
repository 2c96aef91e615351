package spn

import (
	"errors"
	"testing"
)

func TestParseAccount(t *testing.T) {
	const host = "SQL01"
	tests := []struct {
		raw, defaultDomain string
		kind               Kind
		domain, sam, upn   string
		str                string
		identity           string // "" means DirectoryIdentity must return ok=false
	}{
		{`CORP\svc_sql`, "", DomainUser, "CORP", "svc_sql", "", `CORP\svc_sql`, "svc_sql"},
		{`  corp \ svc_sql  `, "", DomainUser, "CORP", "svc_sql", "", `CORP\svc_sql`, "svc_sql"},
		{`Corp.Example.Com\Svc_SQL`, "", DomainUser, "CORP.EXAMPLE.COM", "Svc_SQL", "", `CORP.EXAMPLE.COM\Svc_SQL`, "Svc_SQL"},
		{`svc_sql@corp.example.com`, "", DomainUser, "CORP.EXAMPLE.COM", "svc_sql", "svc_sql@corp.example.com", `CORP.EXAMPLE.COM\svc_sql`, "svc_sql"},
		{`svc_sql`, "corp", DomainUser, "CORP", "svc_sql", "", `CORP\svc_sql`, "svc_sql"},
		{`gmsa_sql$`, "CORP", ManagedOrComputer, "CORP", "gmsa_sql$", "", `CORP\gmsa_sql$`, "gmsa_sql$"},
		{`CORP\gmsa_sql$`, "", ManagedOrComputer, "CORP", "gmsa_sql$", "", `CORP\gmsa_sql$`, "gmsa_sql$"},
		{`gmsa_sql$@corp.example.com`, "", ManagedOrComputer, "CORP.EXAMPLE.COM", "gmsa_sql$", "gmsa_sql$@corp.example.com", `CORP.EXAMPLE.COM\gmsa_sql$`, "gmsa_sql$"},
		{`LocalSystem`, "", LocalSystem, "NT AUTHORITY", "SYSTEM", "", `NT AUTHORITY\SYSTEM`, "SQL01$"},
		{`localsystem`, "CORP", LocalSystem, "NT AUTHORITY", "SYSTEM", "", `NT AUTHORITY\SYSTEM`, "SQL01$"},
		{`.\LocalSystem`, "", LocalSystem, "NT AUTHORITY", "SYSTEM", "", `NT AUTHORITY\SYSTEM`, "SQL01$"},
		{`NT AUTHORITY\SYSTEM`, "", LocalSystem, "NT AUTHORITY", "SYSTEM", "", `NT AUTHORITY\SYSTEM`, "SQL01$"},
		{`nt authority\system`, "", LocalSystem, "NT AUTHORITY", "SYSTEM", "", `NT AUTHORITY\SYSTEM`, "SQL01$"},
		{`NT AUTHORITY\NETWORK SERVICE`, "", NetworkService, "NT AUTHORITY", "NETWORK SERVICE", "", `NT AUTHORITY\NETWORK SERVICE`, "SQL01$"},
		{`NT AUTHORITY\NetworkService`, "", NetworkService, "NT AUTHORITY", "NETWORK SERVICE", "", `NT AUTHORITY\NETWORK SERVICE`, "SQL01$"},
		{`NetworkService`, "", NetworkService, "NT AUTHORITY", "NETWORK SERVICE", "", `NT AUTHORITY\NETWORK SERVICE`, "SQL01$"},
		{`NT  Authority\Network   Service`, "", NetworkService, "NT AUTHORITY", "NETWORK SERVICE", "", `NT AUTHORITY\NETWORK SERVICE`, "SQL01$"},
		{`NT AUTHORITY\LOCAL SERVICE`, "", LocalService, "NT AUTHORITY", "LOCAL SERVICE", "", `NT AUTHORITY\LOCAL SERVICE`, ""},
		{`NT AUTHORITY\LocalService`, "", LocalService, "NT AUTHORITY", "LOCAL SERVICE", "", `NT AUTHORITY\LOCAL SERVICE`, ""},
		{`LocalService`, "CORP", LocalService, "NT AUTHORITY", "LOCAL SERVICE", "", `NT AUTHORITY\LOCAL SERVICE`, ""},
		{`NT SERVICE\MSSQLSERVER`, "", Virtual, "NT SERVICE", "MSSQLSERVER", "", `NT SERVICE\MSSQLSERVER`, "SQL01$"},
		{`nt service\MSSQL$INST1`, "", Virtual, "NT SERVICE", "MSSQL$INST1", "", `NT SERVICE\MSSQL$INST1`, "SQL01$"},
		{`NT SERVICE\SQLSERVERAGENT`, "", Virtual, "NT SERVICE", "SQLSERVERAGENT", "", `NT SERVICE\SQLSERVERAGENT`, "SQL01$"},
		{`.\sqlsvc`, "CORP", Local, ".", "sqlsvc", "", `.\sqlsvc`, ""},
		// Without the host, HOSTNAME\user looks like a domain account; OnHost
		// and DirectoryIdentity know better.
		{`sql01\sqlsvc`, "", DomainUser, "SQL01", "sqlsvc", "", `SQL01\sqlsvc`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			a, err := ParseAccount(tt.raw, tt.defaultDomain)
			if err != nil {
				t.Fatalf("ParseAccount: %v", err)
			}
			if a.Kind != tt.kind || a.Domain != tt.domain || a.SAMAccountName != tt.sam || a.UPN != tt.upn {
				t.Errorf("got %+v (kind %v), want kind %v domain %q sam %q upn %q", a, a.Kind, tt.kind, tt.domain, tt.sam, tt.upn)
			}
			if a.String() != tt.str {
				t.Errorf("String() = %q, want %q", a.String(), tt.str)
			}
			sam, ok := a.DirectoryIdentity(host)
			if ok != (tt.identity != "") || sam != tt.identity {
				t.Errorf("DirectoryIdentity(%q) = %q, %v; want %q", host, sam, ok, tt.identity)
			}
		})
	}
}

func TestParseAccountErrors(t *testing.T) {
	for _, tt := range []struct{ raw, defaultDomain string }{
		{"", "CORP"},
		{"   ", "CORP"},
		{"svc_sql", ""},
		{"svc_sql", "  "},
		{`\svc_sql`, ""},
		{`CORP\`, ""},
		{`CORP\ `, ""},
		{`CORP\a\b`, ""},
		{`CORP\$`, ""},
		{`$`, "CORP"},
		{`CORP\svc@sql`, ""},
		{`CORP\svc*`, ""},
		{`CORP\svc:sql`, ""},
		{"CORP\\svc\x00", ""},
		{`C:RP\svc`, ""},
		{`CO RP\svc`, ""},
		{`@corp.example.com`, ""},
		{`svc@`, ""},
		{`svc@corp@example.com`, ""},
		{`svc@corp example.com`, ""},
		{`NT AUTHORITY\ANONYMOUS LOGON`, ""},
		{`NT AUTHORITY\`, ""},
		{`NT SERVICE\bad|name`, ""},
		{`.\bad>name`, ""},
		{`[garbage]`, "CORP"},
	} {
		if a, err := ParseAccount(tt.raw, tt.defaultDomain); err == nil {
			t.Errorf("ParseAccount(%q, %q) = %+v, want error", tt.raw, tt.defaultDomain, a)
		}
	}
	if _, err := ParseAccount(" ", ""); !errors.Is(err, errEmptyAccount) {
		t.Errorf("blank account: %v", err)
	}
}

func TestOnHost(t *testing.T) {
	local, _ := ParseAccount(`SQL01\sqlsvc`, "")
	if got := local.OnHost("sql01"); got.Kind != Local || got.String() != `SQL01\sqlsvc` {
		t.Errorf("HOST\\user on its host: %+v", got)
	}
	if got := local.OnHost("SQL02"); got.Kind != DomainUser {
		t.Errorf("on another host: %+v", got)
	}
	if got := local.OnHost(""); got != local {
		t.Errorf("no host changed the account: %+v", got)
	}
	dot, _ := ParseAccount(`.\sqlsvc`, "")
	if got := dot.OnHost(" sql01 "); got.Kind != Local || got.String() != `SQL01\sqlsvc` {
		t.Errorf(".\\user on host: %+v", got)
	}
	domain, _ := ParseAccount(`CORP\svc_sql`, "")
	if got := domain.OnHost("SQL01"); got != domain {
		t.Errorf("domain account changed: %+v", got)
	}
}

func TestDirectoryIdentityNeedsHost(t *testing.T) {
	for _, raw := range []string{"LocalSystem", `NT AUTHORITY\NETWORK SERVICE`, `NT SERVICE\MSSQLSERVER`} {
		a, err := ParseAccount(raw, "")
		if err != nil {
			t.Fatal(err)
		}
		if sam, ok := a.DirectoryIdentity(""); ok {
			t.Errorf("%s with no host: %q, want ok=false", raw, sam)
		}
		if sam, ok := a.DirectoryIdentity(" sql01$ "); !ok || sam != "SQL01$" {
			t.Errorf("%s: %q, %v", raw, sam, ok)
		}
	}
	var zero Account
	if sam, ok := zero.DirectoryIdentity("SQL01"); ok || zero.String() != "" {
		t.Errorf("zero account: %q %v %q", sam, ok, zero.String())
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		DomainUser: "domain_user", ManagedOrComputer: "managed_or_computer", Virtual: "virtual",
		LocalSystem: "local_system", NetworkService: "network_service", LocalService: "local_service",
		Local: "local", 0: "unknown", 99: "unknown",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}
