package collector

import (
	"cmp"
	"slices"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

// spnIndex is the forest's SPNs and their holders, kept between scans so that
// an incremental scan can replace the accounts that changed. It holds only
// what the duplicate count needs: per account its name and SPNs, per SPN its
// holder, and a holder list for the SPNs held more than once. Accounts are
// keyed by objectGUID, which survives renames and moves.
type spnIndex struct {
	slots  []indexedAccount   // by slot number; a free slot has no name
	free   []int32            // free slot numbers, for reuse
	byGUID map[[16]byte]int32 // objectGUID -> slot
	bySPN  map[string]int32   // SPN key -> slot of its holder, or sharedSPN
	shared map[string][]int32 // SPN key -> slots of its holders, in arrival order, when more than one
	seq    uint64             // arrivals so far, for the spelling of duplicates
}

// sharedSPN in bySPN sends a lookup to spnIndex.shared.
const sharedSPN = -1

type indexedAccount struct {
	name    string   // DOMAIN\sam
	spns    []string // as the account spells them, one per key
	arrival uint64   // when it was put, for the spelling of duplicates
}

func newSPNIndex() *spnIndex {
	return &spnIndex{byGUID: map[[16]byte]int32{}, bySPN: map[string]int32{}, shared: map[string][]int32{}}
}

// accounts is how many accounts hold at least one SPN.
func (x *spnIndex) accounts() int { return len(x.byGUID) }

// put records (or replaces) an account and its SPNs; an account without SPNs
// is removed. An account listing the same SPN twice (in different case)
// holds it once.
func (x *spnIndex) put(guid [16]byte, name string, spns []string) {
	x.remove(guid)
	if len(spns) == 0 {
		return
	}
	var slot int32
	if n := len(x.free); n > 0 {
		slot, x.free = x.free[n-1], x.free[:n-1]
	} else {
		slot = int32(len(x.slots))
		x.slots = append(x.slots, indexedAccount{})
	}
	held := make([]string, 0, len(spns))
	for _, s := range spns {
		key := spn.Key(s)
		if key == s {
			key = s // share the string: most SPNs are keyed as spelt
		}
		first, seen := x.bySPN[key]
		switch {
		case !seen:
			x.bySPN[key] = slot
		case first == slot:
			continue // the same SPN again on this account
		case first == sharedSPN:
			if slices.Contains(x.shared[key], slot) {
				continue
			}
			x.shared[key] = append(x.shared[key], slot)
		default:
			x.bySPN[key] = sharedSPN
			x.shared[key] = []int32{first, slot}
		}
		held = append(held, s)
	}
	x.seq++
	x.slots[slot] = indexedAccount{name: name, spns: slices.Clip(held), arrival: x.seq}
	x.byGUID[guid] = slot
}

// remove forgets an account; an unknown one is no error.
func (x *spnIndex) remove(guid [16]byte) {
	slot, ok := x.byGUID[guid]
	if !ok {
		return
	}
	for _, s := range x.slots[slot].spns {
		key := spn.Key(s)
		if x.bySPN[key] != sharedSPN {
			delete(x.bySPN, key)
			continue
		}
		rest := slices.DeleteFunc(x.shared[key], func(h int32) bool { return h == slot })
		if len(rest) == 1 {
			x.bySPN[key] = rest[0]
			delete(x.shared, key)
		} else {
			x.shared[key] = rest
		}
	}
	x.slots[slot] = indexedAccount{}
	x.free = append(x.free, slot)
	delete(x.byGUID, guid)
}

// result returns the count and the limit duplicates with the most holders
// (ties by SPN), each with its holders sorted. A duplicate is spelt as the
// account that made it one (the second to arrive) spells it.
func (x *spnIndex) result(limit int) facts.DuplicateSPNs {
	res := facts.DuplicateSPNs{Total: len(x.shared), AccountsScanned: x.accounts()}
	top := make([]facts.DuplicateSPN, 0, len(x.shared))
	for key, slots := range x.shared {
		byArrival := slices.Clone(slots)
		slices.SortFunc(byArrival, func(a, b int32) int { return cmp.Compare(x.slots[a].arrival, x.slots[b].arrival) })
		spelling := key
		for _, s := range x.slots[byArrival[1]].spns {
			if spn.Key(s) == key {
				spelling = s
				break
			}
		}
		accounts := make([]string, len(slots))
		for i, slot := range slots {
			accounts[i] = x.slots[slot].name
		}
		slices.Sort(accounts)
		top = append(top, facts.DuplicateSPN{SPN: spelling, Accounts: accounts})
	}
	slices.SortFunc(top, func(a, b facts.DuplicateSPN) int {
		if c := cmp.Compare(len(b.Accounts), len(a.Accounts)); c != 0 {
			return c
		}
		return cmp.Compare(spn.Key(a.SPN), spn.Key(b.SPN))
	})
	if limit >= 0 && len(top) > limit {
		top = top[:limit]
	}
	res.Top = top
	return res
}
