package collector

import (
	"cmp"
	"hash/maphash"
	"slices"

	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

// spnIndex is the forest's SPNs and their holders, kept between scans so that
// an incremental scan can replace the accounts that changed. It holds only
// what the duplicate count needs, as small as that goes: per account its name
// and the 64-bit hashes of its SPNs (case folded, as AD compares them), per
// SPN hash its holder, and, for the few SPNs held more than once, their
// holders and spellings. Accounts are keyed by objectGUID, which survives
// renames and moves. Two different SPNs with the same hash would count as one
// (a false duplicate): with a 64-bit hash and 1M SPNs the odds are about
// 3 in 100 million.
type spnIndex struct {
	seed   maphash.Seed
	slots  []indexedAccount          // by slot number; a free slot has no name
	free   []int32                   // free slot numbers, for reuse
	byGUID map[[16]byte]int32        // objectGUID -> slot
	bySPN  map[uint64]int32          // SPN hash -> slot of its holder, or sharedSPN
	shared map[uint64][]sharedHolder // SPN hash -> its holders in arrival order, when more than one
}

// sharedSPN in bySPN sends a lookup to spnIndex.shared.
const sharedSPN = -1

type indexedAccount struct {
	name string   // DOMAIN\sam
	spns []uint64 // hashes of its SPNs, one per SPN
}

// sharedHolder is one holder of a duplicated SPN and its spelling of it,
// unknown ("") for the one that held it first.
type sharedHolder struct {
	slot     int32
	spelling string
}

func newSPNIndex() *spnIndex {
	return &spnIndex{seed: maphash.MakeSeed(), byGUID: map[[16]byte]int32{}, bySPN: map[uint64]int32{}, shared: map[uint64][]sharedHolder{}}
}

// hash is the index's key of an SPN: AD ignores case.
func (x *spnIndex) hash(s string) uint64 { return maphash.String(x.seed, spn.Key(s)) }

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
	held := make([]uint64, 0, len(spns))
	for _, s := range spns {
		h := x.hash(s)
		first, seen := x.bySPN[h]
		switch {
		case !seen:
			x.bySPN[h] = slot
		case first == slot:
			continue // the same SPN again on this account
		case first == sharedSPN:
			if slices.ContainsFunc(x.shared[h], func(sh sharedHolder) bool { return sh.slot == slot }) {
				continue
			}
			x.shared[h] = append(x.shared[h], sharedHolder{slot, s})
		default:
			x.bySPN[h] = sharedSPN
			x.shared[h] = []sharedHolder{{first, ""}, {slot, s}}
		}
		held = append(held, h)
	}
	x.slots[slot] = indexedAccount{name: name, spns: held}
	x.byGUID[guid] = slot
}

// remove forgets an account; an unknown one is no error.
func (x *spnIndex) remove(guid [16]byte) {
	slot, ok := x.byGUID[guid]
	if !ok {
		return
	}
	for _, h := range x.slots[slot].spns {
		if x.bySPN[h] != sharedSPN {
			delete(x.bySPN, h)
			continue
		}
		rest := slices.DeleteFunc(x.shared[h], func(sh sharedHolder) bool { return sh.slot == slot })
		if len(rest) == 1 {
			x.bySPN[h] = rest[0].slot
			delete(x.shared, h)
		} else {
			x.shared[h] = rest
		}
	}
	x.slots[slot] = indexedAccount{}
	x.free = append(x.free, slot)
	delete(x.byGUID, guid)
}

// holders names the accounts holding s, sorted.
func (x *spnIndex) holders(s string) []string {
	h := x.hash(s)
	slot, ok := x.bySPN[h]
	var out []string
	switch {
	case !ok:
	case slot == sharedSPN:
		for _, sh := range x.shared[h] {
			out = append(out, x.slots[sh.slot].name)
		}
	default:
		out = append(out, x.slots[slot].name)
	}
	slices.Sort(out)
	return out
}

// result returns the count and the limit duplicates with the most holders
// (ties by SPN), each with its holders sorted. A duplicate is spelt as the
// account that made it one (the second to arrive) spells it.
func (x *spnIndex) result(limit int) facts.DuplicateSPNs {
	res := facts.DuplicateSPNs{Total: len(x.shared), AccountsScanned: x.accounts()}
	top := make([]facts.DuplicateSPN, 0, len(x.shared))
	for _, holders := range x.shared {
		accounts := make([]string, len(holders))
		for i, sh := range holders {
			accounts[i] = x.slots[sh.slot].name
		}
		slices.Sort(accounts)
		// holders[1] made it a duplicate, or came next after one that left
		top = append(top, facts.DuplicateSPN{SPN: holders[1].spelling, Accounts: accounts})
	}
	res.Top = topDuplicates(top, limit)
	return res
}

// topDuplicates orders duplicate SPNs most-shared first, then by SPN as AD
// compares them, and keeps the first limit (all when limit < 0).
func topDuplicates(top []facts.DuplicateSPN, limit int) []facts.DuplicateSPN {
	slices.SortFunc(top, func(a, b facts.DuplicateSPN) int {
		if c := cmp.Compare(len(b.Accounts), len(a.Accounts)); c != 0 {
			return c
		}
		return cmp.Compare(spn.Key(a.SPN), spn.Key(b.SPN))
	})
	if limit >= 0 && len(top) > limit {
		top = top[:limit]
	}
	return top
}
