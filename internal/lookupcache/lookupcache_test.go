package lookupcache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestScopeLooksEachKeyUpOnceAndCachesByOutcome(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := NewWithClock[string](clk.now)
	var lookups atomic.Int32
	answer := map[string]Outcome{"ok": Success, "bad": Failure, "cut": Skipped}
	lookup := func(key string) func(context.Context) (string, Outcome) {
		return func(context.Context) (string, Outcome) {
			lookups.Add(1)
			time.Sleep(10 * time.Millisecond) // the other callers arrive meanwhile
			return "answer " + key, answer[key]
		}
	}
	ttl := TTL{OK: 5 * time.Minute, Failed: 30 * time.Second}
	s := c.Scope(ttl)
	var wg sync.WaitGroup
	for range 20 {
		for _, key := range []string{"ok", "bad"} {
			wg.Go(func() {
				if v, o := s.Get(context.Background(), key, lookup(key)); v != "answer "+key || o != answer[key] {
					t.Errorf("%s: %q %v", key, v, o)
				}
			})
		}
	}
	wg.Wait()
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d lookups for 2 keys asked 20 times each, want 2", n)
	}
	if st := s.Stats(); st.Lookups != 2 || st.Shared != 38 {
		t.Errorf("stats %+v", st)
	}

	// A skipped lookup is not an answer: the next caller asks again, and
	// nothing is kept.
	s.Get(context.Background(), "cut", lookup("cut"))
	s.Get(context.Background(), "cut", lookup("cut"))
	if n := lookups.Load(); n != 4 {
		t.Errorf("%d lookups after two skipped ones, want 4", n)
	}

	// The next cycle: the failure is kept for its shorter time to live.
	clk.t = clk.t.Add(time.Minute)
	next := c.Scope(ttl)
	if _, o := next.Get(context.Background(), "ok", lookup("ok")); o != Success {
		t.Errorf("cached success came back as %v", o)
	}
	if _, o := next.Get(context.Background(), "bad", lookup("bad")); o != Failure {
		t.Errorf("failure came back as %v", o)
	}
	if n := lookups.Load(); n != 5 {
		t.Errorf("%d lookups, want 5: ok from the cache, bad looked up again", n)
	}
	if st := next.Stats(); st.Cached != 1 || st.Lookups != 1 {
		t.Errorf("stats %+v", st)
	}

	// Never past the time to live; Sweep drops what expired.
	clk.t = clk.t.Add(5 * time.Minute)
	c.Sweep()
	if n := c.Len(); n != 0 {
		t.Errorf("%d entries after every time to live passed, want 0", n)
	}
	c.Scope(ttl).Get(context.Background(), "ok", lookup("ok"))
	if n := lookups.Load(); n != 6 {
		t.Errorf("%d lookups, want 6: the success expired", n)
	}
}

func TestScopeWithoutTTLKeepsNothingAcrossCycles(t *testing.T) {
	c := New[int]()
	var lookups int
	lookup := func(context.Context) (int, Outcome) { lookups++; return 1, Success }
	for range 3 {
		s := c.Scope(TTL{})
		s.Get(context.Background(), "k", lookup)
		s.Get(context.Background(), "k", lookup)
	}
	if lookups != 3 || c.Len() != 0 {
		t.Errorf("%d lookups, %d kept: want one per cycle, none kept", lookups, c.Len())
	}
}

func TestWaiterWhoseDeadlinePassesIsSkipped(t *testing.T) {
	s := New[int]().Scope(TTL{OK: time.Minute})
	release := make(chan struct{})
	go s.Get(context.Background(), "k", func(context.Context) (int, Outcome) { <-release; return 1, Success })
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, o := s.Get(ctx, "k", func(context.Context) (int, Outcome) { return 2, Success }); o != Skipped {
		t.Errorf("outcome %v for a caller out of time, want Skipped", o)
	}
	close(release)
}

// A reload that shortens the time to live, or turns the cache off with 0,
// takes effect at the next cycle: answers stored under the longer one are
// not served past the new one.
func TestShortenedOrDisabledTTLAppliesToStoredAnswers(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := NewWithClock[string](clk.now)
	var lookups int
	answer := map[string]Outcome{"ok": Success, "bad": Failure}
	lookup := func(key string) func(context.Context) (string, Outcome) {
		return func(context.Context) (string, Outcome) { lookups++; return key, answer[key] }
	}
	long := TTL{OK: 24 * time.Hour, Failed: 5 * time.Minute}
	get := func(ttl TTL, key string) {
		t.Helper()
		if v, o := c.Scope(ttl).Get(context.Background(), key, lookup(key)); v != key || o != answer[key] {
			t.Errorf("%s: %q %v", key, v, o)
		}
	}
	get(long, "ok")
	get(long, "bad")

	// Turned off: the next cycle looks up again, and nothing is kept.
	clk.t = clk.t.Add(time.Second)
	get(TTL{}, "ok")
	get(TTL{}, "bad")
	if lookups != 4 {
		t.Errorf("%d lookups, want 4: a time to live of 0 must not serve answers kept under 24h", lookups)
	}
	if c.Len() != 0 {
		t.Errorf("%d answers kept with the cache off, want 0", c.Len())
	}

	// Shortened: an answer older than the new time to live is looked up
	// again, a younger one still comes from the cache.
	get(long, "ok")
	get(long, "bad")
	clk.t = clk.t.Add(2 * time.Minute)
	short := TTL{OK: time.Minute, Failed: time.Minute}
	get(short, "ok")
	get(short, "bad")
	if lookups != 8 {
		t.Errorf("%d lookups, want 8: answers 2m old served under a 1m time to live", lookups)
	}
	clk.t = clk.t.Add(30 * time.Second)
	get(short, "ok")
	get(short, "bad")
	if lookups != 8 {
		t.Errorf("%d lookups, want 8: answers 30s old are fresh under 1m", lookups)
	}

	// Lengthened: never past the time to live an answer was stored with.
	clk.t = clk.t.Add(45 * time.Second) // 75s after the last lookups
	get(long, "ok")
	if lookups != 9 {
		t.Errorf("%d lookups, want 9: an answer stored for 1m was served after 75s", lookups)
	}
}
