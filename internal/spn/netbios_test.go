package spn

import "testing"

func TestHostNetBIOS(t *testing.T) {
	for _, tc := range []struct{ configured, physical, machine, fqdn, want string }{
		{"SQLA-NB", "SQLA", "SQLA", "sqla.corp.test", "SQLA-NB"},
		{"", "NODE1", "SQLCLUS", "sqlclus.corp.test", "NODE1"},
		{"", "", `SQLA\INST1`, "sqla.corp.test", "SQLA"}, // cut at the backslash
		{"", "", "", "sqla.corp.test", "sqla"},
		{"", "", "", "", ""},
	} {
		if got := HostNetBIOS(tc.configured, tc.physical, tc.machine, tc.fqdn); got != tc.want {
			t.Errorf("HostNetBIOS(%q, %q, %q, %q) = %q, want %q", tc.configured, tc.physical, tc.machine, tc.fqdn, got, tc.want)
		}
	}
}
