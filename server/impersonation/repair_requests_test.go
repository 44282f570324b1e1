package impersonation_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/impersonation"
	"standin/server/standin"
)

// fault is what a faultyLog does with an append.
type fault int

const (
	pass    fault = iota // appends it
	refuse               // stores nothing and fails, as a log that is down
	lostAck              // stores it and fails in doubt, as a reply lost on the way back
)

// faultyLog is an audit log whose appends a test decides, one call at a
// time, by the call's first event; hook may block to hold a call midway.
type faultyLog struct {
	*audit.Log
	hook func(*standin.Event) fault
}

func (l faultyLog) Append(ctx context.Context, evs ...*standin.Event) error {
	switch l.hook(evs[0]) {
	case refuse:
		return standin.Errorf(standin.EUnavailable, "The audit log is down (test).")
	case lostAck:
		if err := l.Log.Append(ctx, evs...); err != nil {
			return err
		}
		return &standin.Error{Code: standin.EUnavailable, Message: "The audit log did not answer (test).",
			Cause: fmt.Errorf("reply lost: %w", standin.ErrInDoubt)}
	}
	return l.Log.Append(ctx, evs...)
}

// faultyService is one node whose audit log appends as hook says.
func (f *facility) faultyService(t *testing.T, clk *clock, hook func(*standin.Event) fault) node {
	t.Helper()
	l, err := audit.Open(context.Background(), f.db.Events(), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	svc := impersonation.New(f.db, f.sessions, f.rbac, faultyLog{Log: l, hook: hook}, impersonation.Config{Now: clk.Now})
	return node{svc: svc, log: l}
}

// approvalsDecided counts request id's events that decided it approved
// (not those that only counted an approval).
func approvalsDecided(t *testing.T, l *audit.Log, id string) int {
	t.Helper()
	n := 0
	err := l.EventsMatching(context.Background(), standin.EventFilter{ImpersonationID: id, Type: standin.EventRequestApproved}, func(e *standin.Event) error {
		if e.Outcome == standin.RequestApproved {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// mustStored reads request id straight from the store.
func (f *facility) mustStored(t *testing.T, id string) *standin.AccessRequest {
	t.Helper()
	r, err := f.db.RequestByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestVotesCountOnceAudited: of two approvals a request needs, one whose
// event never reaches the log is not built on; the sweep drops a vote a
// crash left without its event (its approver may approve again), keeps
// one whose event is in the log, and then decides the request.
func TestVotesCountOnceAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	clk := &clock{}
	held, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	mode := pass
	a := f.faultyService(t, clk, func(e *standin.Event) fault {
		if e.Type != standin.EventRequestApproved {
			return pass
		}
		mu.Lock()
		m := mode
		mu.Unlock()
		if m == refuse {
			close(held)
			<-release
		}
		return m
	})
	b := f.service(t, clk)
	setMode := func(m fault) { mu.Lock(); mode = m; mu.Unlock() }
	f.mustSettings(t, b, standin.ModeRule{Scope: "project:" + f.project, Mode: standin.ModeApproval, Approvals: 2})
	maya, admin := f.signIn(t, f.maya), f.signIn(t, f.admin)
	counted := func(r *standin.AccessRequest) int {
		n := 0
		for _, v := range r.Votes {
			if v.Audited {
				n++
			}
		}
		return n
	}

	t.Run("UndoneVoteNotBuiltOn", func(t *testing.T) {
		_, r := f.mustRequest(t, b, f.sam)
		setMode(refuse)
		defer setMode(pass)
		mayaErr := make(chan error, 1)
		go func() { _, err := a.svc.Approve(ctx, maya, r.ID, "", origin); mayaErr <- err }()
		<-held
		// Maya's vote is stored; its event is being written (and will
		// fail) while the admin approves.
		got, err := b.svc.Approve(ctx, admin, r.ID, "", origin)
		close(release)
		if err != nil {
			t.Fatalf("the admin's approval: %v", err)
		}
		if st := got.Status(clk.Now()); st != standin.RequestPending {
			t.Fatalf("the request is %s on one audited approval (votes %+v)", st, got.Votes)
		}
		wantCode(t, <-mayaErr, standin.EUnavailable)
		stored := f.mustStored(t, r.ID)
		if stored.Outcome != nil || len(stored.Votes) != 1 || stored.Votes[0].By.ID != f.admin.ID {
			t.Fatalf("after Maya's approval was undone: outcome %+v, votes %+v", stored.Outcome, stored.Votes)
		}
		setMode(pass)
		got, err = a.svc.Approve(ctx, maya, r.ID, "again", origin)
		if err != nil {
			t.Fatalf("Maya approves again: %v", err)
		}
		if st := got.Status(clk.Now()); st != standin.RequestApproved || !got.Outcome.Audited {
			t.Fatalf("after two audited approvals: %s, %+v", st, got.Outcome)
		}
		if n := approvalsDecided(t, b.log, r.ID); n != 1 {
			t.Fatalf("%d events decided the approval, want 1", n)
		}
	})

	t.Run("CrashedVoteDropped", func(t *testing.T) {
		_, r := f.mustRequest(t, b, f.sam)
		// A crash between Maya's vote and its event.
		if k, _, err := f.db.AddVote(ctx, r.ID, standin.Vote{By: standin.EventUser{ID: f.maya.ID, Name: f.maya.Name}, At: clk.Now()}, 2); err != nil || k != 1 {
			t.Fatalf("AddVote = %d, %v", k, err)
		}
		got, err := b.svc.Approve(ctx, admin, r.ID, "", origin)
		if err != nil {
			t.Fatalf("the admin's approval: %v", err)
		}
		if st := got.Status(clk.Now()); st != standin.RequestPending {
			t.Fatalf("the request is %s on one audited approval", st)
		}
		if _, err := b.svc.ExpireRequests(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.mustStored(t, r.ID); len(got.Votes) != 2 {
			t.Fatalf("a vote repaired within the grace its own call has: %+v", got.Votes)
		}
		clk.Advance(3 * time.Minute)
		if _, err := b.svc.ExpireRequests(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.mustStored(t, r.ID); got.Outcome != nil || len(got.Votes) != 1 || counted(got) != 1 {
			t.Fatalf("after the sweep: outcome %+v, votes %+v", got.Outcome, got.Votes)
		}
		got, err = b.svc.Approve(ctx, maya, r.ID, "", origin)
		if err != nil {
			t.Fatalf("Maya approves again after the sweep dropped her vote: %v", err)
		}
		if got.Status(clk.Now()) != standin.RequestApproved || !got.Outcome.Audited || len(got.Votes) != 2 {
			t.Fatalf("after two audited approvals: %+v, votes %+v", got.Outcome, got.Votes)
		}
	})

	t.Run("LostReplyVoteKept", func(t *testing.T) {
		sam, r := f.mustRequest(t, b, f.sam)
		setMode(lostAck)
		_, err := a.svc.Approve(ctx, maya, r.ID, "", origin)
		setMode(pass)
		wantCode(t, err, standin.EUnavailable)
		got, err := b.svc.Approve(ctx, admin, r.ID, "", origin)
		if err != nil {
			t.Fatalf("the admin's approval: %v", err)
		}
		if st := got.Status(clk.Now()); st != standin.RequestPending {
			t.Fatalf("the request is %s while an approval is in doubt", st)
		}
		clk.Advance(3 * time.Minute)
		if _, err := b.svc.ExpireRequests(ctx); err != nil {
			t.Fatal(err)
		}
		got = f.mustStored(t, r.ID)
		if got.Status(clk.Now()) != standin.RequestApproved || !got.Outcome.Audited || counted(got) != 2 {
			t.Fatalf("after the sweep found Maya's event: outcome %+v, votes %+v", got.Outcome, got.Votes)
		}
		if n := approvalsDecided(t, b.log, r.ID); n != 1 {
			t.Fatalf("%d events decided the approval, want 1", n)
		}
		notes, _, err := f.db.Notifications(ctx, f.sam.ID, standin.Page{Limit: 1})
		if err != nil || len(notes) != 1 || notes[0].Title != "Request approved" {
			t.Fatalf("Sam's newest notification: %+v, %v", notes, err)
		}
		if _, err := b.svc.StartRequest(ctx, sam, r.ID, origin); err != nil {
			t.Fatalf("start after the sweep approved it: %v", err)
		}
	})
}

// TestTwoApproversAtOnce: two approvers of a request that needs two,
// approving at once on two nodes: both count, and exactly one event
// decides the request approved.
func TestTwoApproversAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	a, b := f.service(t, &clock{}), f.service(t, &clock{})
	f.mustSettings(t, a, standin.ModeRule{Scope: "project:" + f.project, Mode: standin.ModeApproval, Approvals: 2})
	maya, admin := f.signIn(t, f.maya), f.signIn(t, f.admin)
	apart := 0 // rounds where neither approval counted the other
	for round := range 8 {
		_, r := f.mustRequest(t, a, f.sam)
		var wg sync.WaitGroup
		var errA, errB error
		wg.Go(func() { _, errA = a.svc.Approve(ctx, maya, r.ID, "", origin) })
		wg.Go(func() { _, errB = b.svc.Approve(ctx, admin, r.ID, "", origin) })
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("round %d: approvals: %v, %v", round, errA, errB)
		}
		got := f.mustStored(t, r.ID)
		if got.Status(time.Now()) != standin.RequestApproved || !got.Outcome.Audited {
			t.Fatalf("round %d: after both approvals: %+v", round, got.Outcome)
		}
		if n := approvalsDecided(t, a.log, r.ID); n != 1 {
			t.Fatalf("round %d: %d events decided the approval, want 1", round, n)
		}
		if requestEvents(t, a.log, r.ID)[standin.EventRequestApproved] == 3 {
			apart++
		}
	}
	t.Logf("%d of 8 rounds decided by an event of its own", apart)
}

// TestRequestCreationRepair: a request whose creation a crash left
// without its event is seen by nobody and removed by the sweep; one whose
// event was written, but whose reply was lost, is kept and answered.
func TestRequestCreationRepair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	clk := &clock{}
	var mu sync.Mutex
	mode := pass
	a := f.faultyService(t, clk, func(e *standin.Event) fault {
		mu.Lock()
		defer mu.Unlock()
		if e.Type == standin.EventRequestCreated {
			return mode
		}
		return pass
	})
	f.mustSettings(t, a, standin.ModeRule{Scope: "role:user", Mode: standin.ModeConsent})

	now := clk.Now().UTC()
	lost := &standin.AccessRequest{ActorID: f.sam.ID, ActorName: f.sam.Name, SubjectID: f.ben.ID, SubjectName: f.ben.Name, SubjectRole: f.ben.Role,
		Reason: "crashed", Minutes: 20, Mode: standin.ModeConsent, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if err := f.db.CreateRequest(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Request(ctx, f.sam, lost.ID); standin.ErrorCode(err) != standin.ENotFound {
		t.Fatalf("a request without its event, to its actor: %v", err)
	}
	_, err := a.svc.Approve(ctx, f.signIn(t, f.ben), lost.ID, "", origin)
	wantCode(t, err, standin.ENotFound)

	mu.Lock()
	mode = lostAck
	mu.Unlock()
	_, err = a.svc.Start(ctx, f.signIn(t, f.tess), impersonation.Request{UserID: f.ben.ID, Reason: "reply lost", Minutes: 20}, origin)
	mu.Lock()
	mode = pass
	mu.Unlock()
	wantCode(t, err, standin.EUnavailable)
	var kept *standin.AccessRequest
	if err := a.log.EventsMatching(ctx, standin.EventFilter{Type: standin.EventRequestCreated, ActorID: f.tess.ID}, func(e *standin.Event) error {
		kept = &standin.AccessRequest{ID: e.ImpersonationID}
		return nil
	}); err != nil || kept == nil {
		t.Fatalf("the event of Tess's request: %v", err)
	}

	clk.Advance(3 * time.Minute)
	if _, err := a.svc.ExpireRequests(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.RequestByID(ctx, lost.ID); standin.ErrorCode(err) != standin.ENotFound {
		t.Fatalf("a request without its event after the sweep: %v", err)
	}
	got, err := a.svc.Request(ctx, f.tess, kept.ID)
	if err != nil {
		t.Fatalf("a request whose event is in the log, after the sweep: %v", err)
	}
	if got.Status(clk.Now()) != standin.RequestPending {
		t.Fatalf("Tess's request is %s", got.Status(clk.Now()))
	}
	if _, err := a.svc.Approve(ctx, f.signIn(t, f.ben), kept.ID, "", origin); err != nil {
		t.Fatalf("Ben answers Tess's request: %v", err)
	}
	listed, err := a.svc.Requests(ctx, f.sam)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 0 {
		t.Fatalf("Sam's requests: %d, want none", len(listed))
	}
}

// TestSettingsVersionRepair: a settings version a crash left without its
// event is not in force, and once the sweep finds no event for it, the
// next change takes its number; a version whose event was written, but
// whose reply was lost, comes into force once the sweep finds its event.
func TestSettingsVersionRepair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	clk := &clock{}
	var mu sync.Mutex
	mode := pass
	a := f.faultyService(t, clk, func(e *standin.Event) fault {
		mu.Lock()
		defer mu.Unlock()
		if e.Type == standin.EventSettingsChanged {
			return mode
		}
		return pass
	})
	admin := f.signIn(t, f.admin)
	cur, err := a.svc.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A crash between the version and its event.
	crashed := cur.Clone()
	crashed.Version, crashed.RequestMinutes, crashed.ChangedAt = cur.Version+1, 42, clk.Now().UTC()
	crashed.ChangedBy = standin.EventUser{ID: f.admin.ID, Name: f.admin.Name}
	if err := f.db.SaveImpersonationSettings(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	got, err := a.svc.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != cur.Version || got.RequestMinutes == 42 {
		t.Fatalf("settings in force: version %d, %d min: an unaudited version applies", got.Version, got.RequestMinutes)
	}
	next := cur.Clone()
	next.RequestMinutes = 15
	_, err = a.svc.ChangeSettings(ctx, admin, next, []string{f.project}, origin)
	wantCode(t, err, standin.EConflict) // it may still be its own call's

	clk.Advance(3 * time.Minute)
	if _, err := a.svc.ExpireRequests(ctx); err != nil {
		t.Fatal(err)
	}
	changed, err := a.svc.ChangeSettings(ctx, admin, next, []string{f.project}, origin)
	if err != nil {
		t.Fatalf("a change after the sweep removed the unaudited version: %v", err)
	}
	if changed.Version != cur.Version+1 || changed.RequestMinutes != 15 {
		t.Fatalf("the change: %+v", changed)
	}

	// The event is written, the reply lost.
	mu.Lock()
	mode = lostAck
	mu.Unlock()
	next = changed.Clone()
	next.RequestMinutes = 25
	_, err = a.svc.ChangeSettings(ctx, admin, next, []string{f.project}, origin)
	mu.Lock()
	mode = pass
	mu.Unlock()
	wantCode(t, err, standin.EUnavailable)
	clk.Advance(3 * time.Minute)
	if _, err := a.svc.ExpireRequests(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = a.svc.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != changed.Version+1 || got.RequestMinutes != 25 {
		t.Fatalf("settings in force after the sweep found the event: version %d, %d min", got.Version, got.RequestMinutes)
	}
	n := 0
	if err := a.log.EventsMatching(ctx, standin.EventFilter{Type: standin.EventSettingsChanged}, func(*standin.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d settings.changed events, want 2", n)
	}
}
