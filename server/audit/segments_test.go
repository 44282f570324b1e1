package audit_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/mongostore"
	"standin/server/standin"
)

// A server that writes its log alone on a store read by seq range (the
// embedded database's segments) opens by reading a page of the newest
// events, not the whole log: what it opens with does not grow with the
// log. What lies before its window is read from the store.
func TestOpenReadsTheNewestEventsOnly(t *testing.T) {
	t.Parallel()
	store, ctx := segmentedLog(t, 40)
	l, err := audit.Open(ctx, store, audit.Config{Logger: discard(), Alone: true, Follow: followEvery, Window: 8})
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
	page, _, err := l.Query(ctx, standin.EventFilter{}, standin.Page{Limit: 20, Cursor: "30"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqsOf(page), seqRange(10, 29); !slices.Equal(got, reversed(want)) {
		t.Errorf("a page before the window: %v", got)
	}
}

// With a window larger than what Open reads into it (Config.WindowFill),
// the events before are read into it in the background, until it holds
// as many as it may: the queries it answers from memory grow.
func TestWindowFillsInTheBackground(t *testing.T) {
	t.Parallel()
	store, ctx := segmentedLog(t, 40)
	l, err := audit.Open(ctx, store, audit.Config{Logger: discard(), Alone: true, Follow: followEvery, Window: 30, WindowFill: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	mustAppend(t, l, login("new"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		store.reads.Store(0)
		// 29 and one more to know whether there is a next page: the 30
		// a full window holds.
		page, _, err := l.Query(ctx, standin.EventFilter{}, standin.Page{Limit: 29})
		if err != nil {
			t.Fatal(err)
		}
		if store.reads.Load() == 0 {
			if got := seqsOf(page); !slices.Equal(got, reversed(seqRange(13, 41))) {
				t.Fatalf("newest page from memory %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the window never filled: the newest 30 events are still read from the log")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := l.Status().InMemory; n != 30 {
		t.Errorf("the window holds %d events, want 30", n)
	}
	store.reads.Store(0)
	if _, _, err := l.Query(ctx, standin.EventFilter{}, standin.Page{Limit: 30}); err != nil || store.reads.Load() == 0 {
		t.Errorf("31 events were answered without the log (%v): the window holds more than it may", err)
	}
}

// segmentedLog stores a log of n events in segments of 4 and returns a
// store over them that counts its reads from now on.
func segmentedLog(t *testing.T, n int) (*readCounter, context.Context) {
	t.Helper()
	ctx := context.Background()
	db := mustDB(t)
	store := &readCounter{countingStore: countingStore{Store: db.store.Segments(4)}}
	first, err := audit.Open(ctx, store, audit.Config{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, first, chained("old", nil, n)...)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store.reads.Store(0)
	store.events.Store(0)
	return store, ctx
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

func reversed(s []int64) []int64 {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// A log on a store that seals chunks (the embedded database's segments)
// seals every complete chunk: those before its window at start, read from
// the store, and each new one from memory as it is delivered. A chunk
// whose events do not chain, or of which an event is missing, is left
// unsealed and the others are sealed all the same; pages still find its
// events. Pages deep in the log answer as the events do.
func TestLogSealsItsChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := mustDB(t).store.Segments(8) // chunks of 2
	old := chained("old", nil, 21)
	old[13].PrevHash = "not the hash of event 13" // chunk 6 (events 13 and 14) does not chain
	// Event 18, the last of chunk 8, is missing.
	if err := store.Insert(ctx, old[:17]); err != nil {
		t.Fatal(err)
	}
	if err := store.Insert(ctx, old[18:]); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, store, audit.Config{Logger: discard(), Alone: true, Follow: followEvery, Window: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	for range 9 {
		mustAppend(t, l, login("new"))
	}
	waitUnsealed(t, store, 30, []int64{8, 6}, "chunks 8 (event 18 is missing) and 6 (events 13 and 14 do not chain)")
	for _, c := range []struct {
		f      standin.EventFilter
		cursor string
		want   []int64
	}{
		{standin.EventFilter{}, "20", []int64{19, 17, 16, 15, 14, 13, 12, 11, 10, 9}},
		{standin.EventFilter{}, "16", reversed(seqRange(6, 15))},
		{standin.EventFilter{ActorID: "old-12"}, "", []int64{13}}, // in the unsealed chunk
		{standin.EventFilter{ActorID: "old-3"}, "", []int64{4}},
		{standin.EventFilter{ActorID: "new"}, "", reversed(seqRange(22, 30))},
	} {
		page, _, err := l.Query(ctx, c.f, standin.Page{Limit: 10, Cursor: c.cursor})
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(page); !slices.Equal(got, c.want) {
			t.Errorf("page %+v below %q: %v, want %v", c.f, c.cursor, got, c.want)
		}
	}
}

// The sealer reads from the log only the chunks it seals: two unsealed
// chunks far apart, outside the window, are read apart, not with every
// event between them.
func TestSealerReadsOnlyItsChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	segs := mustDB(t).store.Segments(8) // chunks of 2
	old := chained("old", nil, 60)
	old[3].PrevHash = "not the hash of event 3" // chunk 1 (events 3 and 4) does not chain
	if err := segs.Insert(ctx, old); err != nil {
		t.Fatal(err)
	}
	// Every chunk is sealed but 1 and 24 (events 49 and 50), outside the
	// window of the newest 6.
	var seal [][]*standin.Event
	for k := int64(0); k < 30; k++ {
		if k != 1 && k != 24 {
			seal = append(seal, old[2*k:2*k+2])
		}
	}
	if err := segs.Seal(ctx, seal); err != nil {
		t.Fatal(err)
	}
	store := &scanCounter{Segments: segs}
	l, err := audit.Open(ctx, store, audit.Config{Logger: discard(), Alone: true, Follow: followEvery, Window: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	waitUnsealed(t, segs, 60, []int64{1}, "chunk 1")
	if n := store.events.Load(); n > 4 {
		t.Errorf("sealing chunks 24 and 1 read %d events from the log, want their 4", n)
	}
}

// waitUnsealed waits until the chunks of s at or below head left unsealed
// are want (newest first), which why names.
func waitUnsealed(t *testing.T, s audit.Sealer, head int64, want []int64, why string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left, err := s.Unsealed(context.Background(), head, 100)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(left, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chunks still unsealed: %v, want only %s", left, why)
		}
	}
}

// scanCounter counts the events Scan reads from a store that seals.
type scanCounter struct {
	*mongostore.Segments
	events atomic.Int64
}

func (s *scanCounter) Scan(ctx context.Context, sc audit.Scan, fn func(audit.Stored) error) error {
	return s.Segments.Scan(ctx, sc, func(st audit.Stored) error {
		s.events.Add(1)
		return fn(st)
	})
}
