// Package lookupcache keeps the answers of network checks (DNS lookups,
// KDC ticket requests) so that a large fleet does not repeat them: within
// one collection cycle each key is looked up once, however many instances
// share it, and across cycles an answer is kept for a time to live.
//
// An answer is one of three kinds. A success is kept for the full time to
// live; a failure for a shorter time, so that a repair shows up quickly;
// and a lookup that did not happen (the collector ran out of time) is never
// kept: it says nothing about the key.
package lookupcache

import (
	"context"
	"sync"
	"time"
)

// Outcome is what a lookup learned.
type Outcome int

const (
	// Success: the lookup got its answer; kept for the time to live.
	Success Outcome = iota
	// Failure: the lookup ran and failed (a name that does not exist, a
	// KDC error, a timeout of its own); kept for the failure time to live.
	Failure
	// Skipped: the lookup did not run or was cut short by its caller's
	// deadline; never kept.
	Skipped
)

// TTL is how long answers are kept: Success for OK, Failure for Failed.
// Zero keeps nothing across cycles (each cycle still looks each key up
// once) and ignores what earlier cycles kept. A scope honours its own TTL
// also for answers stored under a longer one.
type TTL struct{ OK, Failed time.Duration }

// Cache holds answers across cycles. The zero value is not usable: call New.
type Cache[V any] struct {
	mu      sync.Mutex
	entries map[string]stored[V]
	now     func() time.Time
}

type stored[V any] struct {
	value   V
	outcome Outcome
	at      time.Time // when it was looked up
	expires time.Time // at plus the time to live it was stored with
}

// New makes an empty cache.
func New[V any]() *Cache[V] { return NewWithClock[V](time.Now) }

// NewWithClock makes an empty cache that tells the time with now (for
// tests and benchmarks that step through cycles faster than real time).
func NewWithClock[V any](now func() time.Time) *Cache[V] {
	return &Cache[V]{entries: map[string]stored[V]{}, now: now}
}

// Sweep drops every answer past its time to live, which bounds the cache
// to the keys looked up within the last time to live: keys no longer
// configured leave with their last answer.
func (c *Cache[V]) Sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
}

// Len is the number of answers held.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// get is key's answer while it is fresh under both the time to live it
// was stored with and the one the asking scope has now: a time to live
// shortened or turned off (0) by a reload takes effect at once, not when
// the answers kept under the old one expire. An answer too old for ttl is
// dropped.
func (c *Cache[V]) get(key string, ttl TTL) (stored[V], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return stored[V]{}, false
	}
	now := c.now()
	if !now.Before(e.expires) || !now.Before(e.at.Add(ttl.of(e.outcome))) {
		delete(c.entries, key)
		return stored[V]{}, false
	}
	return e, true
}

// of is the time to live of an answer with outcome; 0 (not kept) for
// Skipped.
func (t TTL) of(outcome Outcome) time.Duration {
	switch outcome {
	case Success:
		return t.OK
	case Failure:
		return t.Failed
	}
	return 0
}

func (c *Cache[V]) put(key string, v V, outcome Outcome, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.entries[key] = stored[V]{value: v, outcome: outcome, at: now, expires: now.Add(ttl)}
}

// Scope is one cycle's view of a cache: every key is looked up at most
// once in it (concurrent callers of a key wait for the one lookup), and
// answers come from the cache while they are fresh.
type Scope[V any] struct {
	cache *Cache[V]
	ttl   TTL

	mu      sync.Mutex
	pending map[string]*call[V]

	statsMu sync.Mutex
	stats   Stats
}

type call[V any] struct {
	done    chan struct{}
	value   V
	outcome Outcome
}

// Stats count a scope's answers by where they came from.
type Stats struct {
	// Lookups ran; Cached came from an earlier cycle; Shared came from this
	// cycle's lookup of the same key for another caller.
	Lookups, Cached, Shared int
}

// Scope starts one cycle's view with the given times to live.
func (c *Cache[V]) Scope(ttl TTL) *Scope[V] {
	return &Scope[V]{cache: c, ttl: ttl, pending: map[string]*call[V]{}}
}

// Get answers key: from this cycle's lookup of it, from the cache while
// fresh, or by calling lookup. lookup gets ctx and must report Skipped
// when ctx ended before it had its answer. A caller whose ctx ends while
// another caller's lookup of the key runs gets Skipped with the zero value.
func (s *Scope[V]) Get(ctx context.Context, key string, lookup func(context.Context) (V, Outcome)) (V, Outcome) {
	s.mu.Lock()
	if c, ok := s.pending[key]; ok {
		s.mu.Unlock()
		select {
		case <-c.done:
			if c.outcome != Skipped {
				s.count(func(st *Stats) { st.Shared++ })
				return c.value, c.outcome
			}
			// The other caller ran out of time: look again for this one.
			return s.Get(ctx, key, lookup)
		case <-ctx.Done():
			var zero V
			return zero, Skipped
		}
	}
	c := &call[V]{done: make(chan struct{})}
	s.pending[key] = c
	s.mu.Unlock()

	if e, ok := s.cache.get(key, s.ttl); ok {
		c.value, c.outcome = e.value, e.outcome
		s.count(func(st *Stats) { st.Cached++ })
	} else if ctx.Err() != nil {
		c.outcome = Skipped
	} else {
		c.value, c.outcome = lookup(ctx)
		s.count(func(st *Stats) { st.Lookups++ })
		if c.outcome != Skipped {
			s.cache.put(key, c.value, c.outcome, s.ttl.of(c.outcome))
		}
	}
	if c.outcome == Skipped {
		// Not an answer: a later caller with time left asks again.
		s.mu.Lock()
		delete(s.pending, key)
		s.mu.Unlock()
	}
	close(c.done)
	return c.value, c.outcome
}

func (s *Scope[V]) count(f func(*Stats)) {
	s.statsMu.Lock()
	f(&s.stats)
	s.statsMu.Unlock()
}

// Stats are the scope's counts so far.
func (s *Scope[V]) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats
}
