package directory

import (
	"context"
	"fmt"
	"strconv"

	"github.com/go-ldap/ldap/v3"

	"github.com/kerberos-exporter/kerberos_exporter/internal/adsec"
)

// ServerState identifies the directory a connection reads and how far its
// changes go: what an incremental SPN scan needs to know that it may go on
// from where the last one ended.
type ServerState struct {
	// URL is the server this connection talks to.
	URL string
	// DSServiceName is the DN of the DC's NTDS Settings object.
	DSServiceName string
	// InvocationID is that object's invocationId: it names the DC's copy of
	// the database and changes when the database is restored.
	InvocationID string
	// HighestCommittedUSN is the DC's update sequence number: every change
	// after this read gets a higher uSNChanged.
	HighestCommittedUSN int64
}

// ServerState reads the rootDSE's dsServiceName and highestCommittedUSN and
// the invocationId of the DC's NTDS Settings object. Read it before a scan:
// a change made during the scan then falls after the USN and is read again
// by the next incremental scan, not lost.
func (c *Conn) ServerState(ctx context.Context) (ServerState, error) {
	st := ServerState{URL: c.url}
	e, err := c.base(ctx, "", "(objectClass=*)", []string{"dsServiceName", "highestCommittedUSN"})
	if err != nil {
		return st, err
	}
	if e == nil {
		return st, fmt.Errorf("%s: the rootDSE is empty", c.url)
	}
	st.DSServiceName = e.GetAttributeValue("dsServiceName")
	usn := e.GetAttributeValue("highestCommittedUSN")
	if st.HighestCommittedUSN, err = strconv.ParseInt(usn, 10, 64); err != nil || st.DSServiceName == "" {
		return st, fmt.Errorf("%s: the rootDSE has no usable highestCommittedUSN (%q) or dsServiceName (%q)", c.url, usn, st.DSServiceName)
	}
	ntds, err := c.base(ctx, st.DSServiceName, "(objectClass=*)", []string{"invocationId"})
	if err != nil {
		return st, fmt.Errorf("reading the invocationId of %s: %w", st.DSServiceName, err)
	}
	if ntds == nil || len(ntds.GetRawAttributeValue("invocationId")) != 16 {
		return st, fmt.Errorf("%s: %s has no readable invocationId", c.url, st.DSServiceName)
	}
	var id adsec.GUID
	copy(id[:], ntds.GetRawAttributeValue("invocationId"))
	st.InvocationID = id.String()
	return st, nil
}

// SPNAccount is one account of an SPN scan.
type SPNAccount struct {
	GUID [16]byte // objectGUID: survives renames and moves
	Name string   // DOMAIN\sam
	SPNs []string // none: the account holds no SPN (any more), or was deleted
}

// showDeleted is LDAP_SERVER_SHOW_DELETED_OID, non-critical: with it an
// incremental scan also sees the tombstones of deleted accounts, where the
// server lets this identity read CN=Deleted Objects (an ordinary user
// usually may not; a periodic full scan then catches deletions).
var showDeleted = ldap.NewControlString("1.2.840.113556.1.4.417", false, "")

// ScanSPNs streams accounts with their SPNs to fn, page by page. With
// sinceUSN 0 it reads every object that holds an SPN. Otherwise it reads
// only the objects changed after that USN of this server, with or without
// SPNs now, and, where visible, deleted ones: fn then replaces what it knew
// of each (an object without SPNs is one to forget). fn must not search c.
func (c *Conn) ScanSPNs(ctx context.Context, sinceUSN int64, fn func(SPNAccount) error) error {
	names, err := c.netbiosNames(ctx) // read before the scan: callbacks do no I/O
	if err != nil {
		return err
	}
	filter := "(servicePrincipalName=*)"
	var controls []ldap.Control
	if sinceUSN > 0 {
		// Nothing but the USN: every changed object, so that one that lost its
		// SPNs is seen too. A narrower filter ((objectClass=user), say) makes
		// the DC intersect the USN range with a class index of every account.
		filter = "(uSNChanged>=" + strconv.FormatInt(sinceUSN+1, 10) + ")"
		controls = []ldap.Control{showDeleted}
	}
	attrs := []string{"objectGUID", "sAMAccountName", "servicePrincipalName", "isDeleted"}
	return c.forEach(ctx, c.baseDN, filter, attrs, controls, func(e *ldap.Entry) error {
		var a SPNAccount
		raw := e.GetRawAttributeValue("objectGUID")
		if len(raw) != len(a.GUID) {
			return fmt.Errorf("%s: objectGUID of %d bytes", e.DN, len(raw))
		}
		copy(a.GUID[:], raw)
		if e.GetAttributeValue("isDeleted") == "TRUE" {
			return fn(a) // a tombstone: no SPNs, whatever it says
		}
		a.SPNs = e.GetAttributeValues("servicePrincipalName")
		if len(a.SPNs) == 0 {
			return fn(a) // needs no name (and may be no account at all)
		}
		var err error
		if a.Name, err = c.accountName(names, e.DN, e.GetAttributeValue("sAMAccountName")); err != nil {
			return err
		}
		return fn(a)
	})
}
