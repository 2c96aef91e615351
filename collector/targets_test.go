package collector

import (
	"reflect"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

var testTime = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

func targetsConfig() *config.Config {
	return &config.Config{
		Domains: []config.Domain{
			{Name: "corp.test", NetBIOSName: "CORP", BaseDN: "DC=corp,DC=test"},
			{Name: "child.corp.test", BaseDN: "DC=child,DC=corp,DC=test"}, // no netbios_name: CHILD
		},
		SQLInstances: []config.SQLInstance{
			{Name: "sqla", Host: "sqla.corp.test", NetBIOSName: "sqla", Port: 1433, Domain: "corp.test", ServiceAccount: "CORP\\sqlsvc_a"},
			{Name: "named", Host: "sqln.corp.test", InstanceName: "INST1", Domain: "corp.test"},
			{Name: "sqle", Host: "sqle.corp.test", Port: 1433, Domain: "corp.test"},
			{Name: "upn", Host: "sqlu.child.corp.test", Port: 1433, Domain: "child.corp.test", ServiceAccount: "svc@CHILD.corp.test"},
			{Name: "local", Host: "sqll.corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: "NT AUTHORITY\\LOCAL SERVICE"},
			{Name: "unknown", Host: "sqlx.corp.test", Port: 1433, Domain: "corp.test"},
			{Name: "ag", Host: "node1.corp.test", Port: 1433, Domain: "corp.test", ServiceAccount: "sqlsvc_ag",
				AGListener: "aglisten.corp.test", AGListenerPort: 1450},
		},
		Services: []config.Service{
			{Name: "crm", Account: "CORP\\crmweb", SPNs: []string{"HTTP/crm.corp.test", "HTTP/crm", "http/CRM.corp.test"}},
			{Name: "foreign", Account: "OTHER\\svc", SPNs: []string{"HTTP/x.other.test"}},
		},
	}
}

func TestTargets(t *testing.T) {
	cfg := targetsConfig()
	snap := facts.New(testTime)
	// What the sql collector learnt: a dynamic port for the named instance,
	// and the engine accounts of instances without service_account.
	snap.SQL["named"] = &facts.SQLInstance{Name: "named", ListenerPorts: []int{50123}, EngineAccount: "NT Service\\MSSQL$INST1", PhysicalNetBIOS: "SQLN"}
	snap.SQL["sqle"] = &facts.SQLInstance{Name: "sqle", ListenerPorts: []int{1433, 1433}, EngineAccount: "LocalSystem"}
	snap.SQL["sqla"] = &facts.SQLInstance{Name: "sqla", ListenerPorts: []int{1433}, EngineAccount: "CORP\\somebody_else"}

	corp, child := cfg.Domains[0].Name, cfg.Domains[1].Name
	want := []Target{
		{Name: "sqla", SQL: true, HostNetBIOS: "sqla", Domain: corp, Account: `CORP\sqlsvc_a`, SAM: "sqlsvc_a", AccountSource: "config",
			SPNs: []string{"MSSQLSvc/sqla.corp.test:1433", "MSSQLSvc/sqla.corp.test", "MSSQLSvc/sqla:1433", "MSSQLSvc/sqla"}},
		{Name: "named", SQL: true, HostNetBIOS: "SQLN", Domain: corp, Account: `CORP\SQLN$`, SAM: "SQLN$", AccountSource: "sql",
			SPNs: []string{"MSSQLSvc/sqln.corp.test:INST1", "MSSQLSvc/sqln.corp.test:50123"}},
		{Name: "sqle", SQL: true, HostNetBIOS: "sqle", Domain: corp, Account: `CORP\SQLE$`, SAM: "SQLE$", AccountSource: "sql",
			SPNs: []string{"MSSQLSvc/sqle.corp.test:1433", "MSSQLSvc/sqle.corp.test"}},
		{Name: "upn", SQL: true, HostNetBIOS: "sqlu", Domain: child, Account: `CHILD\svc`, SAM: "svc", AccountSource: "config",
			SPNs: []string{"MSSQLSvc/sqlu.child.corp.test:1433", "MSSQLSvc/sqlu.child.corp.test"}},
		{Name: "local", SQL: true, HostNetBIOS: "sqll",
			SPNs:           []string{"MSSQLSvc/sqll.corp.test:1433", "MSSQLSvc/sqll.corp.test"},
			AccountProblem: `NT AUTHORITY\LOCAL SERVICE has no account in the directory: Kerberos to a service running as it cannot work`},
		{Name: "unknown", SQL: true, HostNetBIOS: "sqlx", SPNs: []string{"MSSQLSvc/sqlx.corp.test:1433", "MSSQLSvc/sqlx.corp.test"}},
		{Name: "ag", SQL: true, HostNetBIOS: "node1", Domain: corp, Account: `CORP\sqlsvc_ag`, SAM: "sqlsvc_ag", AccountSource: "config",
			SPNs: []string{"MSSQLSvc/node1.corp.test:1433", "MSSQLSvc/node1.corp.test", "MSSQLSvc/aglisten.corp.test:1450", "MSSQLSvc/aglisten.corp.test"}},
		{Name: "crm", Domain: corp, Account: `CORP\crmweb`, SAM: "crmweb", AccountSource: "config",
			SPNs: []string{"HTTP/crm.corp.test", "HTTP/crm"}},
		{Name: "foreign", Account: `OTHER\svc`, SAM: "svc", AccountSource: "config", SPNs: []string{"HTTP/x.other.test"}},
	}
	got := Targets(cfg, snap)
	if len(got) != len(want) {
		t.Fatalf("Targets returned %d targets, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("target %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if again := Targets(cfg, snap); !reflect.DeepEqual(again, got) {
		t.Error("Targets is not deterministic")
	}
}

func TestTargetsWithoutFacts(t *testing.T) {
	cfg := targetsConfig()
	got := Targets(cfg, nil)
	if got[1].Name != "named" || !reflect.DeepEqual(got[1].SPNs, []string{"MSSQLSvc/sqln.corp.test:INST1"}) || got[1].Account != "" {
		t.Errorf("named instance without facts: %+v; want only the instance-name SPN and no account", got[1])
	}
}

// TestHostNetBIOSCutsMachineName: a named instance may report its
// MachineName as HOST\INSTANCE; the host part names machine-local accounts,
// as the diagnosis reads them (one spn.HostNetBIOS for both).
func TestHostNetBIOSCutsMachineName(t *testing.T) {
	inst := &config.SQLInstance{Name: "named", Host: "sqln.corp.test"}
	if got := hostNetBIOS(inst, &facts.SQLInstance{MachineName: `SQLN\INST1`}); got != "SQLN" {
		t.Errorf("hostNetBIOS = %q, want SQLN", got)
	}
	if got := hostNetBIOS(inst, nil); got != "sqln" {
		t.Errorf("hostNetBIOS without the server's answer = %q, want sqln", got)
	}
}
