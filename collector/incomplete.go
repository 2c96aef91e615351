package collector

import (
	"errors"
	"fmt"
)

// Incomplete is what a collector returns when it ran out of time before
// checking every item (host, SPN, domain controller): the items it did
// check have their facts, the others are unknown this cycle. It is not a
// failure of the collector, and never a finding about the items.
type Incomplete struct {
	Skipped, Total int
	// Items names what was counted, plural: "hosts", "SPNs".
	Items string
	// Reason is why: "deadline" (the collector timeout) or "canceled".
	Reason string
}

func (e *Incomplete) Error() string {
	return fmt.Sprintf("%d of %d %s not checked this cycle (%s)", e.Skipped, e.Total, e.Items, e.Reason)
}

// SplitIncomplete separates the Incomplete parts of a collector's error
// (one, or several joined with errors.Join) from the rest: skipped is nil
// when nothing was skipped, rest nil when nothing else failed.
func SplitIncomplete(err error) (skipped []*Incomplete, rest error) {
	if err == nil {
		return nil, nil
	}
	var inc *Incomplete
	if errors.As(err, &inc) && err == error(inc) {
		return []*Incomplete{inc}, nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil, err
	}
	var others []error
	for _, e := range joined.Unwrap() {
		s, r := SplitIncomplete(e)
		skipped = append(skipped, s...)
		if r != nil {
			others = append(others, r)
		}
	}
	return skipped, errors.Join(others...)
}
