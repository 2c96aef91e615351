package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

// A domain below the 2008 functional level makes no AES keys: every account
// of it is reported without them, even one whose password is newer than the
// RID 521 group (made by a 2008 DC) and one whose password time is unknown;
// a domain at the 2008 level without that group stays unknown.
func TestAESKeysMetricsFunctionalLevel(t *testing.T) {
	snap := facts.New(testTime)
	born := time.Date(2005, 3, 1, 0, 0, 0, 0, time.UTC)
	recent := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	snap.AESDomains = []facts.DomainAES{
		{Domain: "old.test", Born: born, AESSince: born.Add(3 * time.Second), FunctionalLevel: 2, FunctionalLevelKnown: true,
			Krbtgt: facts.AccountKeys{Name: `OLD\krbtgt`, Domain: "old.test", Found: true, PwdLastSet: born}},
		{Domain: "nomarker.test", Born: born, FunctionalLevel: 3, FunctionalLevelKnown: true,
			Krbtgt: facts.AccountKeys{Name: `NOMARKER\krbtgt`, Domain: "nomarker.test", Found: true, PwdLastSet: recent}},
	}
	snap.AccountKeys = []facts.AccountKeys{
		{Name: `OLD\sqlsvc`, Domain: "old.test", Found: true, PwdLastSet: recent},
		{Name: `OLD\mustchange`, Domain: "old.test", Found: true},
		{Name: `NOMARKER\sqlsvc`, Domain: "nomarker.test", Found: true, PwdLastSet: recent},
	}
	c := snapshotMetrics{aesKeysCollector{}, snap}
	want := `
# HELP kerberos_account_aes_keys_possible Whether the account can have AES keys (1: password set after the domain could make them) or not (0: RC4 key only, no ticket once DCs enforce AES); service accounts and each domain's krbtgt; absent when unknown.
# TYPE kerberos_account_aes_keys_possible gauge
kerberos_account_aes_keys_possible{account="OLD\\krbtgt"} 0
kerberos_account_aes_keys_possible{account="OLD\\mustchange"} 0
kerberos_account_aes_keys_possible{account="OLD\\sqlsvc"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "kerberos_account_aes_keys_possible"); err != nil {
		t.Error(err)
	}
	requireLintClean(t, c)
}
