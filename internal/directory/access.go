package directory

import (
	"context"
	"fmt"

	"github.com/kerberos-exporter/kerberos_exporter/internal/adsec"
)

// Schema GUIDs of msDS-AllowedToActOnBehalfOfOtherIdentity ([MS-ADA2] 2.218):
// its schemaIDGUID and its property set, Account Restrictions.
const (
	rbcdSchemaID           = "3f78c3e5-f79a-46bd-a0b8-9d18116ddc79"
	accountRestrictionsSet = "4c164200-20c0-11d0-a768-00aa006e0529"
)

// Access mask bits that grant reading a property ([MS-ADTS] 5.1.3.2).
const (
	rightReadProperty = 0x00000010 // RIGHT_DS_READ_PROPERTY
	genericAll        = 0x10000000
	genericRead       = 0x80000000
)

// Well-known SIDs every authenticated token holds.
const (
	sidEveryone           = "S-1-1-0"
	sidAuthenticatedUsers = "S-1-5-11"
)

// canReadProperty evaluates the DACL of sd for reading one property, as the
// DC's access check would for a token holding the given SIDs: the first ACE
// that names one of them and covers the right decides (deny ACEs come first
// in a canonical DACL). An object ACE covers the property when it names the
// property, its property set, or no object type at all. Ownership and
// privileges are not considered: where they would grant access, the answer
// errs towards "cannot read", which the exporter reports as unknown.
func canReadProperty(sd *adsec.SecurityDescriptor, token map[string]bool, propertyID, propertySetID string) bool {
	if sd.Control&adsec.ControlDACLPresent == 0 || sd.DACL == nil {
		return true // no DACL, or a NULL DACL: no restriction at all
	}
	for _, ace := range sd.DACL.ACEs {
		if ace.Flags&adsec.InheritOnly != 0 || ace.Mask&(rightReadProperty|genericAll|genericRead) == 0 {
			continue
		}
		var allow bool
		switch ace.Type {
		case adsec.AccessAllowed, adsec.AccessAllowedObject:
			allow = true
		case adsec.AccessDenied, adsec.AccessDeniedObject:
		default:
			continue
		}
		if !token[ace.SID.String()] {
			continue
		}
		if ace.ObjectFlags&adsec.ObjectTypePresent != 0 {
			if t := ace.ObjectType.String(); t != propertyID && t != propertySetID {
				continue
			}
		}
		return allow
	}
	return false
}

// tokenSIDs are the SIDs of this connection's identity, from the rootDSE's
// tokenGroups, which the DC computes for the bound session, plus the
// well-known SIDs every authenticated session holds.
func (c *Conn) tokenSIDs(ctx context.Context) (map[string]bool, error) {
	c.mu.Lock()
	token := c.token
	c.mu.Unlock()
	if token != nil {
		return token, nil
	}
	e, err := c.base(ctx, "", "(objectClass=*)", []string{"tokenGroups"})
	if err != nil {
		return nil, fmt.Errorf("reading this session's groups (rootDSE tokenGroups): %w", err)
	}
	token = map[string]bool{sidEveryone: true, sidAuthenticatedUsers: true}
	if e != nil {
		for _, raw := range e.GetRawAttributeValues("tokenGroups") {
			sid, _, err := adsec.ParseSID(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: rootDSE tokenGroups: %w", c.url, err)
			}
			token[sid.String()] = true
		}
	}
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	return token, nil
}
