package mongostore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/mongostore"
	"standin/server/standin"
)

// TestSealedChunksAnswerAsTheEvents is a property test: on random logs,
// with a random part of their chunks sealed, every page of random filters
// (each field the summaries keep, times included) and bounds answers as
// the events read one by one do, and the events a page gives from a
// chunk are the events stored.
func TestSealedChunksAnswerAsTheEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	for round := 0; round < 3; round++ {
		plain, sealed := mustOpen(t).Segments(8), mustOpen(t).Segments(8) // chunks of 2
		n := 30 + rng.IntN(60)
		var evs []*standin.Event
		for seq := int64(1); seq <= int64(n); seq++ {
			e := storedEvent(seq)
			e.Type = []string{standin.EventLogin, standin.EventActionAllowed, standin.EventActionDenied}[rng.IntN(3)]
			e.Actor.ID = fmt.Sprint("a", rng.IntN(4))
			e.Subject.ID = fmt.Sprint("s", rng.IntN(5))
			e.ImpersonationID = fmt.Sprint("i", rng.IntN(6))
			e.Project = fmt.Sprint("p", rng.IntN(4))
			e.Projects = []string{fmt.Sprint("p", rng.IntN(4))}
			e.Time = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq*1500+int64(rng.IntN(900))) * time.Millisecond)
			evs = append(evs, e)
		}
		for _, s := range []*mongostore.Segments{plain, sealed} {
			if err := s.Insert(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		size := sealed.ChunkSize()
		if size != 2 {
			t.Fatalf("chunk size %d, want a quarter of the segment", size)
		}
		// Seal most chunks, leaving some out so that some segments are
		// sealed whole and others not.
		var left []int64
		for k := int64(n)/size - 1; k >= 0; k-- {
			if k >= 4 && rng.IntN(5) == 0 { // segment 0 is sealed whole
				left = append(left, k)
				continue
			}
			if err := sealed.Seal(ctx, [][]*standin.Event{evs[k*size : (k+1)*size]}); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := sealed.Unsealed(ctx, int64(n), 1000); err != nil || !slices.Equal(got, left) {
			t.Fatalf("Unsealed: %v %v, want %v", got, err, left)
		}
		// Sealing again, as another server would, changes nothing.
		if err := sealed.Seal(ctx, [][]*standin.Event{evs[:size], evs[size : 2*size]}); err != nil {
			t.Fatalf("sealing a sealed chunk: %v", err)
		}
		// A chunk that cannot be read is a copy: its segment's events
		// answer instead.
		if err := sealed.SpoilChunk(ctx, 1); err != nil {
			t.Fatal(err)
		}
		// A fresh store on the same database reads the summaries.
		again := sealed.Reopened()
		if got, err := again.Unsealed(ctx, int64(n), 1000); err != nil || !slices.Equal(got, left) {
			t.Fatalf("Unsealed after reopening: %v %v, want %v", got, err, left)
		}

		for q := 0; q < 120; q++ {
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
				at := evs[rng.IntN(n)].Time.Add(time.Duration(rng.IntN(3)-1) * 700 * time.Microsecond)
				f.Since, f.Until = at, at.Add(time.Duration(rng.IntN(20))*time.Second)
			case 6:
				f.Projects = []string{fmt.Sprint("p", rng.IntN(4)), fmt.Sprint("p", rng.IntN(4))}
			}
			pq := audit.PageQuery{Filter: f, Limit: 1 + rng.IntN(12)}
			if rng.IntN(2) == 0 {
				pq.After = int64(rng.IntN(n))
			} else {
				pq.Before = int64(rng.IntN(n + 2))
			}
			want, err := plain.Page(ctx, pq)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []*mongostore.Segments{sealed, again} {
				got, err := s.Page(ctx, pq)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(seqsOf(got), seqsOf(want)) {
					t.Fatalf("Page %+v: sealed %v, events %v (unsealed chunks %v)", pq, seqsOf(got), seqsOf(want), left)
				}
				for i := range got {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Fatalf("event %d from its chunk:\n%+v\nstored:\n%+v", got[i].Seq, got[i], want[i])
					}
				}
			}
		}
	}
}

// BenchmarkSealedChunk measures what a page pays for one chunk of 256
// events of the size the server writes: read from the database and
// decoded ("read"), and decoded alone ("unpack").
func BenchmarkSealedChunk(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b).Segments(0)
	var evs []*standin.Event
	for seq := int64(1); seq <= s.ChunkSize(); seq++ {
		e := storedEvent(seq)
		e.ID, e.Hash, e.PrevHash = fmt.Sprintf("%024x", seq*7919), fmt.Sprintf("%064x", seq*104729), fmt.Sprintf("%064x", (seq-1)*104729)
		e.Subject, e.Action, e.Outcome = standin.EventUser{ID: fmt.Sprintf("%024x", seq%97), Name: "Subject Name"}, "booking.create", "allowed"
		e.Reason, e.IP, e.UserAgent = "member of the project with the required trainings", "192.0.2.1", "Mozilla/5.0 (X11; Linux x86_64)"
		evs = append(evs, e)
	}
	if err := s.Insert(ctx, evs); err != nil {
		b.Fatal(err)
	}
	if err := s.Seal(ctx, [][]*standin.Event{evs}); err != nil {
		b.Fatal(err)
	}
	data, err := mongostore.PackEvents(evs)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if n, err := s.ReadChunk(ctx, 0); err != nil || n != len(evs) {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("unpack", func(b *testing.B) {
		b.Logf("packed %d bytes", len(data))
		for b.Loop() {
			if err := mongostore.UnpackChunk(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
