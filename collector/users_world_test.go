package collector

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

func TestWorldUsersCollector(t *testing.T) {
	w := world.ForTest(t)
	cfg := worldConfig(t, w, nil, `delegated_principals:
  users: ['CORP\alice', bob, carol@corp.test, 'CORP\nobody_here']
  groups: [Domain Users, 'CORP\Protected Users']
`)
	snap := facts.New(testTime)
	if err := (usersCollector{}).Update(context.Background(), worldEnv(cfg), snap); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if len(snap.Users) != 6 || !snap.Users[4].Group || snap.Users[0].Group {
		t.Fatalf("users: %+v; want 4 users then 2 groups, in configuration order", snap.Users)
	}
	if !snap.Users[0].Found || snap.Users[0].Disabled || snap.Users[0].Locked {
		t.Errorf("alice: %+v; want found, enabled, not locked", snap.Users[0])
	}
	c := snapshotMetrics{usersCollector{}, snap}
	want := `
# HELP kerberos_user_found Whether the delegated user or group exists in the directory (1) or not (0); absent when the directory could not be asked.
# TYPE kerberos_user_found gauge
kerberos_user_found{user="CORP\\Domain Users"} 1
kerberos_user_found{user="CORP\\Protected Users"} 1
kerberos_user_found{user="CORP\\alice"} 1
kerberos_user_found{user="CORP\\bob"} 1
kerberos_user_found{user="CORP\\carol"} 1
kerberos_user_found{user="CORP\\nobody_here"} 0
# HELP kerberos_user_protected_users Whether the user or group is a member of Protected Users, directly or through nested groups: its tickets are never delegated.
# TYPE kerberos_user_protected_users gauge
kerberos_user_protected_users{user="CORP\\Domain Users"} 0
kerberos_user_protected_users{user="CORP\\Protected Users"} 0
kerberos_user_protected_users{user="CORP\\alice"} 0
kerberos_user_protected_users{user="CORP\\bob"} 1
kerberos_user_protected_users{user="CORP\\carol"} 0
# HELP kerberos_user_sensitive Whether the user is marked "account is sensitive and cannot be delegated" (userAccountControl 0x100000): its identity never crosses a second hop.
# TYPE kerberos_user_sensitive gauge
kerberos_user_sensitive{user="CORP\\Domain Users"} 0
kerberos_user_sensitive{user="CORP\\Protected Users"} 0
kerberos_user_sensitive{user="CORP\\alice"} 1
kerberos_user_sensitive{user="CORP\\bob"} 0
kerberos_user_sensitive{user="CORP\\carol"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}
