package dnscheck

import (
	"testing"
)

func TestSameName(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"sqla.corp.test", "sqla.corp.test.", true},
		{"SQLA.Corp.Test", "sqla.corp.test", true},
		{"sqla.corp.test.", "SQLA.CORP.TEST.", true},
		{"sqla.corp.test", "oldname.corp.test.", false},
		{"sqla.corp.test", "sqla", false},
		{"sqla.corp.test", "sqla.corp.test.example.", false},
	} {
		if got := SameName(c.a, c.b); got != c.want {
			t.Errorf("SameName(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestReverseMatches(t *testing.T) {
	host := "sqla.corp.test"
	for _, c := range []struct {
		name  string
		addrs []string
		ptr   map[string][]string
		want  bool
	}{
		{"one address, its PTR", []string{"10.0.0.1"}, map[string][]string{"10.0.0.1": {"SQLA.corp.test."}}, true},
		{"two addresses, both PTRs", []string{"10.0.0.1", "10.0.0.2"}, map[string][]string{"10.0.0.1": {"sqla.corp.test."}, "10.0.0.2": {"sqla.corp.test."}}, true},
		{"PTR names another host", []string{"10.0.0.1"}, map[string][]string{"10.0.0.1": {"oldname.corp.test."}}, false},
		{"one of two addresses wrong", []string{"10.0.0.1", "10.0.0.2"}, map[string][]string{"10.0.0.1": {"sqla.corp.test."}, "10.0.0.2": {"oldname.corp.test."}}, false},
		{"PTR names host and another", []string{"10.0.0.1"}, map[string][]string{"10.0.0.1": {"oldname.corp.test.", "sqla.corp.test."}}, false},
		{"no PTR for an address", []string{"10.0.0.1", "10.0.0.2"}, map[string][]string{"10.0.0.1": {"sqla.corp.test."}}, false},
		{"no addresses", nil, nil, false},
	} {
		if got := ReverseMatches(host, c.addrs, c.ptr); got != c.want {
			t.Errorf("%s: ReverseMatches = %v, want %v", c.name, got, c.want)
		}
	}
}
