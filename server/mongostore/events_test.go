package mongostore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

// layout is a way of storing the audit log: one collection, or segments.
type layout struct {
	name  string
	store func(*mongostore.DB) audit.Store
	// first is the collection that holds the first seqs.
	first string
}

// layouts are both ways, the segments small enough that a few events
// cross from one to the next.
var layouts = []layout{
	{"one collection", func(db *mongostore.DB) audit.Store { return db.Events() }, "events"},
	{"segments", func(db *mongostore.DB) audit.Store { return db.Segments(4) }, "events_000000000000"},
}

// mustEvents stores n chained-looking events (seqs 1..n; the store does
// not check the chain) in the layout l and returns the store and its
// database.
func mustEvents(t *testing.T, l layout, n int) (audit.Store, *mongostore.DB) {
	t.Helper()
	db := mustOpen(t)
	s := l.store(db)
	if err := s.EnsureIndexes(context.Background()); err != nil {
		t.Fatalf("EnsureIndexes: %v", err)
	}
	var evs []*standin.Event
	for i := 1; i <= n; i++ {
		evs = append(evs, storedEvent(int64(i)))
	}
	if n > 0 {
		if err := s.Insert(context.Background(), evs); err != nil {
			t.Fatalf("Insert: %v", err)
		}
	}
	return s, db
}

func storedEvent(seq int64) *standin.Event {
	typ := standin.EventLogin
	if seq%2 == 0 {
		typ = standin.EventLogout
	}
	return &standin.Event{
		ID: bson.NewObjectID().Hex(), Seq: seq, Time: time.Date(2026, 12, 1, 10, 0, int(seq), 0, time.UTC), Type: typ,
		Actor: standin.EventUser{ID: "a", Name: "Ada"}, Object: "booking:" + string(rune('a'+seq%3)),
		Projects: []string{"p" + string(rune('0'+seq%2))}, Hash: "h" + string(rune('0'+seq)),
	}
}

func seqsOf(evs []*standin.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func TestEvents(t *testing.T) {
	t.Parallel()
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			testEvents(t, l)
		})
	}
}

func testEvents(t *testing.T, l layout) {
	ctx := context.Background()

	t.Run("Shape", func(t *testing.T) {
		// The document keeps the shape existing databases hold: _id and
		// seq are the seq, every field present, projects never null.
		t.Parallel()
		s, db := mustEvents(t, l, 0)
		e := storedEvent(1)
		e.Projects = nil
		if err := s.Insert(ctx, []*standin.Event{e}); err != nil {
			t.Fatal(err)
		}
		var doc bson.M
		if err := dbtest.MustDriver(t, db).Collection(l.first).FindOne(ctx, bson.M{"_id": int64(1)}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"_id", "id", "seq", "time", "type", "actor", "subject", "impersonation_id", "action",
			"object", "project", "outcome", "reason", "ip", "user_agent", "projects", "prev_hash", "hash"} {
			if _, ok := doc[k]; !ok {
				t.Errorf("stored document lacks %q: %v", k, doc)
			}
		}
		if doc["seq"] != int64(1) || doc["_id"] != int64(1) {
			t.Errorf("_id %v seq %v", doc["_id"], doc["seq"])
		}
		if p, ok := doc["projects"].(bson.A); !ok || len(p) != 0 {
			t.Errorf("projects %#v", doc["projects"])
		}
	})

	t.Run("SeqTaken", func(t *testing.T) {
		t.Parallel()
		s, _ := mustEvents(t, l, 2)
		err := s.Insert(ctx, []*standin.Event{storedEvent(2)})
		if !errors.Is(err, audit.ErrSeqTaken) || standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("Insert of a taken seq: %v", err)
		}
	})

	t.Run("Reads", func(t *testing.T) {
		t.Parallel()
		s, _ := mustEvents(t, l, 6)
		if seq, hash, err := s.Head(ctx); err != nil || seq != 6 || hash != storedEvent(6).Hash {
			t.Fatalf("Head = %d %q %v", seq, hash, err)
		}
		got, err := s.Hashes(ctx, 5, 9)
		if err != nil || len(got) != 2 || got[5] != storedEvent(5).Hash {
			t.Fatalf("Hashes = %v %v", got, err)
		}
		page, err := s.Page(ctx, audit.PageQuery{Filter: standin.EventFilter{Type: standin.EventLogout}, Before: 6, Limit: 5})
		if err != nil || !slices.Equal(seqsOf(page), []int64{4, 2}) {
			t.Fatalf("Page newest first = %v %v", seqsOf(page), err)
		}
		page, err = s.Page(ctx, audit.PageQuery{Filter: standin.EventFilter{Projects: []string{"p1"}}, After: 1, Limit: 2})
		if err != nil || !slices.Equal(seqsOf(page), []int64{3, 5}) {
			t.Fatalf("Page oldest first = %v %v", seqsOf(page), err)
		}
		if e, ok, err := s.Latest(ctx, "booking:b", ""); err != nil || !ok || e.Seq != 4 {
			t.Fatalf("Latest = %v %v %v", e, ok, err)
		}
		if e, ok, err := s.Latest(ctx, "booking:b", standin.EventLogin); err != nil || !ok || e.Seq != 1 {
			t.Fatalf("Latest of a type = %v %v %v", e, ok, err)
		}
		if _, ok, err := s.Latest(ctx, "booking:z", ""); err != nil || ok {
			t.Fatalf("Latest about an object never named: %v %v", ok, err)
		}
		if more, err := s.AnyAfter(ctx, 5); err != nil || !more {
			t.Fatalf("AnyAfter(5) = %v %v", more, err)
		}
		if more, err := s.AnyAfter(ctx, 6); err != nil || more {
			t.Fatalf("AnyAfter(6) = %v %v", more, err)
		}
		for _, sc := range []audit.Scan{{After: 2, To: 5}, {After: 2, Stored: true}} {
			var seqs []int64
			if err := s.Scan(ctx, sc, func(st audit.Stored) error { seqs = append(seqs, st.Seq); return nil }); err != nil {
				t.Fatal(err)
			}
			want := []int64{3, 4, 5}
			if sc.Stored {
				want = append(want, 6)
			}
			if !slices.Equal(seqs, want) {
				t.Errorf("Scan %+v read %v", sc, seqs)
			}
		}
		stop := errors.New("stop")
		if err := s.Scan(ctx, audit.Scan{}, func(audit.Stored) error { return stop }); err != stop {
			t.Fatalf("Scan returned %v, not fn's error", err)
		}
	})

	t.Run("DamagedAndForeign", func(t *testing.T) {
		// A damaged document is read field by field; one whose _id is no
		// seq is reported by a scan of everything, and skipped by reads.
		t.Parallel()
		s, db := mustEvents(t, l, 3)
		raw := dbtest.MustDriver(t, db).Collection(l.first)
		if _, err := raw.UpdateOne(ctx, bson.M{"_id": int64(2)}, bson.M{"$set": bson.M{"time": "yesterday", "actor": 7}}); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.InsertOne(ctx, bson.M{"_id": "junk", "object": "booking:c"}); err != nil {
			t.Fatal(err)
		}
		var got []audit.Stored
		if err := s.Scan(ctx, audit.Scan{All: true}, func(st audit.Stored) error { got = append(got, st); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || got[1].Seq != 2 || got[1].Event.Hash != storedEvent(2).Hash || got[3].Foreign == "" {
			t.Fatalf("scan read %+v", got)
		}
		if want := "its time (it holds text), actor (it holds a number) cannot be read"; got[1].Damaged != want {
			t.Errorf("Damaged = %q, want %q", got[1].Damaged, want)
		}
		if got[0].Damaged != "" || got[2].Damaged != "" {
			t.Errorf("sound documents reported damaged: %q %q", got[0].Damaged, got[2].Damaged)
		}
		if e, ok, err := s.Latest(ctx, "booking:c", ""); err != nil || (ok && e.Seq != 2) {
			t.Fatalf("Latest = %v %v %v", e, ok, err)
		}
	})
}
