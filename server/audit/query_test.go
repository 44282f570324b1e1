package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/audit"
	"standin/server/standin"
)

var base = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// dataset appends n events whose fields vary with their index, so that
// every filter selects a different subset.
func dataset(t testing.TB, l *audit.Log, n int) []*standin.Event {
	t.Helper()
	types := []string{standin.EventLogin, standin.EventActionAllowed, standin.EventActionDenied, standin.EventImpersonationStarted}
	var evs []*standin.Event
	for i := range n {
		e := &standin.Event{
			Type:    types[i%4],
			Time:    base.Add(time.Duration(i) * time.Minute),
			Actor:   standin.EventUser{ID: fmt.Sprintf("u%d", i%3), Name: "Actor"},
			Subject: standin.EventUser{ID: fmt.Sprintf("u%d", i%5), Name: "Subject"},
			Action:  "act", Object: fmt.Sprintf("obj%d", i%6), Outcome: "ok",
			Project: []string{"", "p1", "p2"}[i%3],
		}
		if i%4 == 3 {
			e.ImpersonationID = fmt.Sprintf("imp%d", i%2)
		}
		switch i % 3 {
		case 1:
			e.Projects = []string{"p1"}
		case 2:
			e.Projects = []string{"p2", "p3"}
		}
		evs = append(evs, e)
	}
	// Several calls of several events, so group commit is part of it.
	for i := 0; i < n; i += 4 {
		mustAppend(t, l, evs[i:min(i+4, n)]...)
	}
	return evs
}

// matches is the meaning of an EventFilter, written out plainly.
func matches(e *standin.Event, f standin.EventFilter) bool {
	switch {
	case f.Type != "" && e.Type != f.Type,
		f.ActorID != "" && e.Actor.ID != f.ActorID,
		f.SubjectID != "" && e.Subject.ID != f.SubjectID,
		f.ImpersonationID != "" && e.ImpersonationID != f.ImpersonationID,
		f.Project != "" && e.Project != f.Project && !slices.Contains(e.Projects, f.Project),
		f.AfterSeq > 0 && e.Seq <= f.AfterSeq,
		!f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until):
		return false
	}
	if f.Projects != nil {
		return slices.ContainsFunc(e.Projects, func(p string) bool { return slices.Contains(f.Projects, p) })
	}
	return true
}

// TestQuery runs every query against the database alone and against
// windows of recent events kept in memory: one filled by its own appends
// and smaller than the log, one loaded whole at Open, and one loaded with
// only the newest events, so pages run from memory into the database.
func TestQuery(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	writer := mustLog(t, db, audit.Config{Window: 16})
	evs := dataset(t, writer, 40)
	for _, mode := range []struct {
		name string
		l    *audit.Log
	}{
		{"AppendedWindow", writer},
		{"Database", mustLog(t, db, audit.Config{})},
		{"LoadedWindow", mustLog(t, db, audit.Config{Window: 1000})},
		{"LoadedPartialWindow", mustLog(t, db, audit.Config{Window: 12})},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			testQuery(t, mode.l, evs)
		})
	}
}

func testQuery(t *testing.T, l *audit.Log, evs []*standin.Event) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    standin.EventFilter
	}{
		{"All", standin.EventFilter{}},
		{"Type", standin.EventFilter{Type: standin.EventActionDenied}},
		{"Actor", standin.EventFilter{ActorID: "u1"}},
		{"Subject", standin.EventFilter{SubjectID: "u4"}},
		{"Impersonation", standin.EventFilter{ImpersonationID: "imp1"}},
		{"ProjectField", standin.EventFilter{Project: "p1"}},
		{"ProjectInProjects", standin.EventFilter{Project: "p3"}},
		{"ProjectsVisible", standin.EventFilter{Projects: []string{"p1"}}},
		{"ProjectsAny", standin.EventFilter{Projects: []string{"p3", "zz"}}},
		{"ProjectsEmpty", standin.EventFilter{Projects: []string{}}},
		{"ProjectsUnknown", standin.EventFilter{Projects: []string{"zz"}}},
		{"Since", standin.EventFilter{Since: base.Add(30 * time.Minute)}},
		{"Until", standin.EventFilter{Until: base.Add(5 * time.Minute)}},
		{"SinceUntil", standin.EventFilter{Since: base.Add(10 * time.Minute), Until: base.Add(20*time.Minute + time.Second)}},
		{"Combined", standin.EventFilter{Type: standin.EventActionAllowed, Projects: []string{"p1", "p2"}, SubjectID: "u0"}},
		{"NoMatch", standin.EventFilter{Type: "no.such"}},
		{"AfterSeq", standin.EventFilter{AfterSeq: 25}},
		{"AfterSeqType", standin.EventFilter{AfterSeq: 5, Type: standin.EventLogin}},
		{"AfterSeqPastEnd", standin.EventFilter{AfterSeq: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var want []int64
			for _, e := range evs {
				if matches(e, tc.f) {
					want = append(want, e.Seq)
				}
			}
			if tc.f.AfterSeq == 0 {
				slices.Reverse(want) // newest first
			}
			var got []int64
			cursor, pages := "", 0
			for {
				page, next, err := l.Query(ctx, tc.f, standin.Page{Cursor: cursor, Limit: 7})
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if len(page) > 7 {
					t.Fatalf("page of %d", len(page))
				}
				for _, e := range page {
					if !matches(e, tc.f) {
						t.Errorf("event %d does not match: %+v", e.Seq, e)
					}
				}
				got = append(got, seqsOf(page)...)
				pages++
				if next == "" {
					break
				}
				if next != strconv.FormatInt(page[len(page)-1].Seq, 10) {
					t.Fatalf("cursor %q after seq %d", next, page[len(page)-1].Seq)
				}
				cursor = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %v in %d pages\nwant %v", got, pages, want)
			}
		})
	}

	t.Run("Limits", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			limit, want int
			next        bool
		}{{0, 40, false}, {-3, 40, false}, {1, 1, true}, {40, 40, false}, {39, 39, true}, {10_000, 40, false}} {
			page, next, err := l.Query(ctx, standin.EventFilter{}, standin.Page{Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) != tc.want || (next != "") != tc.next {
				t.Errorf("limit %d: %d events, next %q", tc.limit, len(page), next)
			}
		}
	})

	t.Run("ReturnsEverything", func(t *testing.T) {
		t.Parallel()
		page, _, err := l.Query(ctx, standin.EventFilter{AfterSeq: 9}, standin.Page{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := *evs[9]
		got := page[0]
		if got.ID != want.ID || got.Hash != want.Hash || got.Object != want.Object || !got.Time.Equal(want.Time) ||
			got.ImpersonationID != want.ImpersonationID || !slices.Equal(got.Projects, want.Projects) && len(want.Projects) > 0 {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			f    standin.EventFilter
			p    standin.Page
		}{
			{"CursorText", standin.EventFilter{}, standin.Page{Cursor: "abc"}},
			{"CursorZero", standin.EventFilter{}, standin.Page{Cursor: "0"}},
			{"CursorNegative", standin.EventFilter{}, standin.Page{Cursor: "-4"}},
			{"CursorObjectID", standin.EventFilter{}, standin.Page{Cursor: bson.NewObjectID().Hex()}},
			{"CursorWithEmptyProjects", standin.EventFilter{Projects: []string{}}, standin.Page{Cursor: "x"}},
			{"AfterSeqNegative", standin.EventFilter{AfterSeq: -1}, standin.Page{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := l.Query(ctx, tc.f, tc.p)
				wantCode(t, err, standin.EInvalid)
			})
		}
	})
}

func TestEventsAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustDB(t)
	l := mustLog(t, db, audit.Config{})
	audit.SetChunk(l, 7) // replays cross many chunks
	dataset(t, l, 40)
	// A Log keeping the newest events in memory replays the older ones
	// from the database and the rest from memory.
	windowed := mustLog(t, db, audit.Config{Window: 9})
	audit.SetChunk(windowed, 7)
	// One that reads the database in stored order, in one query.
	stored := mustLog(t, db, audit.Config{StoredOrder: true})
	storedWindow := mustLog(t, db, audit.Config{StoredOrder: true, Window: 9})
	readers := []struct {
		name string
		l    *audit.Log
	}{{"Chunks", l}, {"Window", windowed}, {"StoredOrder", stored}, {"StoredOrderWindow", storedWindow}}

	collect := func(l *audit.Log, after int64) []int64 {
		t.Helper()
		var got []int64
		if err := l.EventsAfter(ctx, after, func(e *standin.Event) error {
			got = append(got, e.Seq)
			return nil
		}); err != nil {
			t.Fatalf("EventsAfter: %v", err)
		}
		return got
	}
	for _, tc := range []struct {
		name  string
		after int64
		want  []int64
	}{
		{"All", 0, seqRange(1, 40)},
		{"Negative", -5, seqRange(1, 40)},
		{"Middle", 13, seqRange(14, 40)},
		{"ChunkEdge", 14, seqRange(15, 40)},
		{"Last", 39, []int64{40}},
		{"AtHead", 40, nil},
		{"PastHead", 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range readers {
				if got := collect(r.l, tc.after); !slices.Equal(got, tc.want) {
					t.Fatalf("%s: got %v, want %v", r.name, got, tc.want)
				}
			}
		})
	}

	t.Run("Matching", func(t *testing.T) {
		for _, r := range readers {
			var got []int64
			f := standin.EventFilter{Type: standin.EventActionDenied, AfterSeq: 7}
			if err := r.l.EventsMatching(ctx, f, func(e *standin.Event) error {
				got = append(got, e.Seq)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// dataset gives every fourth event, from the third, this type.
			if want := []int64{11, 15, 19, 23, 27, 31, 35, 39}; !slices.Equal(got, want) {
				t.Fatalf("%s: got %v, want %v", r.name, got, want)
			}
		}
	})

	t.Run("StopsOnError", func(t *testing.T) {
		stop := errors.New("enough")
		var got []int64
		err := l.EventsAfter(ctx, 10, func(e *standin.Event) error {
			got = append(got, e.Seq)
			if e.Seq == 15 {
				return stop
			}
			return nil
		})
		if err != stop || !slices.Equal(got, seqRange(11, 15)) {
			t.Fatalf("err %v, got %v", err, got)
		}
	})

	t.Run("AcrossGapAndOtherWriters", func(t *testing.T) {
		// Events removed behind the log's back leave a gap wider than a
		// chunk; events another server appended lie beyond this Log's
		// head. Neither ends the replay early.
		if _, err := db.Collection(collection).DeleteMany(ctx,
			bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 20}, {Key: "$lte", Value: 35}}}}); err != nil {
			t.Fatal(err)
		}
		other := mustLog(t, db, audit.Config{})
		var more []*standin.Event
		for i := range 10 {
			more = append(more, login(fmt.Sprint("other", i)))
		}
		mustAppend(t, other, more...)
		want := append(seqRange(1, 19), seqRange(36, 50)...)
		if got := collect(l, 0); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if got := collect(stored, 0); !slices.Equal(got, want) {
			t.Fatalf("in stored order: got %v, want %v", got, want)
		}
	})

	t.Run("StoredOutOfOrder", func(t *testing.T) {
		// Events stored out of seq order cannot be walked in stored order:
		// the walk says so rather than skip or repeat any.
		db := mustDB(t)
		dataset(t, mustLog(t, db, audit.Config{}), 6)
		coll := db.Collection(collection)
		var doc bson.Raw
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: int64(3)}}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: int64(3)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.InsertOne(ctx, doc); err != nil {
			t.Fatal(err)
		}
		var got []int64
		err := mustLog(t, db, audit.Config{StoredOrder: true}).EventsAfter(ctx, 0, func(e *standin.Event) error {
			got = append(got, e.Seq)
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "event 3 is stored after event 6") || standin.ErrorCode(err) != standin.EInternal {
			t.Fatalf("err %v (code %q), got %v", err, standin.ErrorCode(err), got)
		}
	})
}

func TestByObject(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	evs := dataset(t, mustLog(t, db, audit.Config{}), 40)
	for _, mode := range []struct {
		name string
		l    *audit.Log
	}{
		{"Database", mustLog(t, db, audit.Config{})},
		{"WholeWindow", mustLog(t, db, audit.Config{Window: 100})},
		{"PartialWindow", mustLog(t, db, audit.Config{Window: 10})},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			testByObject(t, mode.l, evs)
		})
	}
}

func testByObject(t *testing.T, l *audit.Log, evs []*standin.Event) {
	ctx := context.Background()
	latest := func(typ, object string) int64 {
		var seq int64
		for _, e := range evs {
			if e.Object == object && (typ == "" || e.Type == typ) {
				seq = e.Seq
			}
		}
		return seq
	}
	for _, tc := range []struct {
		name, typ, object string
		code              string
	}{
		{"TypeAndObject", standin.EventActionAllowed, "obj1", ""},
		{"OtherType", standin.EventLogin, "obj4", ""},
		{"AnyType", "", "obj2", ""},
		{"NoSuchPair", standin.EventLogin, "obj1", standin.ENotFound},
		{"NoSuchObject", "", "nothing", standin.ENotFound},
		{"NoObject", standin.EventLogin, "", standin.EInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := l.ByObject(ctx, tc.typ, tc.object)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := latest(tc.typ, tc.object); e.Seq != want || want == 0 {
				t.Fatalf("got seq %d, want %d", e.Seq, want)
			}
		})
	}
}

// TestWindowAnotherWriter shows a Log keeping recent events in memory
// giving that up, rather than answering from stale memory, once it sees
// that another writer appended to the same log.
func TestWindowAnotherWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustDB(t)
	var logged counter
	a := mustLog(t, db, audit.Config{Window: 100, Logger: slogTo(&logged)})
	mustAppend(t, a, login("a1"), login("a2"))
	b := mustLog(t, db, audit.Config{})
	mustAppend(t, b, login("b1"))
	mustAppend(t, a, login("a3")) // a learns of b's event from the conflict
	page, _, err := a.Query(ctx, standin.EventFilter{}, standin.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(page); !slices.Equal(got, []int64{4, 3, 2, 1}) {
		t.Fatalf("got %v, want every event of both writers", got)
	}
	if page[1].Actor.ID != "b1" {
		t.Fatalf("event 3 is %+v, want b's", page[1])
	}
	if logged.count("no longer kept in memory") != 1 {
		t.Fatal("the window did not report turning itself off")
	}
}

// TestWindowOwnsItsStrings appends an event whose strings are views of a
// buffer the caller then reuses, as a web framework's request strings can
// be: what the log keeps in memory and answers with must not change.
func TestWindowOwnsItsStrings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := mustLog(t, mustDB(t), audit.Config{Window: 10})
	buf := []byte("agent-one")
	view := unsafe.String(&buf[0], len(buf))
	e := login("u1")
	e.UserAgent, e.Object, e.Projects = view, view, []string{view}
	mustAppend(t, l, e)
	copy(buf, "XXXXXXXXX") // the caller's buffer serves the next request
	page, _, err := l.Query(ctx, standin.EventFilter{}, standin.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if got := page[0]; got.UserAgent != "agent-one" || got.Object != "agent-one" || got.Projects[0] != "agent-one" {
		t.Fatalf("the kept event changed with the caller's buffer: %+v", got)
	}
	mustVerify(t, l, 1)
}
