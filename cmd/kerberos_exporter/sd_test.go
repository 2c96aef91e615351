package main

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

func TestSDListsEveryInstanceAsAProbeTarget(t *testing.T) {
	cfg := &config.Config{SQLInstances: []config.SQLInstance{
		{Name: "sqla", Host: "sqla.corp.test", Port: 1433},
		{Name: "sqlnamed", Host: "sqln.corp.test", InstanceName: "RED"},
	}}
	req := httptest.NewRequest("GET", "/sd", nil)
	req.Host = "exporter-1.corp.test:19088"
	rec := httptest.NewRecorder()
	sdHandler(func() *config.Config { return cfg })(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var groups []sdTargetGroup
	if err := json.Unmarshal(rec.Body.Bytes(), &groups); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	if len(groups) != 2 {
		t.Fatalf("%d target groups, want 2: %s", len(groups), rec.Body)
	}
	for i, want := range []map[string]string{
		{"__param_target": "sqla", "instance": "sqla", "__metrics_path__": "/probe", "__meta_kerberos_exporter_sql_port": "1433", "__meta_kerberos_exporter_sql_instance_name": ""},
		{"__param_target": "sqlnamed", "instance": "sqlnamed", "__metrics_path__": "/probe", "__meta_kerberos_exporter_sql_port": "", "__meta_kerberos_exporter_sql_instance_name": "RED"},
	} {
		g := groups[i]
		if len(g.Targets) != 1 || g.Targets[0] != "exporter-1.corp.test:19088" {
			t.Errorf("group %d targets %v, want the address /sd was asked on", i, g.Targets)
		}
		for k, v := range want {
			if g.Labels[k] != v {
				t.Errorf("group %d label %s = %q, want %q", i, k, g.Labels[k], v)
			}
		}
	}

	// No instances: an empty list, not null.
	rec = httptest.NewRecorder()
	sdHandler(func() *config.Config { return &config.Config{} })(rec, httptest.NewRequest("GET", "/sd", nil))
	if body := rec.Body.String(); body != "[]\n" {
		t.Errorf("empty fleet: %q, want []", body)
	}
}
