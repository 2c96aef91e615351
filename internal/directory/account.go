package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/kerberos-exporter/kerberos_exporter/internal/adsec"
	"github.com/kerberos-exporter/kerberos_exporter/internal/uac"
)

// ErrNotFound is returned when no account has the name asked for.
var ErrNotFound = errors.New("no such account")

// Account is a security principal as the directory describes it.
type Account struct {
	DN             string
	SAMAccountName string
	// Name is DOMAIN\sam with the domain's NetBIOS name in upper case.
	Name string
	// Kind is user, computer, managed (a (group) managed service account),
	// group or other.
	Kind string
	SID  adsec.SID

	UserAccountControl uac.Flags
	// Locked is the UF_LOCKOUT bit of msDS-User-Account-Control-Computed,
	// which accounts for the lockout duration; lockoutTime alone does not.
	Locked      bool
	LockoutTime int64 // FILETIME of the lockout, 0 when not locked out

	SPNs                []string
	AllowedToDelegateTo []string
	// RBCD is msDS-AllowedToActOnBehalfOfOtherIdentity, nil when unset or
	// unreadable; RBCDReadable says which (see the package comment).
	RBCD         *adsec.SecurityDescriptor
	RBCDReadable bool
	// SupportedEncTypes is msDS-SupportedEncryptionTypes, 0 when unset.
	SupportedEncTypes uac.EncTypes
	MemberOf          []string
}

const (
	attrRBCD     = "msDS-AllowedToActOnBehalfOfOtherIdentity"
	attrComputed = "msDS-User-Account-Control-Computed"
	ufLockout    = 0x10 // UF_LOCKOUT in msDS-User-Account-Control-Computed
)

var accountAttrs = []string{
	"sAMAccountName", "objectClass", "objectSid", "userAccountControl", attrComputed, "lockoutTime",
	"servicePrincipalName", "msDS-AllowedToDelegateTo", attrRBCD, "msDS-SupportedEncryptionTypes",
	"memberOf", "nTSecurityDescriptor",
}

// sdFlagsDACL is the LDAP_SERVER_SD_FLAGS control asking for the owner,
// group and DACL of nTSecurityDescriptor only: without it the server also
// tries the SACL, which an unprivileged reader may not see, and then omits
// the whole descriptor. The value is BER SEQUENCE { INTEGER 7 }.
var sdFlagsDACL = ldap.NewControlString(ldap.ControlTypeMicrosoftSDFlags, true, "\x30\x03\x02\x01\x07")

// LookupAccount reads the account with the given sAMAccountName from this
// connection's domain. msDS-AllowedToActOnBehalfOfOtherIdentity is not in
// the Global Catalog: ask a DC of the account's domain (a Conn from Dial).
func (c *Conn) LookupAccount(ctx context.Context, sam string) (*Account, error) {
	filter := "(sAMAccountName=" + ldap.EscapeFilter(sam) + ")"
	var found []*ldap.Entry
	err := c.forEach(ctx, c.baseDN, filter, accountAttrs, []ldap.Control{sdFlagsDACL}, func(e *ldap.Entry) error {
		found = append(found, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("looking up account %s: %w", sam, err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("account %s in %s: %w", sam, c.scope(), ErrNotFound)
	case 1:
	default:
		return nil, fmt.Errorf("account %s: %d objects in %s have this sAMAccountName", sam, len(found), c.scope())
	}
	return c.account(ctx, found[0])
}

func (c *Conn) account(ctx context.Context, e *ldap.Entry) (*Account, error) {
	a := &Account{
		DN:                  e.DN,
		SAMAccountName:      e.GetAttributeValue("sAMAccountName"),
		Kind:                kind(e.GetAttributeValues("objectClass")),
		SPNs:                e.GetAttributeValues("servicePrincipalName"),
		AllowedToDelegateTo: e.GetAttributeValues("msDS-AllowedToDelegateTo"),
		MemberOf:            e.GetAttributeValues("memberOf"),
	}
	name, err := c.AccountName(ctx, a.DN, a.SAMAccountName)
	if err != nil {
		return nil, err
	}
	a.Name = name
	if raw := e.GetRawAttributeValue("objectSid"); len(raw) > 0 {
		sid, _, err := adsec.ParseSID(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: objectSid: %w", a.DN, err)
		}
		a.SID = sid
	}
	if v := e.GetAttributeValue("userAccountControl"); v != "" {
		if a.UserAccountControl, err = uac.ParseFlags(v); err != nil {
			return nil, fmt.Errorf("%s: userAccountControl: %w", a.DN, err)
		}
	}
	computedValue := e.GetAttributeValue(attrComputed)
	if computedValue == "" && a.Kind != "group" {
		// Some constructed attributes are only computed for base-scope reads.
		be, err := c.base(ctx, a.DN, "(objectClass=*)", []string{attrComputed})
		if err != nil {
			return nil, fmt.Errorf("%s: reading %s: %w", a.DN, attrComputed, err)
		}
		if be != nil {
			computedValue = be.GetAttributeValue(attrComputed)
		}
	}
	if v := computedValue; v != "" {
		computed, err := uac.ParseFlags(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", a.DN, attrComputed, err)
		}
		a.Locked = computed&ufLockout != 0
	}
	if v := e.GetAttributeValue("lockoutTime"); v != "" {
		if a.LockoutTime, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("%s: lockoutTime %q is not a number", a.DN, v)
		}
	}
	if v := e.GetAttributeValue("msDS-SupportedEncryptionTypes"); v != "" {
		if a.SupportedEncTypes, err = uac.ParseEncTypes(v); err != nil {
			return nil, fmt.Errorf("%s: msDS-SupportedEncryptionTypes: %w", a.DN, err)
		}
	}
	if raw := e.GetRawAttributeValue(attrRBCD); len(raw) > 0 {
		sd, err := adsec.ParseSecurityDescriptor(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", a.DN, attrRBCD, err)
		}
		a.RBCD, a.RBCDReadable = sd, true
	} else if raw := e.GetRawAttributeValue("nTSecurityDescriptor"); len(raw) > 0 {
		// Absent: unset, or withheld from us? The object's DACL says.
		sd, err := adsec.ParseSecurityDescriptor(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: nTSecurityDescriptor: %w", a.DN, err)
		}
		token, err := c.tokenSIDs(ctx)
		if err != nil {
			return nil, err
		}
		a.RBCDReadable = canReadProperty(sd, token, rbcdSchemaID, accountRestrictionsSet)
	}
	return a, nil
}

// kind names the most specific structural class of an account.
func kind(classes []string) string {
	has := func(name string) bool {
		for _, c := range classes {
			if strings.EqualFold(c, name) {
				return true
			}
		}
		return false
	}
	switch {
	case has("msDS-GroupManagedServiceAccount"), has("msDS-ManagedServiceAccount"):
		return "managed"
	case has("computer"):
		return "computer"
	case has("user"):
		return "user"
	case has("group"):
		return "group"
	}
	return "other"
}

// scope names where this connection searches, for errors.
func (c *Conn) scope() string {
	if c.baseDN == "" {
		return "the forest (global catalog " + c.url + ")"
	}
	return c.baseDN
}

// Holder is an account holding an SPN.
type Holder struct {
	DN             string
	SAMAccountName string
	Name           string // DOMAIN\sam
}

// spnsPerSearch bounds the OR filter of one holder search: large fleets ask
// about hundreds of SPNs, and one search per SPN costs a round trip each.
// A variable so that a test can make one search return hundreds of holders.
var spnsPerSearch = 64

// FindHoldersOfSPNs returns, for each of spns as given, the accounts whose
// servicePrincipalName holds it (compared ignoring case, as AD does), asking
// about up to spnsPerSearch SPNs per search. An SPN no account holds has no
// entry. On a Global Catalog it covers the forest.
func (c *Conn) FindHoldersOfSPNs(ctx context.Context, spns []string) (map[string][]Holder, error) {
	wanted := map[string][]string{} // lower-case SPN -> the spellings asked for
	var unique []string
	for _, s := range spns {
		key := strings.ToLower(s)
		if len(wanted[key]) == 0 {
			unique = append(unique, s)
		}
		if !slices.Contains(wanted[key], s) {
			wanted[key] = append(wanted[key], s)
		}
	}
	names, err := c.netbiosNames(ctx) // read before any search: callbacks do no I/O
	if err != nil {
		return nil, err
	}
	out := map[string][]Holder{}
	for chunk := range slices.Chunk(unique, spnsPerSearch) {
		var filter strings.Builder
		filter.WriteString("(|")
		for _, s := range chunk {
			filter.WriteString("(servicePrincipalName=" + ldap.EscapeFilter(s) + ")")
		}
		filter.WriteString(")")
		err := c.forEach(ctx, c.baseDN, filter.String(), []string{"sAMAccountName", "servicePrincipalName"}, nil, func(e *ldap.Entry) error {
			h, err := c.holder(names, e)
			if err != nil {
				return err
			}
			seen := map[string]bool{} // an account lists an SPN once, whatever its case
			for _, held := range e.GetAttributeValues("servicePrincipalName") {
				key := strings.ToLower(held)
				if seen[key] {
					continue
				}
				seen[key] = true
				for _, asked := range wanted[key] {
					out[asked] = append(out[asked], h)
				}
			}
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("looking up holders of %s: %w", describeSPNs(chunk), err)
		}
	}
	return out, nil
}

// describeSPNs names the SPNs of a failed search, briefly.
func describeSPNs(spns []string) string {
	if len(spns) == 1 {
		return "SPN " + spns[0]
	}
	return fmt.Sprintf("%d SPNs (%s, ...)", len(spns), spns[0])
}

// ForEachSPNHolder streams every account that holds at least one SPN, with
// its SPNs, page by page. On a Global Catalog it covers the forest.
// fn must not search c (it gets errNestedSearch).
func (c *Conn) ForEachSPNHolder(ctx context.Context, fn func(h Holder, spns []string) error) error {
	names, err := c.netbiosNames(ctx) // read before the scan: callbacks do no I/O
	if err != nil {
		return err
	}
	return c.forEach(ctx, c.baseDN, "(servicePrincipalName=*)", []string{"sAMAccountName", "servicePrincipalName"}, nil,
		func(e *ldap.Entry) error {
			h, err := c.holder(names, e)
			if err != nil {
				return err
			}
			return fn(h, e.GetAttributeValues("servicePrincipalName"))
		})
}

func (c *Conn) holder(names map[string]string, e *ldap.Entry) (Holder, error) {
	sam := e.GetAttributeValue("sAMAccountName")
	name, err := c.accountName(names, e.DN, sam)
	return Holder{DN: e.DN, SAMAccountName: sam, Name: name}, err
}

// ResolveSIDs maps SIDs to DOMAIN\sam names. SIDs that name no object in
// this connection's scope are left out of the result.
func (c *Conn) ResolveSIDs(ctx context.Context, sids []adsec.SID) (map[adsec.SID]string, error) {
	names, err := c.netbiosNames(ctx) // read before any search: callbacks do no I/O
	if err != nil {
		return nil, err
	}
	out := make(map[adsec.SID]string, len(sids))
	const chunk = 50 // keeps filters short
	for start := 0; start < len(sids); start += chunk {
		var filter strings.Builder
		filter.WriteString("(|")
		for _, sid := range sids[start:min(start+chunk, len(sids))] {
			filter.WriteString("(objectSid=" + sid.FilterValue() + ")")
		}
		filter.WriteString(")")
		err := c.forEach(ctx, c.baseDN, filter.String(), []string{"sAMAccountName", "objectSid"}, nil, func(e *ldap.Entry) error {
			sid, _, err := adsec.ParseSID(e.GetRawAttributeValue("objectSid"))
			if err != nil {
				return fmt.Errorf("%s: objectSid: %w", e.DN, err)
			}
			name, err := c.accountName(names, e.DN, e.GetAttributeValue("sAMAccountName"))
			out[sid] = name
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("resolving SIDs: %w", err)
		}
	}
	return out, nil
}

// ProtectedUsersMember reports whether the object at dn is a member, directly
// or through nested groups, of the Protected Users group of this
// connection's domain. The group is found by its well-known RID (525), not
// by its name, which is localised and can be renamed. A domain without the
// group (older than Windows Server 2012) has no members.
func (c *Conn) ProtectedUsersMember(ctx context.Context, dn string) (bool, error) {
	group, err := c.protectedUsersDN(ctx)
	if err != nil || group == "" {
		return false, err
	}
	// LDAP_MATCHING_RULE_IN_CHAIN walks nested membership on the server.
	e, err := c.base(ctx, dn, "(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(group)+")", []string{"1.1"})
	if err != nil {
		return false, fmt.Errorf("checking Protected Users membership of %s: %w", dn, err)
	}
	return e != nil, nil
}

const ridProtectedUsers = 525

func (c *Conn) protectedUsersDN(ctx context.Context) (string, error) {
	domainSID, err := c.DomainSID(ctx)
	if err != nil {
		return "", err
	}
	sid, err := adsec.ParseSIDString(domainSID + "-" + strconv.Itoa(ridProtectedUsers))
	if err != nil {
		return "", fmt.Errorf("building the Protected Users SID from %s: %w", domainSID, err)
	}
	var dn string
	err = c.forEach(ctx, c.baseDN, "(objectSid="+sid.FilterValue()+")", []string{"1.1"}, nil, func(e *ldap.Entry) error {
		dn = e.DN
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("finding the Protected Users group (%s): %w", sid, err)
	}
	return dn, nil
}

// DomainSID is the SID of this connection's domain, from the objectSid of
// the domain partition's head.
func (c *Conn) DomainSID(ctx context.Context) (string, error) {
	c.mu.Lock()
	cached := c.domainSID
	c.mu.Unlock()
	if cached != "" {
		return cached, nil
	}
	base := c.domain.BaseDN
	e, err := c.base(ctx, base, "(objectClass=*)", []string{"objectSid"})
	if err != nil {
		return "", fmt.Errorf("reading the domain SID of %s: %w", base, err)
	}
	if e == nil || len(e.GetRawAttributeValue("objectSid")) == 0 {
		return "", fmt.Errorf("%s: the domain head %s has no objectSid", c.url, base)
	}
	sid, _, err := adsec.ParseSID(e.GetRawAttributeValue("objectSid"))
	if err != nil {
		return "", fmt.Errorf("%s: objectSid of %s: %w", c.url, base, err)
	}
	c.mu.Lock()
	c.domainSID = sid.String()
	c.mu.Unlock()
	return sid.String(), nil
}

// AccountName returns DOMAIN\sam for the object at dn, with the NetBIOS name
// of the domain the object lives in (from the forest's partitions
// container, read once per connection).
// It may search (once per connection): never call it from a search callback.
func (c *Conn) AccountName(ctx context.Context, dn, sam string) (string, error) {
	names, err := c.netbiosNames(ctx)
	if err != nil {
		return "", err
	}
	return c.accountName(names, dn, sam)
}

// accountName is AccountName with the NetBIOS names already read: no I/O.
func (c *Conn) accountName(names map[string]string, dn, sam string) (string, error) {
	domainDN := domainOf(dn)
	nb := names[upper(domainDN)]
	if nb == "" && strings.EqualFold(domainDN, c.domain.BaseDN) {
		nb = c.domain.NetBIOSName
	}
	if nb == "" {
		return "", fmt.Errorf("%s: no NetBIOS name known for the domain %s of %s; set netbios_name", c.url, domainDN, dn)
	}
	return upper(nb) + `\` + sam, nil
}

// domainOf returns the trailing DC= components of a DN: the naming context
// of the domain the object lives in.
func domainOf(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return ""
	}
	i := len(parsed.RDNs)
	for i > 0 {
		rdn := parsed.RDNs[i-1]
		if len(rdn.Attributes) != 1 || !strings.EqualFold(rdn.Attributes[0].Type, "DC") {
			break
		}
		i--
	}
	parts := make([]string, 0, len(parsed.RDNs)-i)
	for _, rdn := range parsed.RDNs[i:] {
		parts = append(parts, "DC="+rdn.Attributes[0].Value)
	}
	return strings.Join(parts, ",")
}

// netbiosNames maps each domain partition of the forest to its NetBIOS name,
// from the crossRef objects of CN=Partitions. A server that hides them is
// not an error: the configured netbios_name of this connection's domain
// still names its own accounts.
func (c *Conn) netbiosNames(ctx context.Context) (map[string]string, error) {
	c.mu.Lock()
	names := c.netbios
	c.mu.Unlock()
	if names != nil {
		return names, nil
	}
	root, err := c.rootDSE(ctx)
	if err != nil {
		return nil, err
	}
	names = map[string]string{}
	if root.configurationContext != "" {
		err := c.forEach(ctx, "CN=Partitions,"+root.configurationContext, "(&(objectClass=crossRef)(nETBIOSName=*))",
			[]string{"nCName", "nETBIOSName"}, nil, func(e *ldap.Entry) error {
				names[upper(e.GetAttributeValue("nCName"))] = e.GetAttributeValue("nETBIOSName")
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("reading domain NetBIOS names: %w", err)
		}
	}
	c.mu.Lock()
	c.netbios = names
	c.mu.Unlock()
	return names, nil
}
