package bookings_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"standin/server/access"
	"standin/server/access/accesstest"
	"standin/server/audit"
	"standin/server/bookings"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// auditLog is the real audit log, with a hook that can stand in for an
// append to make it fail.
type auditLog struct {
	*audit.Log
	mu   sync.Mutex
	hook func(ctx context.Context, evs []*standin.Event) error
}

func (l *auditLog) Append(ctx context.Context, evs ...*standin.Event) error {
	l.mu.Lock()
	hook := l.hook
	l.mu.Unlock()
	if hook != nil {
		return hook(ctx, evs)
	}
	return l.Log.Append(ctx, evs...)
}

// failNext makes the next appends answer with hook.
func (l *auditLog) failNext(hook func(ctx context.Context, evs []*standin.Event) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hook = hook
}

type fixture struct {
	db       *mongostore.DB
	audit    *auditLog
	svc      *bookings.Service
	ada      *standin.User
	agent    *standin.User
	project  *standin.Project
	resource *standin.Resource
	start    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	log, err := audit.Open(ctx, db.Events(), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Close(context.Background()) })
	p := &standin.Project{Code: "NEURO", Name: "Neuro"}
	if err := db.EnsureProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	r := &standin.Resource{Name: "Confocal", Kind: "instrument", Rule: standin.AccessRule{MaxHours: 2}}
	if err := db.EnsureResource(ctx, r); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, audit: &auditLog{Log: log}, project: p, resource: r,
		start: time.Now().UTC().Truncate(time.Hour).Add(48 * time.Hour)}
	f.ada = mustUser(t, db, "ada@example.org", standin.RoleUser, standin.Membership{ProjectID: p.ID, Role: standin.ProjectMember})
	f.agent = mustUser(t, db, "agent@example.org", standin.RoleAdmin)
	f.svc = bookings.New(db, access.New(accesstest.Members{}, db, time.UTC, nil), f.audit, bookings.Config{})
	return f
}

func mustUser(t *testing.T, db *mongostore.DB, email string, role standin.Role, ms ...standin.Membership) *standin.User {
	t.Helper()
	u := &standin.User{Name: "Test " + email, Email: email, PasswordHash: "x", Role: role, Status: standin.StatusActive, Memberships: ms}
	if err := db.EnsureUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// self is ada acting as herself; impersonated is the agent acting as ada.
func (f *fixture) self() *standin.Principal { return &standin.Principal{Actor: f.ada, Subject: f.ada} }

func (f *fixture) impersonated() *standin.Principal {
	return &standin.Principal{Actor: f.agent, Subject: f.ada, Impersonation: &standin.Impersonation{ID: "imp-1", ActorID: f.agent.ID, SubjectID: f.ada.ID}}
}

// request asks for the fixture's resource from startH to endH hours after
// its start time.
func (f *fixture) request(startH, endH float64) bookings.Request {
	at := func(h float64) time.Time { return f.start.Add(time.Duration(h * float64(time.Hour))) }
	return bookings.Request{ResourceID: f.resource.ID, ProjectID: f.project.ID, Start: at(startH), End: at(endH)}
}

var origin = standin.Origin{IP: "192.0.2.1", UserAgent: "test"}

// mustEvent returns the event of typ about a booking, or fails the test.
func (f *fixture) mustEvent(t *testing.T, typ, bookingID string) *standin.Event {
	t.Helper()
	ev, err := f.audit.ByObject(context.Background(), typ, "booking:"+bookingID)
	if err != nil {
		t.Fatalf("%s of booking %s: %v", typ, bookingID, err)
	}
	return ev
}

// status is where booking id stands in storage ("" when it is not
// visible: pending or gone).
func (f *fixture) status(t *testing.T, id string) standin.BookingStatus {
	t.Helper()
	b, err := f.db.BookingByID(context.Background(), id)
	if standin.ErrorCode(err) == standin.ENotFound {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Status
}

func TestCreateAndCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	for _, tt := range []struct {
		name  string
		as    func(*fixture) *standin.Principal
		actor func(*fixture) *standin.User
		imp   string
	}{
		{"OK", (*fixture).self, func(f *fixture) *standin.User { return f.ada }, ""},
		{"OKImpersonating", (*fixture).impersonated, func(f *fixture) *standin.User { return f.agent }, "imp-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p, actor := tt.as(f), tt.actor(f)
			b, r, err := f.svc.Create(ctx, p, f.request(0, 1.5), origin)
			if err != nil {
				t.Fatal(err)
			}
			if b.Status != standin.BookingConfirmed || b.UserID != f.ada.ID || b.CreatedBy != actor.ID || b.ImpersonationID != tt.imp || r.ID != f.resource.ID {
				t.Fatalf("booking %+v of %+v", b, r)
			}
			if got := f.status(t, b.ID); got != standin.BookingConfirmed {
				t.Fatalf("stored as %q", got)
			}
			ev := f.mustEvent(t, standin.EventBookingCreated, b.ID)
			wantReason := "Confocal, " + b.Start.Format(time.RFC3339) + " to " + b.End.Format(time.RFC3339)
			if ev.Action != "booking.create" || ev.Project != f.project.ID || ev.Outcome != "created" || ev.Reason != wantReason ||
				ev.Actor.ID != actor.ID || ev.Subject.ID != f.ada.ID || ev.ImpersonationID != tt.imp || ev.IP != origin.IP || ev.UserAgent != origin.UserAgent {
				t.Fatalf("created event %+v", ev)
			}

			cancelled, err := f.svc.Cancel(ctx, p, b, origin)
			if err != nil {
				t.Fatal(err)
			}
			if cancelled.Status != standin.BookingCancelled || cancelled.CancelledBy != actor.ID {
				t.Fatalf("cancelled %+v", cancelled)
			}
			ev = f.mustEvent(t, standin.EventBookingCancelled, b.ID)
			if ev.Action != "booking.cancel" || ev.Project != f.project.ID || ev.Outcome != "cancelled" || ev.Reason != "" ||
				ev.Actor.ID != actor.ID || ev.Subject.ID != f.ada.ID || ev.ImpersonationID != tt.imp {
				t.Fatalf("cancelled event %+v", ev)
			}
			if _, err := f.svc.Cancel(ctx, p, b, origin); standin.ErrorCode(err) != standin.EConflict {
				t.Fatalf("second cancel: %v, want %s", err, standin.EConflict)
			}
			if _, _, err := f.svc.Create(ctx, p, f.request(0, 1.5), origin); err != nil {
				t.Fatalf("the cancelled time is still taken: %v", err)
			}
		})
	}
}

func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)

	t.Run("ErrInvalid", func(t *testing.T) {
		past := f.request(0, 1)
		past.Start, past.End = past.Start.AddDate(-1, 0, 0), past.End.AddDate(-1, 0, 0)
		if _, _, err := f.svc.Create(ctx, f.self(), past, origin); standin.ErrorCode(err) != standin.EInvalid {
			t.Fatalf("in the past: %v", err)
		}
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(0.1, 1), origin); standin.ErrorCode(err) != standin.EInvalid {
			t.Fatalf("off the quarter hour: %v", err)
		}
	})
	t.Run("ErrUnknownResource", func(t *testing.T) {
		req := f.request(0, 1)
		req.ResourceID = "000000000000000000000000"
		if _, _, err := f.svc.Create(ctx, f.self(), req, origin); standin.ErrorCode(err) != standin.ENotFound {
			t.Fatalf("%v, want %s", err, standin.ENotFound)
		}
	})
	// The resource allows 2 hours: a refusal by its rules is audited
	// while impersonating, and only then.
	t.Run("ErrResourceRules", func(t *testing.T) {
		for _, p := range []*standin.Principal{f.self(), f.impersonated()} {
			_, _, err := f.svc.Create(ctx, p, f.request(0, 3), origin)
			e, ok := errors.AsType[*standin.Error](err)
			if !ok || e.Code != standin.EForbidden || e.Message != "This booking is not allowed." || e.Reason == "" {
				t.Fatalf("%v, want %s with a reason", err, standin.EForbidden)
			}
		}
		denied, _, err := f.audit.Query(ctx, standin.EventFilter{Type: standin.EventActionDenied}, standin.Page{})
		if err != nil || len(denied) != 1 {
			t.Fatalf("%d action.denied events, %v; want the impersonated one", len(denied), err)
		}
		ev := denied[0]
		req := f.request(0, 3)
		if ev.Action != "booking.create" || ev.Object != standin.SlotObject(f.resource.ID, req.Start, req.End) || ev.Project != f.project.ID || ev.Outcome != "denied" ||
			ev.Actor.ID != f.agent.ID || ev.Subject.ID != f.ada.ID || ev.ImpersonationID != "imp-1" || ev.Reason == "" {
			t.Fatalf("denied event %+v", ev)
		}
	})
	t.Run("ErrNotAMember", func(t *testing.T) {
		cleo := mustUser(t, f.db, "cleo@example.org", standin.RoleUser)
		p := &standin.Principal{Actor: cleo, Subject: cleo}
		if _, _, err := f.svc.Create(ctx, p, f.request(0, 1), origin); standin.ErrorCode(err) != standin.EForbidden {
			t.Fatalf("%v, want %s", err, standin.EForbidden)
		}
	})
	t.Run("ErrOverlap", func(t *testing.T) {
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(5, 6), origin); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(5.5, 6.5), origin); standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("%v, want %s", err, standin.EConflict)
		}
	})
}

// TestCommitRecord: a booking or a cancellation stands exactly when its
// audit event is stored.
func TestCommitRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down := standin.Errorf(standin.EUnavailable, "The audit log is down.")

	t.Run("ErrWithoutItsRecord", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		b, _, err := f.svc.Create(ctx, f.self(), f.request(0, 1), origin)
		if err != nil {
			t.Fatal(err)
		}
		f.audit.failNext(func(context.Context, []*standin.Event) error { return down })
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(1, 2), origin); standin.ErrorCode(err) != standin.EUnavailable {
			t.Fatalf("Create = %v, want the log's error", err)
		}
		if _, err := f.svc.Cancel(ctx, f.self(), b, origin); standin.ErrorCode(err) != standin.EUnavailable {
			t.Fatalf("Cancel = %v, want the log's error", err)
		}
		f.audit.failNext(nil)
		if got := f.status(t, b.ID); got != standin.BookingConfirmed {
			t.Fatalf("the booking whose cancellation failed is %q", got)
		}
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(1, 2), origin); err != nil {
			t.Fatalf("the failed booking left its time taken: %v", err)
		}
	})

	// The record is stored, then the request ends: the action stands and
	// is answered as done; Repair finishes its write.
	t.Run("RecordThenFailure", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		recordThenEnd := func(end context.CancelFunc) func(context.Context, []*standin.Event) error {
			return func(ctx context.Context, evs []*standin.Event) error {
				err := f.audit.Log.Append(ctx, evs...)
				end()
				return err
			}
		}
		rctx, end := context.WithCancel(ctx)
		f.audit.failNext(recordThenEnd(end))
		b, _, err := f.svc.Create(rctx, f.self(), f.request(0, 1), origin)
		if err != nil || b.Status != standin.BookingConfirmed {
			t.Fatalf("Create = %+v, %v; want it answered as confirmed", b, err)
		}
		if got := f.status(t, b.ID); got != "" {
			t.Fatalf("before the repair the booking is %q; want it pending", got)
		}
		f.audit.failNext(nil)
		if err := f.svc.Repair(ctx); err != nil || f.status(t, b.ID) != standin.BookingConfirmed {
			t.Fatalf("after Repair (%v) the booking is %q", err, f.status(t, b.ID))
		}

		rctx, end = context.WithCancel(ctx)
		f.audit.failNext(recordThenEnd(end))
		cancelled, err := f.svc.Cancel(rctx, f.self(), b, origin)
		if err != nil || cancelled.Status != standin.BookingCancelled || cancelled.CancelledBy != f.ada.ID {
			t.Fatalf("Cancel = %+v, %v; want it answered as cancelled", cancelled, err)
		}
		f.audit.failNext(nil)
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(0, 1), origin); standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("before the repair the cancelled time is %v; want still held", err)
		}
		if err := f.svc.Repair(ctx); err != nil || f.status(t, b.ID) != standin.BookingCancelled {
			t.Fatalf("after Repair (%v) the booking is %q", err, f.status(t, b.ID))
		}
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(0, 1), origin); err != nil {
			t.Fatalf("after the repair the cancelled time is still taken: %v", err)
		}
	})

	// An append in doubt is neither undone nor reported done: the repair
	// settles the log and decides by the record, and leaves a booking
	// without one to its cutoff.
	t.Run("InDoubtDecidedByTheLog", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		inDoubt := &standin.Error{Code: standin.EUnavailable, Message: "in doubt", Cause: standin.ErrInDoubt}
		f.audit.failNext(func(ctx context.Context, evs []*standin.Event) error {
			if err := f.audit.Log.Append(ctx, evs...); err != nil {
				return err
			}
			return inDoubt
		})
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(0, 1), origin); !errors.Is(err, standin.ErrInDoubt) {
			t.Fatalf("Create = %v, want the log's doubt", err)
		}
		f.audit.failNext(func(context.Context, []*standin.Event) error { return inDoubt })
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(1, 2), origin); !errors.Is(err, standin.ErrInDoubt) {
			t.Fatalf("Create = %v, want the log's doubt", err)
		}
		f.audit.failNext(nil)
		if err := f.svc.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		list, _, err := f.db.Bookings(ctx, standin.BookingFilter{}, standin.Page{})
		if err != nil || len(list) != 1 || !list[0].Start.Equal(f.request(0, 1).Start) || list[0].Status != standin.BookingConfirmed {
			t.Fatalf("after the repair: %d bookings, %v; want the recorded one confirmed", len(list), err)
		}
		f.mustEvent(t, standin.EventBookingCreated, list[0].ID)
		// The unrecorded one is young: it keeps its time for now.
		if _, _, err := f.svc.Create(ctx, f.self(), f.request(1, 2), origin); standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("a booking in doubt does not hold its time: %v", err)
		}
	})
}
