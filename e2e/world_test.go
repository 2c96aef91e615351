package e2e

import (
	"testing"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// testWorld is the AD test world (Samba DCs, fixtures, keytabs).
type testWorld = world.World

// startWorld makes sure the test world is up. Without it the live tests
// fail, except under -short, where they are skipped.
func startWorld(t *testing.T) *testWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no test world")
	}
	w, err := world.Start()
	if err != nil {
		t.Fatalf("the test world is not available: %v", err)
	}
	return w
}
