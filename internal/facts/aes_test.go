package facts

import (
	"testing"
	"time"
)

func TestAESKeysPossible(t *testing.T) {
	born := time.Date(2005, 3, 1, 0, 0, 0, 0, time.UTC)
	raised := time.Date(2012, 6, 1, 0, 0, 0, 0, time.UTC)
	before, after := raised.AddDate(-1, 0, 0), raised.AddDate(1, 0, 0)
	// A domain created by a 2008 DC: its RID 521 group came seconds after it.
	bornAt2008 := born.Add(3 * time.Second)
	cases := []struct {
		name            string
		domain          DomainAES
		pwdLastSet      time.Time
		possible, known bool
	}{
		{"raised later, password after", DomainAES{Born: born, AESSince: raised}, after, true, true},
		{"raised later, password before", DomainAES{Born: born, AESSince: raised}, before, false, true},
		{"raised later, level 2008 read, password before", DomainAES{Born: born, AESSince: raised, FunctionalLevel: 3, FunctionalLevelKnown: true}, before, false, true},
		{"raised later, level 2016 read, password after", DomainAES{Born: born, AESSince: raised, FunctionalLevel: 7, FunctionalLevelKnown: true}, after, true, true},
		{"born at 2008, password at promotion", DomainAES{Born: born, AESSince: bornAt2008, FunctionalLevel: 3, FunctionalLevelKnown: true}, born.Add(time.Second), true, true},
		// A 2008+ DC made the RID 521 group, but the domain is still at the
		// 2003 level: no AES keys, whatever the dates say.
		{"born by a 2008 DC at the 2003 level", DomainAES{Born: born, AESSince: bornAt2008, FunctionalLevel: 2, FunctionalLevelKnown: true}, after, false, true},
		{"2003 level, password after the marker", DomainAES{Born: born, AESSince: raised, FunctionalLevel: 2, FunctionalLevelKnown: true}, after, false, true},
		{"2003 level, no RID 521 group", DomainAES{Born: born, FunctionalLevel: 2, FunctionalLevelKnown: true}, after, false, true},
		{"2000 level, password never set", DomainAES{Born: born, FunctionalLevel: 0, FunctionalLevelKnown: true}, time.Time{}, false, true},
		{"2008 level, no RID 521 group: unknown", DomainAES{Born: born, FunctionalLevel: 3, FunctionalLevelKnown: true}, after, false, false},
		{"level unknown, no RID 521 group: unknown", DomainAES{Born: born}, after, false, false},
		{"2008 level, password never set: unknown", DomainAES{Born: born, AESSince: raised, FunctionalLevel: 3, FunctionalLevelKnown: true}, time.Time{}, false, false},
		{"level unknown, marker known: dates decide", DomainAES{AESSince: raised}, before, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			possible, known := c.domain.AESKeysPossible(c.pwdLastSet)
			if possible != c.possible || known != c.known {
				t.Errorf("AESKeysPossible = %v, known %v; want %v, known %v", possible, known, c.possible, c.known)
			}
		})
	}
}
