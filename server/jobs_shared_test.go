package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server"
	"standin/server/dbtest"
	"standin/server/lease"
	"standin/server/mongostore"
	"standin/server/standin"
)

// logSink keeps the log records of one console that a test looks at.
type logSink struct {
	mu   sync.Mutex
	recs []logRecord
}

type logRecord struct {
	msg   string
	attrs map[string]string
}

// sinkHandler is a slog.Handler that writes every record, at every
// level, to a logSink.
type sinkHandler struct {
	sink  *logSink
	attrs []slog.Attr
}

func (h sinkHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h sinkHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.sink.mu.Lock()
	defer h.sink.mu.Unlock()
	h.sink.recs = append(h.sink.recs, rec)
	return nil
}

func (h sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return sinkHandler{sink: h.sink, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h sinkHandler) WithGroup(string) slog.Handler { return h }

// matching returns the records with message msg whose attributes include
// those given.
func (s *logSink) matching(msg string, attrs map[string]string) []logRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logRecord
next:
	for _, r := range s.recs {
		if r.msg != msg {
			continue
		}
		for k, v := range attrs {
			if r.attrs[k] != v {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// heldTerms returns the terms of job this console logged winning.
func (s *logSink) heldTerms(t *testing.T, job string) []int64 {
	t.Helper()
	var terms []int64
	for _, r := range s.matching("holding lease", map[string]string{"job": job}) {
		k, err := strconv.ParseInt(r.attrs["term"], 10, 64)
		if err != nil {
			t.Fatalf("lease record without a term: %v", r.attrs)
		}
		terms = append(terms, k)
	}
	return terms
}

// holders returns, per term of job, the consoles (by index) that logged
// winning it.
func holders(t *testing.T, sinks []*logSink, job string) map[int64][]int {
	t.Helper()
	out := map[int64][]int{}
	for i, s := range sinks {
		for _, k := range s.heldTerms(t, job) {
			out[k] = append(out[k], i)
		}
	}
	return out
}

// waitUntil polls cond until it holds, failing the test after a deadline
// generous enough for a loaded machine.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mustStartShared starts n consoles, one after another, on one database
// with one audit key, each logging to its own sink.
func mustStartShared(t *testing.T, n int, clk *clock) (*mongostore.DB, []*console, []*logSink) {
	t.Helper()
	db := dbtest.MustOpen(t)
	key := mustAuditKey(t)
	var consoles []*console
	var sinks []*logSink
	for range n {
		sink := &logSink{}
		consoles = append(consoles, mustRun(t, server.Config{
			MongoURI: dbtest.MustServer(t).URI, Database: db.Name(), Demo: server.DemoOn,
			AuditKeyFile: key, Clock: clk.Now, Logger: slog.New(sinkHandler{sink: sink}),
		}))
		sinks = append(sinks, sink)
	}
	return db, consoles, sinks
}

const expireJob = "expire-impersonations"

// TestJobsRunOnOneNodePerTerm: two consoles share one database. The
// impersonation expiry sweep runs on one of them per term, and every term
// has a node running it; while a third node holds it, neither runs it (an
// expired impersonation waits), and after that it ends; when the node
// running the sweep stops, the other takes it over.
func TestJobsRunOnOneNodePerTerm(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	db, consoles, sinks := mustStartShared(t, 2, clk)
	names := make([]string, len(sinks))
	for i, s := range sinks {
		started := s.matching("background jobs run under leases", nil)
		if len(started) != 1 || started[0].attrs["node"] == "" {
			t.Fatalf("console %d did not say which node it is: %v", i, started)
		}
		names[i] = started[0].attrs["node"]
	}

	// Three terms after both consoles run, each held by one console.
	var from int64
	for k := range holders(t, sinks, expireJob) {
		from = max(from, k+1)
	}
	waitUntil(t, "three consecutive terms of the expiry sweep", func() bool {
		h := holders(t, sinks, expireJob)
		for k := range h {
			if k >= from && len(h[k+1]) > 0 && len(h[k+2]) > 0 {
				return true
			}
		}
		return false
	})
	for k, who := range holders(t, sinks, expireJob) {
		if len(who) != 1 {
			t.Fatalf("term %d of the expiry sweep was held by consoles %v", k, who)
		}
	}
	mustMatchRecords(t, db, names, sinks)

	mustSkipWhileAnotherHolds(t, db, consoles, clk)
	mustTakeOver(t, consoles, sinks)
}

// mustSkipWhileAnotherHolds claims the next terms of the expiry sweep for
// a third node, then lets an impersonation expire: neither console ends it
// in those terms, and one does once they are past.
func mustSkipWhileAnotherHolds(t *testing.T, db *mongostore.DB, consoles []*console, clk *clock) {
	t.Helper()
	ctx := context.Background()
	d := mustExpireTerm(t, db)
	owner, manager := newClient(t, consoles[0].URL), newClient(t, consoles[1].URL)
	owner.mustLogin("owner@example.org")
	manager.mustLogin("manager@example.org")
	r := startImpersonation(manager, userID(t, owner, "ada@example.org"), "expires on a shared database")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	impID := r.JSON(t)["id"].(string)

	first := lease.TermOf(time.Now(), d) + 2 // a term ahead: no console can have claimed it
	for k := first; k <= first+1; k++ {
		if won, err := db.Leases().Claim(ctx, expireJob, k, "elsewhere", lease.TermEnd(k, d)); err != nil || !won {
			t.Fatalf("claim term %d for another node: %v, %v", k, won, err)
		}
	}
	// Until the first of them begins, and a while more: a sweep a console
	// began just before its term ended may still be running (terms bound
	// when a run starts, not when it finishes), and under load it can take
	// a moment.
	time.Sleep(time.Until(lease.TermEnd(first-1, d).Add(d / 2)))
	clk.Advance(31 * time.Minute)
	owner.mustLogin("owner@example.org")
	ended := func() []map[string]any {
		return events(t, owner, "impersonation="+impID+"&type="+standin.EventImpersonationEnded)
	}
	// Two terms in which another node holds the sweep: nobody here runs it.
	for time.Now().Before(lease.TermEnd(first+1, d).Add(-d / 5)) {
		if evs := ended(); len(evs) > 0 {
			t.Fatalf("the impersonation was ended while another node held the expiry sweep: %v", evs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitUntil(t, "the expired impersonation to end", func() bool { return len(ended()) > 0 })
	if evs := ended(); len(evs) != 1 || evs[0]["outcome"] != standin.CauseExpired {
		t.Fatalf("ended events: %v", evs)
	}
}

// mustExpireTerm reads the expiry sweep's term length off its lease
// records, each valid until its term's end.
func mustExpireTerm(t *testing.T, db *mongostore.DB) time.Duration {
	t.Helper()
	recs, err := db.Leases().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Job == expireJob {
			return time.Duration(r.Until.UnixNano() / (r.Term + 1))
		}
	}
	t.Fatalf("no lease record of %s: %v", expireJob, recs)
	return 0
}

// mustTakeOver stops the console that holds the latest term of the
// expiry sweep and waits until the other holds a later one.
func mustTakeOver(t *testing.T, consoles []*console, sinks []*logSink) {
	t.Helper()
	var latest int64
	var holder int
	for k, who := range holders(t, sinks, expireJob) {
		if k > latest {
			latest, holder = k, who[0]
		}
	}
	other := 1 - holder
	consoles[holder].Stop(t)
	waitUntil(t, "the other console to take the expiry sweep over", func() bool {
		return slices.ContainsFunc(sinks[other].heldTerms(t, expireJob), func(k int64) bool { return k > latest })
	})
	// The stopped console may have won the term after latest just before
	// it stopped, and gives back the term it stops in, which the other
	// may then take: those terms may name both; none after them names
	// the stopped one.
	for k, who := range holders(t, sinks, expireJob) {
		handedOver := k <= latest+1 && len(who) == 2
		if (len(who) != 1 && !handedOver) || k > latest+1 && who[0] != other {
			t.Fatalf("term %d, after console %d stopped in term %d, held by %v", k, holder, latest, who)
		}
	}
}

// mustMatchRecords checks the lease records in the database against the
// consoles' logs: each names the console that logged winning its term.
func mustMatchRecords(t *testing.T, db *mongostore.DB, names []string, sinks []*logSink) {
	t.Helper()
	recs, err := db.Leases().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, rec := range recs {
		i := slices.Index(names, rec.Holder)
		if rec.Holder == "elsewhere" {
			continue
		}
		if i < 0 {
			t.Fatalf("lease record %+v names no console of %v", rec, names)
		}
		if rec.Job == expireJob && !slices.Contains(sinks[i].heldTerms(t, expireJob), rec.Term) {
			// Its winner logs after inserting it: wait for the line.
			waitUntil(t, "the winner's log of its lease", func() bool {
				return slices.Contains(sinks[i].heldTerms(t, expireJob), rec.Term)
			})
		}
		if rec.Job == expireJob {
			found++
		}
	}
	if found == 0 || found > 3 {
		t.Fatalf("%d lease records of the expiry sweep, want the few the pruning keeps: %v", found, recs)
	}
}

// TestJoiningNodeKeepsHoldsOfStartsInFlight: a console starting on a
// database another console serves frees the impersonation holds an
// earlier stop left, but not those a start on the other console has just
// claimed and not yet written its impersonation for.
func TestJoiningNodeKeepsHoldsOfStartsInFlight(t *testing.T) {
	t.Parallel()
	db := dbtest.MustOpen(t)
	holds := dbtest.MustDriver(t, db).Collection("impersonation_holds")
	ctx := context.Background()
	fresh, stale := "actor:"+bson.NewObjectID().Hex(), "actor:"+bson.NewObjectID().Hex()
	for key, at := range map[string]time.Time{fresh: time.Now(), stale: time.Now().Add(-2 * time.Minute)} {
		if _, err := holds.InsertOne(ctx, bson.M{"_id": key, "impersonation_id": bson.NewObjectID().Hex(), "at": at}); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, server.Config{MongoURI: dbtest.MustServer(t).URI, Database: db.Name(), Logger: silent})
	left := map[string]bool{}
	for _, key := range []string{fresh, stale} {
		n, err := holds.CountDocuments(ctx, bson.M{"_id": key})
		if err != nil {
			t.Fatal(err)
		}
		left[key] = n == 1
	}
	if !left[fresh] {
		t.Error("the joining console freed the hold of a start in flight")
	}
	if left[stale] {
		t.Error("the joining console kept a hold an earlier stop left")
	}
}
