package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// pageSize is how many entries the server sends per page of a subtree
// search: AD's default MaxPageSize, the most it sends.
const pageSize = 1000

// forEach streams the entries of a subtree search to fn, page by page, so
// that a forest-wide scan holds one page at a time, never the directory.
// Referrals and continuation references are not followed. fn's error stops
// the search and is returned as is. fn runs between pages, never while a
// page is arriving, and must not start a search on c (see page).
func (c *Conn) forEach(ctx context.Context, base, filter string, attrs []string, controls []ldap.Control, fn func(*ldap.Entry) error) error {
	paging := ldap.NewControlPaging(pageSize)
	for {
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, c.searchTimeLimit(), false,
			filter, attrs, append(append([]ldap.Control(nil), controls...), paging))
		cookie, err := c.page(ctx, req, fn)
		if err != nil {
			return err
		}
		if len(cookie) == 0 {
			return nil
		}
		paging.SetCookie(cookie)
	}
}

// errNestedSearch is returned by a search started from inside the callback
// of another search on the same connection.
var errNestedSearch = errors.New("internal error: an LDAP search was started inside another search's callback on the same connection; read what the callback needs before the search, or collect and resolve after it")

// page runs one page of a search and returns the cookie for the next.
//
// The page is read to its end before fn sees any of it. go-ldap has one
// reader per connection, which hands each packet to its search's channel and
// waits while that channel is full: a callback that waited on anything from
// the same connection (a second search, say) would wait on itself. So
// callbacks never run while a response is arriving, and, to keep them cheap
// and the rule plain, a search started from a callback on the same
// connection fails with errNestedSearch (the guard in startSearch).
func (c *Conn) page(ctx context.Context, req *ldap.SearchRequest, fn func(*ldap.Entry) error) ([]byte, error) {
	if err := c.startSearch(); err != nil {
		return nil, c.searchError(ctx, req, err)
	}
	resp := c.ldap.SearchAsync(ctx, req, pageSize)
	var entries []*ldap.Entry
	var cookie []byte
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			entries = append(entries, e)
			continue
		}
		if p, ok := ldap.FindControl(resp.Controls(), ldap.ControlTypePaging).(*ldap.ControlPaging); ok {
			cookie = p.Cookie
		}
	}
	if err := resp.Err(); err != nil {
		return nil, c.searchError(ctx, req, err)
	}
	// SearchAsync reports cancellation as a clean end: do not take a cut-off
	// result for a complete one.
	if err := ctx.Err(); err != nil {
		return nil, c.searchError(ctx, req, err)
	}
	if err := c.runCallbacks(entries, fn); err != nil {
		return nil, err
	}
	return cookie, nil
}

// startSearch is the guard against nested searches: it fails when the
// calling goroutine is inside a callback of a search on c. Other goroutines
// may search c while one runs a callback.
func (c *Conn) startSearch() error {
	c.mu.Lock()
	busy := len(c.inCallback) > 0
	c.mu.Unlock()
	if !busy {
		return nil
	}
	g := goroutineID()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inCallback[g] > 0 {
		return errNestedSearch
	}
	return nil
}

// runCallbacks hands a page's entries to fn, marking the calling goroutine
// as inside a callback of c for startSearch.
func (c *Conn) runCallbacks(entries []*ldap.Entry, fn func(*ldap.Entry) error) error {
	if len(entries) == 0 {
		return nil
	}
	g := goroutineID()
	c.mu.Lock()
	if c.inCallback == nil {
		c.inCallback = map[uint64]int{}
	}
	c.inCallback[g]++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.inCallback[g]--; c.inCallback[g] == 0 {
			delete(c.inCallback, g)
		}
		c.mu.Unlock()
	}()
	for i, e := range entries {
		entries[i] = nil // let the page go as it is consumed
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// goroutineID is the runtime's number of the calling goroutine, read from
// the header line of its stack trace ("goroutine 42 [running]:"). Only the
// nested-search guard uses it, to tell a callback's own goroutine from
// others sharing the connection.
func goroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	fields := bytes.Fields(bytes.TrimPrefix(buf[:n], []byte("goroutine ")))
	if len(fields) == 0 {
		return 0
	}
	id, _ := strconv.ParseUint(string(fields[0]), 10, 64)
	return id
}

// base reads one object (scope base). It returns nil, nil when the object
// does not exist or the filter does not match it.
func (c *Conn) base(ctx context.Context, dn, filter string, attrs []string, controls ...ldap.Control) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, c.searchTimeLimit(), false,
		filter, attrs, controls)
	var found *ldap.Entry
	_, err := c.page(ctx, req, func(e *ldap.Entry) error {
		found = e
		return nil
	})
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	return found, err
}

func (c *Conn) searchError(ctx context.Context, req *ldap.SearchRequest, err error) error {
	base := req.BaseDN
	if base == "" {
		base = "(forest root)"
	}
	return fmt.Errorf("%s: search %s under %s: %w", c.url, req.Filter, base, contextError(ctx, err))
}

// rootDSE is what the server says about itself.
type rootDSE struct {
	dnsHostName          string
	configurationContext string
	rootDomainContext    string // the forest root domain's partition: names the forest
}

func (c *Conn) rootDSE(ctx context.Context) (*rootDSE, error) {
	c.mu.Lock()
	r := c.root
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	e, err := c.base(ctx, "", "(objectClass=*)", []string{"dnsHostName", "configurationNamingContext", "rootDomainNamingContext"})
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%s: the rootDSE is empty", c.url)
	}
	r = &rootDSE{
		dnsHostName:          e.GetAttributeValue("dnsHostName"),
		configurationContext: e.GetAttributeValue("configurationNamingContext"),
		rootDomainContext:    e.GetAttributeValue("rootDomainNamingContext"),
	}
	c.mu.Lock()
	c.root = r
	c.mu.Unlock()
	return r, nil
}

// ScanScope names what a subtree search of this connection covers: the
// forest (on a Global Catalog, named by its root domain) or one domain
// partition. Two connections with the same scope see the same accounts.
func (c *Conn) ScanScope(ctx context.Context) (string, error) {
	if !c.global {
		return "domain " + c.baseDN, nil
	}
	root, err := c.rootDSE(ctx)
	if err != nil {
		return "", err
	}
	return "forest " + root.rootDomainContext, nil
}

// RootDSETime reads the DC's clock from the rootDSE's currentTime, and the
// round trip it took. currentTime has a resolution of one second.
func (c *Conn) RootDSETime(ctx context.Context) (time.Time, time.Duration, error) {
	start := time.Now()
	e, err := c.base(ctx, "", "(objectClass=*)", []string{"currentTime"})
	rtt := time.Since(start)
	if err != nil {
		return time.Time{}, rtt, err
	}
	if e == nil || e.GetAttributeValue("currentTime") == "" {
		return time.Time{}, rtt, fmt.Errorf("%s: the rootDSE has no currentTime", c.url)
	}
	t, err := parseGeneralizedTime(e.GetAttributeValue("currentTime"))
	if err != nil {
		return time.Time{}, rtt, fmt.Errorf("%s: rootDSE currentTime: %w", c.url, err)
	}
	return t, rtt, nil
}

// parseGeneralizedTime reads AD's GeneralizedTime, "20241122035400.0Z".
func parseGeneralizedTime(s string) (time.Time, error) {
	for _, layout := range []string{"20060102150405.0Z0700", "20060102150405Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New(s + " is not a GeneralizedTime")
}
