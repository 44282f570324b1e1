package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/audit"
	"standin/server/clustertest"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

func TestMain(m *testing.M) {
	code := dbtest.Main(m)
	clustertest.RemoveBinary() // built for the tests of several servers
	os.Exit(code)
}

// collection is where package mongostore keeps the events.
const collection = "events"

// testDB is a fresh database: the store a Log is opened on (Events), and
// a driver handle of its own through which tests change documents behind
// the log's back.
type testDB struct {
	*mongo.Database
	store *mongostore.DB
}

// Events returns the audit log's store on the database.
func (db testDB) Events() *mongostore.Events { return db.store.Events() }

// eventStore is what a Log can be opened on in these tests: a testDB, or
// a connection of its own to a database.
type eventStore interface{ Events() *mongostore.Events }

// mustDB returns a fresh database, dropped when the test ends.
func mustDB(t testing.TB) testDB {
	t.Helper()
	db := dbtest.MustOpen(t)
	return testDB{Database: dbtest.MustDriver(t, db), store: db}
}

// mustLog opens a Log on db and closes it when the test ends.
func mustLog(t testing.TB, db eventStore, cfg audit.Config) *audit.Log {
	t.Helper()
	l, err := audit.Open(context.Background(), db.Events(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// mustAppend appends evs or fails the test.
func mustAppend(t testing.TB, l *audit.Log, evs ...*standin.Event) {
	t.Helper()
	if err := l.Append(context.Background(), evs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// mustVerify checks that the chain is whole and holds n events.
func mustVerify(t testing.TB, l *audit.Log, n int64) {
	t.Helper()
	v, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !v.OK || v.Checked != n {
		t.Fatalf("Verify = %+v, want OK with %d checked", v, n)
	}
}

// all reads every stored event in seq order.
func all(t testing.TB, l *audit.Log) []*standin.Event {
	t.Helper()
	var out []*standin.Event
	if err := l.EventsAfter(context.Background(), 0, func(e *standin.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("EventsAfter: %v", err)
	}
	return out
}

// recorder collects what OnCommit is given.
type recorder struct {
	mu    sync.Mutex
	calls int
	evs   []*standin.Event
}

func (r *recorder) onCommit(evs []*standin.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.evs = append(r.evs, evs...)
}

func (r *recorder) seqs() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int64, len(r.evs))
	for i, e := range r.evs {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func seqsOf(evs []*standin.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func login(who string) *standin.Event {
	return &standin.Event{Type: standin.EventLogin, Actor: standin.EventUser{ID: who, Name: "User " + who},
		Subject: standin.EventUser{ID: who, Name: "User " + who}, Outcome: "ok", IP: "127.0.0.1", UserAgent: "test"}
}

// manyWith returns 40 events, e among them twice.
func manyWith(e *standin.Event) []*standin.Event {
	evs := []*standin.Event{e}
	for i := range 38 {
		evs = append(evs, login(fmt.Sprint(i)))
	}
	return append(evs, e)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func slogTo(c *counter) *slog.Logger { return slog.New(c) }

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := standin.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func TestAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("AssignsChain", func(t *testing.T) {
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		var evs []*standin.Event
		for i := range 5 {
			e := login(fmt.Sprint(i))
			mustAppend(t, l, e)
			evs = append(evs, e)
		}
		prev := ""
		for i, e := range evs {
			if e.Seq != int64(i+1) {
				t.Errorf("event %d got seq %d", i, e.Seq)
			}
			if e.PrevHash != prev || e.Hash != audit.ComputeHash(e) || len(e.Hash) != 64 {
				t.Errorf("event %d: prev %q hash %q, want prev %q and its own hash", i, e.PrevHash, e.Hash, prev)
			}
			if e.ID == "" || e.Time.IsZero() || e.Time.Location() != time.UTC || e.Time.Nanosecond()%int(time.Millisecond) != 0 {
				t.Errorf("event %d: id %q time %v", i, e.ID, e.Time)
			}
			prev = e.Hash
		}
		stored := all(t, l)
		if len(stored) != len(evs) {
			t.Fatalf("stored %d events, want %d", len(stored), len(evs))
		}
		for i := range evs {
			want := *evs[i]
			want.Projects = nil
			got := *stored[i]
			got.Projects = nil
			if !got.Time.Equal(want.Time) {
				t.Errorf("event %d time %v, stored %v", i, want.Time, got.Time)
			}
			got.Time, want.Time = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("stored %+v\nwant %+v", got, want)
			}
		}
		mustVerify(t, l, 5)
		if l.Head() != 5 {
			t.Errorf("Head = %d", l.Head())
		}
	})

	t.Run("KeepsGivenIDAndTime", func(t *testing.T) {
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		at := time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("X", 3600))
		e := login("a")
		e.ID, e.Time = "given-id", at
		e.Seq, e.Hash, e.PrevHash = 99, "junk", "junk"
		mustAppend(t, l, e)
		if e.ID != "given-id" || !e.Time.Equal(at.Truncate(time.Millisecond)) || e.Time.Location() != time.UTC || e.Seq != 1 {
			t.Fatalf("got id %q time %v seq %d", e.ID, e.Time, e.Seq)
		}
		got := all(t, l)[0]
		if got.ID != "given-id" || !got.Time.Equal(e.Time) || got.Hash != e.Hash {
			t.Fatalf("stored %+v", got)
		}
	})

	t.Run("ManyInOneCall", func(t *testing.T) {
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{MaxBatch: 3})
		mustAppend(t, l, login("first"))
		evs := []*standin.Event{login("a"), login("b"), login("c"), login("d"), login("e")}
		evs[2].Projects = []string{"p1", "p2"}
		mustAppend(t, l, evs...) // more than MaxBatch: committed alone, whole
		if got := seqsOf(evs); !slices.Equal(got, seqRange(2, 6)) {
			t.Fatalf("seqs %v", got)
		}
		if got := all(t, l)[3]; !slices.Equal(got.Projects, []string{"p1", "p2"}) {
			t.Fatalf("projects %v", got.Projects)
		}
		mustVerify(t, l, 6)
	})

	t.Run("RepairsInvalidUTF8", func(t *testing.T) {
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		projects := []string{"ok", "bad\xff"}
		e := login("a")
		e.Reason, e.Projects = "caf\xc3 \U0001F600 <&>", projects
		mustAppend(t, l, e)
		if e.Reason != "caf\uFFFD \U0001F600 <&>" || e.Projects[1] != "bad\uFFFD" || projects[1] != "bad\xff" {
			t.Fatalf("reason %q projects %q (caller's %q)", e.Reason, e.Projects, projects)
		}
		if got := all(t, l)[0]; got.Reason != e.Reason || got.Hash != e.Hash {
			t.Fatalf("stored %+v", got)
		}
		mustVerify(t, l, 1)
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		e := login("a")
		for _, tc := range []struct {
			name string
			evs  []*standin.Event
		}{
			{"Nil", []*standin.Event{login("a"), nil}},
			{"NoType", []*standin.Event{{Actor: standin.EventUser{ID: "a"}}}},
			{"SameTwice", []*standin.Event{e, e}},
			{"SameTwiceInMany", manyWith(e)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, l.Append(ctx, tc.evs...), standin.EInvalid)
			})
		}
		if err := l.Append(ctx); err != nil {
			t.Fatalf("Append of nothing: %v", err)
		}
		if n := len(all(t, l)); n != 0 {
			t.Fatalf("%d events stored", n)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := l.Append(cctx, login("a")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Append = %v", err)
		}
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		wantCode(t, l.Append(dctx, login("a")), standin.EUnavailable)
		if n := len(all(t, l)); n != 0 {
			t.Fatalf("%d events stored", n)
		}
	})
}

// The hash follows the documented encoding, which an outside tool can
// reproduce from the description alone.
func TestComputeHash(t *testing.T) {
	t.Parallel()
	base := standin.Event{
		ID: "id1", Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC), Type: "action.denied",
		Actor: standin.EventUser{ID: "a", Name: "Ann"}, Subject: standin.EventUser{ID: "s", Name: "Sam"},
		ImpersonationID: "imp", Action: "booking.create", Object: "booking/1", Project: "p1", Outcome: "denied",
		Reason: "missing training: Laser Safety", IP: "10.0.0.1", UserAgent: "UA/1.0", Projects: []string{"p1", "p2"},
		PrevHash: strings.Repeat("ab", 32),
	}
	ns := func(s string) string { return fmt.Sprintf("%d:%s,", len(s), s) }
	msg := ns("standin-audit-v1") + ns(base.PrevHash) + ns("id1") + ns("7") + ns("2026-01-02T03:04:05.006Z") +
		ns("action.denied") + ns("a") + ns("Ann") + ns("s") + ns("Sam") + ns("imp") + ns("booking.create") +
		ns("booking/1") + ns("p1") + ns("denied") + ns("missing training: Laser Safety") + ns("10.0.0.1") +
		ns("UA/1.0") + ns("2") + ns("p1") + ns("p2")
	sum := sha256.Sum256([]byte(msg))
	if got, want := audit.ComputeHash(&base), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("ComputeHash = %s, want %s", got, want)
	}

	// The example in ComputeHash's documentation.
	ex := standin.Event{Seq: 1, Type: "auth.login", Time: time.Unix(0, 0)}
	exMsg := "16:standin-audit-v1,0:,0:,1:1,24:1970-01-01T00:00:00.000Z,10:auth.login,"
	exMsg += strings.Repeat("0:,", 12) + "1:0,"
	exSum := sha256.Sum256([]byte(exMsg))
	if got := audit.ComputeHash(&ex); got != hex.EncodeToString(exSum[:]) {
		t.Fatalf("documented example hashes differently")
	}

	// Every field counts, and field boundaries cannot be shifted.
	for _, tc := range []struct {
		name   string
		change func(e *standin.Event)
	}{
		{"ID", func(e *standin.Event) { e.ID = "id2" }},
		{"Seq", func(e *standin.Event) { e.Seq = 8 }},
		{"Time", func(e *standin.Event) { e.Time = e.Time.Add(time.Millisecond) }},
		{"Type", func(e *standin.Event) { e.Type = "action.allowed" }},
		{"ActorID", func(e *standin.Event) { e.Actor.ID = "b" }},
		{"ActorName", func(e *standin.Event) { e.Actor.Name = "Bob" }},
		{"SubjectID", func(e *standin.Event) { e.Subject.ID = "t" }},
		{"SubjectName", func(e *standin.Event) { e.Subject.Name = "Tom" }},
		{"Impersonation", func(e *standin.Event) { e.ImpersonationID = "" }},
		{"Action", func(e *standin.Event) { e.Action = "x" }},
		{"Object", func(e *standin.Event) { e.Object = "x" }},
		{"Project", func(e *standin.Event) { e.Project = "x" }},
		{"Outcome", func(e *standin.Event) { e.Outcome = "allowed" }},
		{"Reason", func(e *standin.Event) { e.Reason = "x" }},
		{"IP", func(e *standin.Event) { e.IP = "x" }},
		{"UserAgent", func(e *standin.Event) { e.UserAgent = "x" }},
		{"Projects", func(e *standin.Event) { e.Projects = []string{"p1"} }},
		{"ProjectsOrder", func(e *standin.Event) { e.Projects = []string{"p2", "p1"} }},
		{"PrevHash", func(e *standin.Event) { e.PrevHash = "" }},
		{"Boundary", func(e *standin.Event) { e.Actor.ID, e.Actor.Name = "aAnn", "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			e.Projects = slices.Clone(base.Projects)
			tc.change(&e)
			if audit.ComputeHash(&e) == audit.ComputeHash(&base) {
				t.Fatal("hash did not change")
			}
		})
	}

	t.Run("SubMillisecondIgnored", func(t *testing.T) {
		e := base
		e.Time = base.Time.Add(999 * time.Microsecond).In(time.FixedZone("Y", -7200))
		if audit.ComputeHash(&e) != audit.ComputeHash(&base) {
			t.Fatal("time below a millisecond or its zone changed the hash")
		}
	})
}

// Many goroutines appending at once get every seq exactly once, in a
// chain that verifies, and OnCommit sees each event once in order.
func TestConcurrentAppends(t *testing.T) {
	t.Parallel()
	var rec recorder
	l := mustLog(t, mustDB(t), audit.Config{OnCommit: rec.onCommit})
	const writers, each = 8, 50
	var wg sync.WaitGroup
	got := make([][]*standin.Event, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := login(fmt.Sprintf("w%d-%d", w, i))
				if err := l.Append(context.Background(), e); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				got[w] = append(got[w], e)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var seqs []int64
	for w := range writers {
		// Each writer's own events are in the order it appended them.
		if s := seqsOf(got[w]); !slices.IsSorted(s) {
			t.Errorf("writer %d got seqs out of order: %v", w, s)
		}
		seqs = append(seqs, seqsOf(got[w])...)
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, seqRange(1, writers*each)) {
		t.Fatalf("seqs are not 1..%d exactly once: %v", writers*each, seqs)
	}
	if s := seqsOf(all(t, l)); !slices.Equal(s, seqRange(1, writers*each)) {
		t.Fatalf("stored seqs %v", s)
	}
	if s := rec.seqs(); !slices.Equal(s, seqRange(1, writers*each)) {
		t.Fatalf("OnCommit saw %v", s)
	}
	t.Logf("%d events in %d commits", writers*each, rec.calls)
	mustVerify(t, l, writers*each)
}

// Two servers sharing a database interleave their appends without a gap
// or a duplicate, and the chain verifies.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	// The second server has its own client and connection.
	other := dbtest.MustConnect(t, db.store, mongostore.Options{AppendOnly: true})
	var recs [2]recorder
	var conflicts counter
	logger := slog.New(&conflicts)
	logs := []*audit.Log{
		mustLog(t, db, audit.Config{OnCommit: recs[0].onCommit, Logger: logger}),
		mustLog(t, other, audit.Config{OnCommit: recs[1].onCommit, Logger: logger}),
	}
	const perLog, writers, each = 2, 4, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	mine := map[int64]string{} // seq → id of the event appended there
	for i, l := range logs {
		for w := range writers {
			wg.Go(func() {
				for k := range each {
					e := login(fmt.Sprintf("s%d-w%d-%d", i, w, k))
					if err := l.Append(context.Background(), e); err != nil {
						t.Errorf("server %d Append: %v", i, err)
						return
					}
					mu.Lock()
					if prev, dup := mine[e.Seq]; dup {
						t.Errorf("seq %d given to %s and %s", e.Seq, prev, e.ID)
					}
					mine[e.Seq] = e.ID
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	const total = perLog * writers * each
	stored := all(t, logs[0])
	if s := seqsOf(stored); !slices.Equal(s, seqRange(1, total)) {
		t.Fatalf("stored seqs %v", s)
	}
	for _, e := range stored {
		if mine[e.Seq] != e.ID {
			t.Fatalf("seq %d holds %s, but Append reported %s there", e.Seq, e.ID, mine[e.Seq])
		}
	}
	var published []int64
	for i := range recs {
		s := recs[i].seqs()
		if !slices.IsSorted(s) || len(slices.Compact(slices.Clone(s))) != len(s) {
			t.Errorf("server %d OnCommit saw %v", i, s)
		}
		published = append(published, s...)
	}
	slices.Sort(published)
	if !slices.Equal(published, seqRange(1, total)) {
		t.Errorf("together the servers published %v", published)
	}
	mustVerify(t, logs[0], total)
	mustVerify(t, logs[1], total)
	t.Logf("%d conflicts between the servers", conflicts.count("conflict"))
}

// counter is a slog handler that counts records by message.
type counter struct {
	mu   sync.Mutex
	msgs []string
}

func (c *counter) Enabled(context.Context, slog.Level) bool { return true }
func (c *counter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, r.Message)
	return nil
}
func (c *counter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *counter) WithGroup(string) slog.Handler      { return c }

// count returns how many records' messages contain s.
func (c *counter) count(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// An OnCommit that panics is logged; the log goes on.
func TestOnCommitPanic(t *testing.T) {
	t.Parallel()
	l := mustLog(t, mustDB(t), audit.Config{OnCommit: func([]*standin.Event) { panic("subscriber bug") },
		Logger: discard()})
	mustAppend(t, l, login("a"))
	mustAppend(t, l, login("b"))
	mustVerify(t, l, 2)
}

// Reopening continues the chain where it ended.
func TestReopen(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	ctx := context.Background()
	for round := range 3 {
		l, err := audit.Open(ctx, db.Events(), audit.Config{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if l.Head() != int64(2*round) {
			t.Fatalf("round %d: Head = %d", round, l.Head())
		}
		mustAppend(t, l, login("a"), login("b"))
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
		wantCode(t, l.Append(ctx, login("late")), standin.EUnavailable)
	}
	l := mustLog(t, db, audit.Config{})
	mustVerify(t, l, 6)
}

// Close lets every Append already made finish; none hangs, and an Append
// reports success exactly when its event is stored.
func TestCloseDrains(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	l, err := audit.Open(context.Background(), db.Events(), audit.Config{MaxBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	const n = 120
	results := make([]error, n)
	evs := make([]*standin.Event, n)
	var wg sync.WaitGroup
	for i := range n {
		evs[i] = login(fmt.Sprint(i))
		wg.Go(func() { results[i] = l.Append(context.Background(), evs[i]) })
	}
	time.Sleep(5 * time.Millisecond)
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Appends still waiting after Close")
	}
	ok := map[string]bool{}
	for i, err := range results {
		switch standin.ErrorCode(err) {
		case "":
			ok[evs[i].ID] = true
		case standin.EUnavailable:
		default:
			t.Errorf("Append %d: %v", i, err)
		}
	}
	reader := mustLog(t, db, audit.Config{})
	stored := all(t, reader)
	if len(stored) != len(ok) {
		t.Fatalf("%d Appends succeeded, %d events stored", len(ok), len(stored))
	}
	for _, e := range stored {
		if !ok[e.ID] {
			t.Fatalf("event %s stored but its Append failed", e.ID)
		}
	}
	t.Logf("%d of %d appends made it before Close", len(ok), n)
	mustVerify(t, reader, int64(len(ok)))
}
