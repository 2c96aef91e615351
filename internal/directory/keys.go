package directory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/kerberos-exporter/kerberos_exporter/internal/adsec"
)

// When AES keys can exist.
//
// The directory does not say which keys an account has: they sit in
// supplementalCredentials, which only replication (DCSync) reads. An account
// gets AES keys whenever its password is set on a domain at the Windows
// Server 2008 functional level or higher; raising a domain to that level
// creates its "Read-only Domain Controllers" group (RID 521). So an account
// whose pwdLastSet is older than that group's whenCreated has no AES keys,
// and one set later has them. This is the PowerShell date comparison of
// "Auditing Kerberos Keys", method 1
// (https://strongwind1.github.io/Kerberos/security/account-key-audit): an
// approximation (a password set in the minutes of the functional-level raise
// may go either way; a restored or migrated account may carry older keys),
// which is why the exporter also reports the ticket etype the KDC really
// chose.

// DomainAES is when a domain became able to make AES keys.
type DomainAES struct {
	// AESSince is whenCreated of the Read-only Domain Controllers group.
	AESSince time.Time
	// Born is whenCreated of the domain's naming context. A domain created
	// at the 2008 level gets its RID 521 group during its own promotion,
	// seconds after its first objects (krbtgt among them).
	Born time.Time
	// FunctionalLevel is msDS-Behavior-Version of the domain head (3 is
	// Windows Server 2008); FunctionalLevelKnown says whether it was read.
	// The RID 521 group comes with the first 2008 DC (or adprep /rodcprep),
	// not with the functional level, so a domain can have it and still make
	// no AES keys.
	FunctionalLevel      int
	FunctionalLevelKnown bool
}

// ReadDomainAES reads the creation times of the domain's Read-only Domain
// Controllers group (found by its SID, domain SID + RID 521, since it may
// have been renamed) and of the domain itself, and the domain functional
// level. A domain without that group has never had a 2008 DC: AESSince is
// then zero, without error.
func (c *Conn) ReadDomainAES(ctx context.Context) (DomainAES, error) {
	var out DomainAES
	head, err := c.base(ctx, c.domain.BaseDN, "(objectClass=*)", []string{"whenCreated", "msDS-Behavior-Version"})
	if err != nil {
		return out, fmt.Errorf("reading the creation time of %s: %w", c.domain.BaseDN, err)
	}
	if head != nil {
		out.Born, _ = parseGeneralizedTime(head.GetAttributeValue("whenCreated"))
		// Absent or unparseable: unknown, and the dates alone decide.
		if level, err := strconv.Atoi(head.GetAttributeValue("msDS-Behavior-Version")); err == nil && level >= 0 {
			out.FunctionalLevel, out.FunctionalLevelKnown = level, true
		}
	}
	domainSID, err := c.DomainSID(ctx)
	if err != nil {
		return out, err
	}
	rodcs, err := adsec.ParseSIDString(domainSID + "-521")
	if err != nil {
		return out, fmt.Errorf("the SID of the Read-only Domain Controllers group of %s: %w", c.domain.BaseDN, err)
	}
	var created string
	err = c.forEach(ctx, c.domain.BaseDN, "(objectSid="+rodcs.FilterValue()+")", []string{"whenCreated"}, nil, func(e *ldap.Entry) error {
		created = e.GetAttributeValue("whenCreated")
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("finding the Read-only Domain Controllers group (%s): %w", rodcs, err)
	}
	if created == "" {
		return out, nil
	}
	out.AESSince, err = parseGeneralizedTime(created)
	if err != nil {
		return out, fmt.Errorf("whenCreated of the Read-only Domain Controllers group (%s): %w", rodcs, err)
	}
	return out, nil
}

// AccountKeys is what the directory says about one account's keys.
type AccountKeys struct {
	DN  string
	SAM string
	// PwdLastSet is zero when the password was never set (or must be
	// changed at next logon: pwdLastSet 0).
	PwdLastSet time.Time
	// SupportedEncTypes is msDS-SupportedEncryptionTypes; SupportedEncTypesSet
	// says whether the attribute is present.
	SupportedEncTypes    uint32
	SupportedEncTypesSet bool
}

// ReadAccountKeys reads pwdLastSet and msDS-SupportedEncryptionTypes of the
// account sam in this connection's domain; ErrNotFound when none has that
// name. The search completes before anything else is asked on the
// connection.
func (c *Conn) ReadAccountKeys(ctx context.Context, sam string) (AccountKeys, error) {
	var entries []*ldap.Entry
	filter := "(sAMAccountName=" + ldap.EscapeFilter(sam) + ")"
	err := c.forEach(ctx, c.domain.BaseDN, filter, []string{"sAMAccountName", "pwdLastSet", "msDS-SupportedEncryptionTypes"}, nil, func(e *ldap.Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return AccountKeys{}, fmt.Errorf("reading the keys of %s: %w", sam, err)
	}
	if len(entries) == 0 {
		return AccountKeys{}, fmt.Errorf("%s: %w", sam, ErrNotFound)
	}
	return accountKeys(entries[0])
}

func accountKeys(e *ldap.Entry) (AccountKeys, error) {
	k := AccountKeys{DN: e.DN, SAM: e.GetAttributeValue("sAMAccountName")}
	if raw := e.GetAttributeValue("pwdLastSet"); raw != "" {
		ft, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return k, fmt.Errorf("pwdLastSet of %s: %w", e.DN, err)
		}
		k.PwdLastSet = fileTime(ft)
	}
	if raw := e.GetAttributeValue("msDS-SupportedEncryptionTypes"); raw != "" {
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return k, fmt.Errorf("msDS-SupportedEncryptionTypes of %s: %w", e.DN, err)
		}
		k.SupportedEncTypes, k.SupportedEncTypesSet = uint32(v), true
	}
	return k, nil
}

// fileTime converts a Windows FILETIME (100 ns since 1601-01-01 UTC); 0
// and the "never" value are the zero time.
func fileTime(ft int64) time.Time {
	if ft <= 0 || ft == 1<<63-1 {
		return time.Time{}
	}
	const epochDiff = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
	return time.Unix(0, (ft-epochDiff)*100).UTC()
}

// ReadKrbtgtKeys reads the domain's krbtgt account (RID 502).
func (c *Conn) ReadKrbtgtKeys(ctx context.Context) (AccountKeys, error) {
	domainSID, err := c.DomainSID(ctx)
	if err != nil {
		return AccountKeys{}, err
	}
	sid, err := adsec.ParseSIDString(domainSID + "-502")
	if err != nil {
		return AccountKeys{}, err
	}
	var entries []*ldap.Entry
	err = c.forEach(ctx, c.domain.BaseDN, "(objectSid="+sid.FilterValue()+")", []string{"sAMAccountName", "pwdLastSet", "msDS-SupportedEncryptionTypes"}, nil, func(e *ldap.Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return AccountKeys{}, fmt.Errorf("reading the krbtgt account of %s: %w", c.domain.BaseDN, err)
	}
	if len(entries) == 0 {
		return AccountKeys{}, errors.New("no krbtgt account (RID 502) in " + c.domain.BaseDN)
	}
	return accountKeys(entries[0])
}
