package audit_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"standin/server/audit"
	"standin/server/standin"
)

// A server that writes its log alone on a store read by seq range (the
// embedded database's segments) opens by reading a page of the newest
// events, not the whole log: what it opens with does not grow with the
// log. Its window then grows with the log, and what lies before it is
// read from the store, page by page.
func TestOpenReadsTheNewestEventsOnly(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	ctx := context.Background()
	store := &readCounter{countingStore: countingStore{Store: db.store.Segments(4)}}
	first, err := audit.Open(ctx, store, audit.Config{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, first, chained("old", nil, 40)...)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	store.reads.Store(0)
	store.events.Store(0)
	l, err := audit.Open(ctx, store, audit.Config{Logger: discard(), Alone: true, Follow: followEvery, Window: 100, WindowFill: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	if n, evs := store.reads.Load(), store.events.Load(); n != 1 || evs != 8 {
		t.Errorf("opening read the log %d times, %d events, want one page of the newest 8", n, evs)
	}
	if l.Head() != 40 {
		t.Fatalf("head %d, want 40", l.Head())
	}
	mustAppend(t, l, login("new"))
	store.reads.Store(0)
	// Eight and one more to know whether there is a next page: the nine
	// the window holds.
	page, _, err := l.Query(ctx, standin.EventFilter{}, standin.Page{Limit: 8})
	if err != nil || store.reads.Load() != 0 {
		t.Fatalf("the newest 8 events: %v, %d reads of the log", err, store.reads.Load())
	}
	if got := seqs(page); !slices.Equal(got, reversed(seqRange(34, 41))) {
		t.Errorf("newest page %v", got)
	}
	page, _, err = l.Query(ctx, standin.EventFilter{}, standin.Page{Limit: 20, Cursor: "30"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqs(page), seqRange(10, 29); !slices.Equal(got, reversed(want)) {
		t.Errorf("a page before the window: %v", got)
	}
}

// readCounter counts, beside the reads of the log, the events they
// returned.
type readCounter struct {
	countingStore
	events atomic.Int64
}

func (s *readCounter) Page(ctx context.Context, q audit.PageQuery) ([]*standin.Event, error) {
	evs, err := s.countingStore.Page(ctx, q)
	s.events.Add(int64(len(evs)))
	return evs, err
}

func (s *readCounter) Scan(ctx context.Context, sc audit.Scan, fn func(audit.Stored) error) error {
	return s.countingStore.Scan(ctx, sc, func(st audit.Stored) error {
		s.events.Add(1)
		return fn(st)
	})
}

func seqs(evs []*standin.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func reversed(s []int64) []int64 {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
