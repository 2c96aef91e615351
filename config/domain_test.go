package config

import "testing"

func TestFindDomain(t *testing.T) {
	cfg := &Config{Domains: []Domain{{Name: "corp.test", NetBIOSName: "CORPNET"}, {Name: "eu.corp.test"}}}
	for name, want := range map[string]string{
		"corp.test": "corp.test", "CORP.TEST": "corp.test", "corpnet": "corp.test",
		"EU": "eu.corp.test", "eu.corp.test": "eu.corp.test",
		"corp": "", // the first label is no name of a domain whose NetBIOS name is configured otherwise
		"":     "", "other": "",
	} {
		got := ""
		if d := cfg.FindDomain(name); d != nil {
			got = d.Name
		}
		if got != want {
			t.Errorf("FindDomain(%q) = %q, want %q", name, got, want)
		}
	}
}
