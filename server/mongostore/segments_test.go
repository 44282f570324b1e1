package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/standin"
)

// A segmented log spreads consecutive seqs over segments of the size
// given: an insert that crosses from one segment to the next stores each
// part in its own, a taken seq in a later segment is counted after the
// events stored before it, and another server on the same database (a
// store of its own) finds the newest segment, also once it grows, and an
// empty segment collection left by a failed insert is no head.
func TestSegments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)
	a, b := db.Segments(4), db.Segments(4)
	var evs []*standin.Event
	for seq := int64(1); seq <= 6; seq++ {
		evs = append(evs, storedEvent(seq))
	}
	if err := a.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if seq, hash, err := b.Head(ctx); err != nil || seq != 6 || hash != storedEvent(6).Hash {
		t.Fatalf("the other server's Head = %d %q %v", seq, hash, err)
	}
	names, err := dbtest.MustDriver(t, db).ListCollectionNames(ctx, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"events_000000000000", "events_000000000001"} {
		if !slices.Contains(names, want) {
			t.Errorf("no collection %s among %v", want, names)
		}
	}

	// 7 and 8 are new, 9 is in the third segment, taken by b first.
	if err := b.Insert(ctx, []*standin.Event{storedEvent(9)}); err != nil {
		t.Fatal(err)
	}
	err = a.Insert(ctx, []*standin.Event{storedEvent(7), storedEvent(8), storedEvent(9), storedEvent(10)})
	var sb *audit.StoredBefore
	if !errors.As(err, &sb) || sb.N != 2 || !errors.Is(err, audit.ErrSeqTaken) {
		t.Fatalf("an insert refused at seq 9: %v (%+v)", err, sb)
	}
	if err := a.Insert(ctx, []*standin.Event{storedEvent(10), storedEvent(11), storedEvent(12), storedEvent(13)}); err != nil {
		t.Fatal(err)
	}
	if err := dbtest.MustDriver(t, db).CreateCollection(ctx, "events_000000000009"); err != nil {
		t.Fatal(err)
	}
	fresh := db.Segments(4)
	for name, s := range map[string]audit.Store{"a store that has read before": b, "a store opened now": fresh} {
		if seq, _, err := s.Head(ctx); err != nil || seq != 13 {
			t.Errorf("%s: Head = %d %v, want 13", name, seq, err)
		}
		page, err := s.Page(ctx, audit.PageQuery{Limit: 20})
		if err != nil || !slices.Equal(seqsOf(page), []int64{13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}) {
			t.Errorf("%s: newest first = %v %v", name, seqsOf(page), err)
		}
		if more, err := s.AnyAfter(ctx, 12); err != nil || !more {
			t.Errorf("%s: AnyAfter(12) = %v %v", name, more, err)
		}
	}
}

// The segmented log answers every page, latest and scan as the one
// collection does, on random logs and random filters, in both directions
// and from any place.
func TestSegmentsAnswerAsOneCollection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for round := 0; round < 2; round++ {
		db := mustOpen(t)
		one, segs := db.Events(), db.Segments(int64(2+rng.IntN(7)))
		evs := randomLog(rng, 20+rng.IntN(60))
		n := len(evs)
		for _, s := range []audit.Store{one, segs} {
			for rest := evs; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(9))
				if err := s.Insert(ctx, rest[:k]); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
			}
		}
		for q := 0; q < 40; q++ {
			pq := randomPage(rng, evs)
			f := pq.Filter
			want, err := one.Page(ctx, pq)
			if err != nil {
				t.Fatal(err)
			}
			got, err := segs.Page(ctx, pq)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqsOf(got), seqsOf(want)) {
				t.Fatalf("Page %+v: segments %v, one collection %v", pq, seqsOf(got), seqsOf(want))
			}
			object := fmt.Sprint("booking:", rng.IntN(6))
			we, wok, _ := one.Latest(ctx, object, f.Type)
			ge, gok, err := segs.Latest(ctx, object, f.Type)
			if err != nil || gok != wok || (gok && ge.Seq != we.Seq) {
				t.Fatalf("Latest(%s, %q): segments %v %v, one collection %v %v", object, f.Type, ge, gok, we, wok)
			}
			sc := audit.Scan{After: int64(rng.IntN(n)), To: int64(rng.IntN(n + 1)), Filter: f}
			if w, g := scanned(t, one, sc), scanned(t, segs, sc); !slices.Equal(g, w) {
				t.Fatalf("Scan %+v: segments %v, one collection %v", sc, g, w)
			}
		}
	}
}

// randomLog returns a log of n events, seqs 1 to n, with random types,
// people, sessions, projects, objects and times, for property tests.
func randomLog(rng *rand.Rand, n int) []*standin.Event {
	evs := make([]*standin.Event, n)
	for i := range evs {
		seq := int64(i + 1)
		e := storedEvent(seq)
		e.Type = []string{standin.EventLogin, standin.EventActionAllowed, standin.EventActionDenied}[rng.IntN(3)]
		e.Actor.ID = fmt.Sprint("a", rng.IntN(4))
		e.Subject.ID = fmt.Sprint("s", rng.IntN(5))
		e.ImpersonationID = fmt.Sprint("i", rng.IntN(6))
		e.Project = fmt.Sprint("p", rng.IntN(4))
		e.Projects = []string{fmt.Sprint("p", rng.IntN(4))}
		e.Object = fmt.Sprint("booking:", rng.IntN(5))
		e.Time = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq*1500+int64(rng.IntN(900))) * time.Millisecond)
		evs[i] = e
	}
	return evs
}

// randomPage returns a page of a log of evs with a random filter, of each
// kind the Activity panel sends (times included, some matching nothing),
// and a random bound.
func randomPage(rng *rand.Rand, evs []*standin.Event) audit.PageQuery {
	var f standin.EventFilter
	switch rng.IntN(8) {
	case 0:
		f.Type = standin.EventActionDenied
	case 1:
		f.ActorID = fmt.Sprint("a", rng.IntN(5))
	case 2:
		f.SubjectID, f.Projects = fmt.Sprint("s", rng.IntN(5)), []string{fmt.Sprint("p", rng.IntN(4))}
	case 3:
		f.Project = fmt.Sprint("p", rng.IntN(5))
	case 4:
		f.ImpersonationID = fmt.Sprint("i", rng.IntN(7))
	case 5:
		at := evs[rng.IntN(len(evs))].Time.Add(time.Duration(rng.IntN(3)-1) * 700 * time.Microsecond)
		f.Since, f.Until = at, at.Add(time.Duration(rng.IntN(20))*time.Second)
	case 6:
		f.Projects = []string{fmt.Sprint("p", rng.IntN(4)), fmt.Sprint("p", rng.IntN(4))}
	}
	pq := audit.PageQuery{Filter: f, Limit: 1 + rng.IntN(12)}
	if rng.IntN(2) == 0 {
		pq.After = int64(rng.IntN(len(evs)))
	} else {
		pq.Before = int64(rng.IntN(len(evs) + 2))
	}
	return pq
}

func scanned(t *testing.T, s audit.Store, sc audit.Scan) []int64 {
	t.Helper()
	var seqs []int64
	if err := s.Scan(context.Background(), sc, func(st audit.Stored) error { seqs = append(seqs, st.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	return seqs
}
