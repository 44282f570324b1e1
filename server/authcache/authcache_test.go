package authcache_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/authcache"
	"standin/server/testclock"
)

type record struct{ name string }

func cloneRecord(r *record) *record { cp := *r; return &cp }

// store is a record that loads count.
type store struct {
	name  atomic.Value
	loads atomic.Int64
}

func (s *store) load(context.Context) (*record, error) {
	s.loads.Add(1)
	return &record{name: s.name.Load().(string)}, nil
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	c := authcache.New(2*time.Second, clk.Now, cloneRecord)
	s := &store{}
	s.name.Store("Ben")
	get := func() string {
		t.Helper()
		r, err := c.Get(ctx, "ben", s.load)
		if err != nil {
			t.Fatal(err)
		}
		return r.name
	}

	// Answered from memory within TTL; a caller's change is its own.
	r, _ := c.Get(ctx, "ben", s.load)
	r.name = "changed by a caller"
	if got := get(); got != "Ben" || s.loads.Load() != 1 {
		t.Fatalf("from memory: %q after %d loads", got, s.loads.Load())
	}
	// Forgotten by its writer: read again at once.
	s.name.Store("Ben Okafor")
	c.Forget(0, "ben")
	if got := get(); got != "Ben Okafor" || s.loads.Load() != 2 {
		t.Fatalf("after Forget: %q after %d loads", got, s.loads.Load())
	}
	// Changed behind its back: read again once TTL has passed.
	s.name.Store("B. Okafor")
	clk.Advance(1999 * time.Millisecond)
	if got := get(); got != "Ben Okafor" {
		t.Fatalf("within TTL: %q", got)
	}
	clk.Advance(time.Millisecond)
	if got := get(); got != "B. Okafor" {
		t.Fatalf("after TTL: %q", got)
	}
	// Held off (a change announced before it is written): read each time.
	c.Forget(time.Second, "ben")
	before := s.loads.Load()
	get()
	get()
	if n := s.loads.Load() - before; n != 2 {
		t.Fatalf("held off: %d loads for 2 reads, want 2", n)
	}
	clk.Advance(time.Second)
	get()
	get()
	if n := s.loads.Load() - before; n != 3 {
		t.Fatalf("after the hold: %d loads in all, want 3", n)
	}
	// Errors are not kept.
	boom := errors.New("down")
	if _, err := c.Get(ctx, "ada", func(context.Context) (*record, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	// Records unused for TTL are dropped.
	clk.Advance(3 * time.Second)
	get()
	if n := c.Len(); n != 1 {
		t.Fatalf("%d records kept, want only ben's", n)
	}
}

// A load that began before a Forget is not kept: it may have read the
// record as it was before the write that the Forget follows.
func TestLoadRacingAForgetIsNotKept(t *testing.T) {
	ctx := context.Background()
	c := authcache.New(time.Minute, nil, cloneRecord)
	loads := 0
	stale := func(context.Context) (*record, error) {
		loads++
		c.Forget(0, "ben") // the write lands while this load reads
		return &record{name: "old"}, nil
	}
	if r, _ := c.Get(ctx, "ben", stale); r.name != "old" {
		t.Fatal(r.name)
	}
	fresh := func(context.Context) (*record, error) { loads++; return &record{name: "new"}, nil }
	if r, _ := c.Get(ctx, "ben", fresh); r.name != "new" || loads != 2 {
		t.Fatalf("after a load raced a Forget: %q after %d loads", r.name, loads)
	}
	c.ForgetAll()
	if c.Len() != 0 {
		t.Fatal("ForgetAll kept records")
	}
}
