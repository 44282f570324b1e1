package impersonation_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/impersonation"
	"standin/server/standin"
)

// watches is the moderators' watches as every node sees them at once:
// the presence the server relays between nodes, without its delay.
type watches struct {
	mu sync.Mutex
	on map[string]map[[2]string]standin.EventUser // by session, by moderator and page
}

func (w *watches) Watch(id, view string, m *standin.User) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on == nil {
		w.on = map[string]map[[2]string]standin.EventUser{}
	}
	if w.on[id] == nil {
		w.on[id] = map[[2]string]standin.EventUser{}
	}
	w.on[id][[2]string{m.ID, view}] = standin.EventUser{ID: m.ID, Name: m.Name}
}

func (w *watches) Unwatch(id, moderatorID, view string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.on[id], [2]string{moderatorID, view})
}

func (w *watches) Watching(id string) []standin.EventUser {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []standin.EventUser
	for _, u := range w.on[id] {
		out = append(out, u)
	}
	return out
}

func (w *watches) Watches(id, moderatorID, view string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.on[id][[2]string{moderatorID, view}]
	return ok
}

// moderatedNode is one node whose log appends as hook says (nil: all),
// sharing the watches w.
func (f *facility) moderatedNode(t *testing.T, clk *clock, w *watches, hook func(*standin.Event) fault) node {
	t.Helper()
	l, err := audit.Open(context.Background(), f.db.Events(), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	if hook == nil {
		hook = func(*standin.Event) fault { return pass }
	}
	svc := impersonation.New(f.db, f.sessions, f.rbac, faultyLog{Log: l, hook: hook}, impersonation.Config{Now: clk.Now, Moderation: w})
	return node{svc: svc, log: l}
}

// mustModerated has Sam start a moderated session on Ben through n.
func (f *facility) mustModerated(t *testing.T, n node) *standin.Impersonation {
	t.Helper()
	f.mustSettings(t, n, standin.ModeRule{Scope: "role:user", Mode: standin.ModeModerated})
	started, err := n.svc.Start(context.Background(), f.signIn(t, f.sam), impersonation.Request{UserID: f.ben.ID, Reason: "Ben's bookings vanish"}, origin)
	if err != nil {
		t.Fatalf("a moderated start: %v", err)
	}
	imp := started.Impersonation
	if imp == nil || !imp.Moderated || !n.svc.Paused(imp) {
		t.Fatalf("the start: %+v", started)
	}
	return imp
}

// steps lists the session's pauses and resumptions in the log, in order.
func steps(t *testing.T, l *audit.Log, id string) []*standin.Event {
	t.Helper()
	var out []*standin.Event
	err := l.EventsMatching(context.Background(), standin.EventFilter{ImpersonationID: id}, func(e *standin.Event) error {
		if e.Type == standin.EventImpersonationPaused || e.Type == standin.EventImpersonationResumed {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantSteps checks that the log holds steps 1 to n of session id, each
// once, alternating from a resumption.
func wantSteps(t *testing.T, l *audit.Log, id string, n int) {
	t.Helper()
	got := steps(t, l, id)
	keys := make([]string, 0, len(got))
	for i, e := range got {
		keys = append(keys, e.Object)
		want := standin.EventImpersonationResumed
		if i%2 == 1 {
			want = standin.EventImpersonationPaused
		}
		if e.Type != want || e.Object != fmt.Sprintf("moderation:%s:%d", id, i+1) {
			t.Fatalf("step %d is %s %s, want %s moderation:%s:%d (all: %v)", i+1, e.Type, e.Object, want, id, i+1, keys)
		}
	}
	if len(got) != n {
		t.Fatalf("%d steps in the log, want %d: %v", len(got), n, keys)
	}
}

// TestModerationStepsOnce: two nodes that both run the moderation job
// (as two holders of overlapping lease terms may), each with its own
// clock, racing the step a moderator's page takes as it comes or goes,
// write each pause and resumption exactly once, and the session refuses
// its actor whenever nobody watches.
func TestModerationStepsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	w := &watches{}
	a := f.moderatedNode(t, &clock{}, w, nil)
	skewed := &clock{}
	skewed.Advance(300 * time.Millisecond)
	b := f.moderatedNode(t, skewed, w, nil)
	imp := f.mustModerated(t, a)

	maya := f.signIn(t, f.maya)
	for round := 1; round <= 10; round++ {
		// The page's watch (which takes its step at once) races the
		// owners' turns on both nodes.
		var wg sync.WaitGroup
		wg.Go(func() {
			if round%2 == 1 {
				if _, err := b.svc.WatchSession(ctx, maya, imp.ID, "page"); err != nil {
					t.Errorf("round %d: watch: %v", round, err)
				}
			} else {
				a.svc.UnwatchSession(ctx, maya, imp.ID, "page")
			}
		})
		for _, n := range []node{a, b, a} {
			wg.Go(func() {
				if _, err := n.svc.Moderate(ctx); err != nil {
					t.Errorf("round %d: moderate: %v", round, err)
				}
			})
		}
		wg.Wait()
		if paused := a.svc.Paused(imp); paused != (round%2 == 0) {
			t.Fatalf("round %d: paused = %v", round, paused)
		}
		// A turn that met the other's claim learns the step from the
		// log on its next turn: one more each settles both.
		for _, n := range []node{a, b} {
			if _, err := n.svc.Moderate(ctx); err != nil {
				t.Fatalf("round %d: moderate: %v", round, err)
			}
		}
		wantSteps(t, a.log, imp.ID, round)
	}
	resumed := steps(t, a.log, imp.ID)[0]
	if resumed.Reason != "Moderated by "+f.maya.Name+"." || resumed.Actor.ID != f.sam.ID || !slices.Contains(resumed.Projects, f.project) {
		t.Fatalf("a resumption: %+v", resumed)
	}
}

// TestModerationStepRepair: a moderator's coming and going takes its step
// at once; a step whose event the log refused is given back and taken
// again by the owner; one whose event was stored with its reply lost is
// learned from the log, not written twice; a claim a stopped node left
// without its event is given back after stepGrace; and a session paused
// for longer than the grace period ends as moderator_absent.
func TestModerationStepRepair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	w := &watches{}
	clk := &clock{}
	var mu sync.Mutex
	next := pass
	n := f.moderatedNode(t, clk, w, func(e *standin.Event) fault {
		mu.Lock()
		defer mu.Unlock()
		if e.Type != standin.EventImpersonationPaused && e.Type != standin.EventImpersonationResumed {
			return pass
		}
		f := next
		next = pass
		return f
	})
	set := func(f fault) {
		mu.Lock()
		next = f
		mu.Unlock()
	}
	imp := f.mustModerated(t, n)
	maya := f.signIn(t, f.maya)
	moderate := func(times int) {
		t.Helper()
		for range times {
			if _, err := n.svc.Moderate(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Refused: the watch holds, nothing is written, and the owner's turn
	// takes the step again.
	set(refuse)
	if _, err := n.svc.WatchSession(ctx, maya, imp.ID, "page"); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, n.log, imp.ID, 0)
	moderate(1)
	wantSteps(t, n.log, imp.ID, 1)

	// Stored, reply lost: learned from the log, not written again.
	set(lostAck)
	n.svc.UnwatchSession(ctx, maya, imp.ID, "page")
	moderate(2)
	wantSteps(t, n.log, imp.ID, 2)

	// A node stopped between its claim of step 3 and its event.
	if won, err := f.db.Claim(ctx, fmt.Sprintf("moderation:%s:3", imp.ID), clk.Now()); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	if _, err := n.svc.WatchSession(ctx, maya, imp.ID, "page"); err != nil {
		t.Fatal(err)
	}
	moderate(2)
	wantSteps(t, n.log, imp.ID, 2)
	clk.Advance(2 * time.Minute)
	moderate(2)
	wantSteps(t, n.log, imp.ID, 3)

	// Maya leaves for good: paused, then ended after the grace.
	n.svc.UnwatchSession(ctx, maya, imp.ID, "page")
	wantSteps(t, n.log, imp.ID, 4)
	clk.Advance(time.Duration(standin.DefaultGraceSeconds-1) * time.Second)
	if _, err := n.svc.Moderate(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.ImpersonationByID(ctx, imp.ID); !got.EndedAt.IsZero() {
		t.Fatalf("ended within the grace: %+v", got)
	}
	clk.Advance(2 * time.Second)
	if _, err := n.svc.Moderate(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.ImpersonationByID(ctx, imp.ID)
	if err != nil || got.Cause != standin.CauseModeratorAbsent {
		t.Fatalf("after the grace: %+v %v", got, err)
	}
	if _, err := n.svc.WatchSession(ctx, maya, imp.ID, "again"); standin.ErrorCode(err) != standin.EConflict {
		t.Fatalf("watching an ended session: %v", err)
	}
}

// TestModerationViewFollowsOtherNodes: how a paused session stands, as a
// node that is not the owner answers it, follows the pauses other nodes
// wrote since it last answered.
func TestModerationViewFollowsOtherNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustFacility(t)
	w := &watches{}
	later := &clock{}
	a := f.moderatedNode(t, later, w, nil)
	b := f.moderatedNode(t, &clock{}, w, nil)
	imp := f.mustModerated(t, a)
	v, err := b.svc.Moderation(ctx, imp)
	if err != nil || !v.Paused || v.EndsAt.After(imp.StartedAt.Add(5*time.Minute)) {
		t.Fatalf("waiting for its first moderator: %+v %v", v, err)
	}
	// Maya comes and goes through a, whose clock is ten minutes on.
	later.Advance(10 * time.Minute)
	maya := f.signIn(t, f.maya)
	if _, err := a.svc.WatchSession(ctx, maya, imp.ID, "page"); err != nil {
		t.Fatal(err)
	}
	a.svc.UnwatchSession(ctx, maya, imp.ID, "page")
	wantSteps(t, a.log, imp.ID, 2)
	v, err = b.svc.Moderation(ctx, imp)
	if err != nil || !v.Paused || !v.EndsAt.After(imp.StartedAt.Add(5*time.Minute)) {
		t.Fatalf("after a pause written by another node, the session ends at %v (started %v): %v", v.EndsAt, imp.StartedAt, err)
	}
}
