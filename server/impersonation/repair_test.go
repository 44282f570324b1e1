package impersonation_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/impersonation"
	"standin/server/mongostore"
	"standin/server/standin"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// node is one server's impersonation service over a shared database, with
// its own audit log writer and clock.
type node struct {
	svc *impersonation.Service
	log *audit.Log
}

type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func mustNode(t *testing.T, db *mongostore.DB, clk *clock) node {
	t.Helper()
	l, err := audit.Open(context.Background(), db.Events(), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return node{svc: impersonation.New(db, nil, nil, l, impersonation.Config{Now: clk.Now}), log: l}
}

func mustUser(t *testing.T, db *mongostore.DB, email string, role standin.Role) *standin.User {
	t.Helper()
	u := &standin.User{Name: "Test " + email, Email: email, PasswordHash: "x", Role: role, Status: standin.StatusActive}
	if err := db.EnsureUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// mustEnded stores an impersonation of subject by actor and ends it in
// storage only, as a request does just before it writes the end's event.
func mustEnded(t *testing.T, db *mongostore.DB, actor, subject *standin.User, at time.Time) *standin.Impersonation {
	t.Helper()
	ctx := context.Background()
	imp := &standin.Impersonation{ActorID: actor.ID, ActorName: actor.Name, SubjectID: subject.ID, SubjectName: subject.Name,
		Reason: "repair", StartedAt: at.Add(-time.Minute), ExpiresAt: at.Add(time.Hour)}
	if err := db.CreateImpersonation(ctx, imp); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EndImpersonation(ctx, imp.ID, standin.CauseRevoked, actor, at); err != nil {
		t.Fatal(err)
	}
	return imp
}

func endEvents(t *testing.T, l *audit.Log, impID string) int {
	t.Helper()
	n := 0
	err := l.EventsMatching(context.Background(), standin.EventFilter{ImpersonationID: impID, Type: standin.EventImpersonationEnded},
		func(*standin.Event) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOneEndEventPerImpersonation: the repair of unaudited ends never
// writes an end that its own request is still writing, nor one already in
// the log, and of several nodes repairing at once only one writes it.
func TestOneEndEventPerImpersonation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	clk := &clock{}
	a, b := mustNode(t, db, clk), mustNode(t, db, clk)
	agent := mustUser(t, db, "agent@example.org", standin.RoleAdmin)
	ben := mustUser(t, db, "ben@example.org", standin.RoleUser)
	cleo := mustUser(t, db, "cleo@example.org", standin.RoleUser)

	fresh := mustEnded(t, db, agent, ben, clk.Now())
	t.Run("LeftToItsRequestWithinTheGrace", func(t *testing.T) {
		if n, err := a.svc.RepairEnds(ctx); err != nil || n != 0 {
			t.Fatalf("RepairEnds = %d, %v: it wrote an end its own request is still writing", n, err)
		}
		if n := endEvents(t, a.log, fresh.ID); n != 0 {
			t.Fatalf("%d end events within the grace", n)
		}
	})

	// cleo's end reached the log, but the mark that says so did not.
	written := mustEnded(t, db, agent, cleo, clk.Now())
	ev := &standin.Event{Type: standin.EventImpersonationEnded, ImpersonationID: written.ID, Outcome: standin.CauseRevoked,
		Actor: standin.EventUser{ID: agent.ID}, Subject: standin.EventUser{ID: cleo.ID}}
	if err := a.log.Append(ctx, ev); err != nil {
		t.Fatal(err)
	}

	clk.Advance(3 * time.Minute)
	t.Run("ExactlyOnceAcrossNodes", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, n := range []node{a, b, a, b} {
			wg.Go(func() {
				if _, err := n.svc.RepairEnds(ctx); err != nil {
					t.Errorf("RepairEnds: %v", err)
				}
			})
		}
		wg.Wait()
		if n := endEvents(t, a.log, fresh.ID); n != 1 {
			t.Fatalf("%d end events for one end", n)
		}
		if n := endEvents(t, a.log, written.ID); n != 1 {
			t.Fatalf("%d end events for an end already in the log", n)
		}
		left, err := db.UnauditedEnds(ctx, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Fatalf("%d ends still unaudited after the repair", len(left))
		}
	})

	t.Run("ConcurrentEndsOneWinner", func(t *testing.T) {
		imp := &standin.Impersonation{ActorID: agent.ID, ActorName: agent.Name, SubjectID: ben.ID, SubjectName: ben.Name,
			Reason: "race", StartedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour)}
		if err := db.CreateImpersonation(ctx, imp); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, cause := range []string{standin.CauseRevoked, standin.CauseExpired, standin.CauseEndedByActor, standin.CauseRevoked} {
			wg.Go(func() {
				_, err := db.EndImpersonation(ctx, imp.ID, cause, agent, clk.Now())
				switch standin.ErrorCode(err) {
				case "":
					wins.Add(1)
				case standin.EConflict:
				default:
					t.Errorf("EndImpersonation: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d ends succeeded, want exactly one", wins.Load())
		}
	})
}
