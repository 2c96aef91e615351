package collector

import (
	"errors"
	"testing"
)

func TestSplitIncomplete(t *testing.T) {
	dns := &Incomplete{Skipped: 120, Total: 300, Items: "hosts", Reason: "deadline"}
	if got := dns.Error(); got != "120 of 300 hosts not checked this cycle (deadline)" {
		t.Errorf("message %q", got)
	}
	other := errors.New("login failed")
	for _, tc := range []struct {
		name      string
		err       error
		skipped   int
		wantOther bool
	}{
		{"nil", nil, 0, false},
		{"only skipped", dns, 1, false},
		{"only a failure", other, 0, true},
		{"both, joined", errors.Join(other, dns), 1, true},
		{"two skipped, joined", errors.Join(dns, &Incomplete{Skipped: 1, Total: 2, Items: "SPNs"}), 2, false},
	} {
		skipped, rest := SplitIncomplete(tc.err)
		if len(skipped) != tc.skipped || (rest != nil) != tc.wantOther {
			t.Errorf("%s: skipped %v, rest %v", tc.name, skipped, rest)
		}
		if rest != nil && !errors.Is(rest, other) {
			t.Errorf("%s: rest %v lost the failure", tc.name, rest)
		}
	}
}
