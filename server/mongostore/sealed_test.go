package mongostore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

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
		evs := randomLog(rng, 30+rng.IntN(60))
		n := len(evs)
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
			pq := randomPage(rng, evs)
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
