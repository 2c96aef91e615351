package collector

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func TestUsersMetrics(t *testing.T) {
	snap := facts.New(testTime)
	snap.Users = []facts.DelegatedPrincipal{
		{Name: `CORP\alice`, Found: true, Sensitive: true},
		{Name: `CORP\bob`, Found: true, ProtectedUsers: true},
		{Name: `CORP\carol`, Found: true},
		{Name: `CORP\nobody`},
		{Name: `CORP\timeout`, LookupError: "ldaps://dc1: timeout"},
		{Name: `CORP\SQL Admins`, Group: true, Found: true, ProtectedUsers: true},
	}
	c := snapshotMetrics{usersCollector{}, snap}
	want := `
# HELP kerberos_user_found Whether the delegated user or group exists in the directory (1) or not (0); absent when the directory could not be asked.
# TYPE kerberos_user_found gauge
kerberos_user_found{user="CORP\\SQL Admins"} 1
kerberos_user_found{user="CORP\\alice"} 1
kerberos_user_found{user="CORP\\bob"} 1
kerberos_user_found{user="CORP\\carol"} 1
kerberos_user_found{user="CORP\\nobody"} 0
# HELP kerberos_user_protected_users Whether the user or group is a member of Protected Users, directly or through nested groups: its tickets are never delegated.
# TYPE kerberos_user_protected_users gauge
kerberos_user_protected_users{user="CORP\\SQL Admins"} 1
kerberos_user_protected_users{user="CORP\\alice"} 0
kerberos_user_protected_users{user="CORP\\bob"} 1
kerberos_user_protected_users{user="CORP\\carol"} 0
# HELP kerberos_user_sensitive Whether the user is marked "account is sensitive and cannot be delegated" (userAccountControl 0x100000): its identity never crosses a second hop.
# TYPE kerberos_user_sensitive gauge
kerberos_user_sensitive{user="CORP\\SQL Admins"} 0
kerberos_user_sensitive{user="CORP\\alice"} 1
kerberos_user_sensitive{user="CORP\\bob"} 0
kerberos_user_sensitive{user="CORP\\carol"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}
