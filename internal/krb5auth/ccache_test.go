package krb5auth

import (
	"testing"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/types"
)

func TestOnlyTGTsDropsServiceTickets(t *testing.T) {
	cred := func(names ...string) *credentials.Credential {
		c := &credentials.Credential{}
		c.Server.PrincipalName = types.PrincipalName{NameString: names}
		return c
	}
	got := onlyTGTs([]*credentials.Credential{
		cred("krbtgt", "CORP.TEST"),
		cred("MSSQLSvc", "sqla.corp.test:1433"),
		cred(),
		cred("krbtgt", "OTHER.TEST"),
	})
	if len(got) != 2 || got[0].Server.PrincipalName.NameString[1] != "CORP.TEST" || got[1].Server.PrincipalName.NameString[1] != "OTHER.TEST" {
		t.Errorf("onlyTGTs kept %d credentials, want the two krbtgt ones", len(got))
	}
}
