package alerts_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"standin/server/alerts"
	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

type fixture struct {
	db   *mongostore.DB
	log  *audit.Log
	sam  *standin.User // support, the agent
	ada  *standin.User // user
	tess *standin.User // support, a privileged target
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	l, err := audit.Open(ctx, db.Events(), audit.Config{Window: 10000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	f := &fixture{db: db, log: l}
	for _, u := range []**standin.User{&f.sam, &f.ada, &f.tess} {
		*u = &standin.User{PasswordHash: "x", Status: standin.StatusActive}
	}
	f.sam.Name, f.sam.Email, f.sam.Role = "Sam", "sam@example.org", standin.RoleSupport
	f.ada.Name, f.ada.Email, f.ada.Role = "Ada", "ada@example.org", standin.RoleUser
	f.tess.Name, f.tess.Email, f.tess.Role = "Tess", "tess@example.org", standin.RoleSupport
	for _, u := range []*standin.User{f.sam, f.ada, f.tess} {
		if err := db.EnsureUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// weekday10 is the most recent weekday at 10:00 UTC, in the facility's
// hours; saturday10 the most recent Saturday at 10:00, outside them.
func weekday10() time.Time {
	d := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	for d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = d.Add(-24 * time.Hour)
	}
	return d.Add(10 * time.Hour)
}

func saturday10() time.Time {
	d := time.Now().UTC().Truncate(24 * time.Hour)
	for d.Weekday() != time.Saturday {
		d = d.Add(-24 * time.Hour)
	}
	return d.Add(10 * time.Hour)
}

// start appends the start of session id of actor as subject at t.
func (f *fixture) start(t *testing.T, id string, actor, subject *standin.User, at time.Time) {
	t.Helper()
	if err := f.log.Append(context.Background(), &standin.Event{Type: standin.EventImpersonationStarted, Time: at,
		Actor: standin.EventUser{ID: actor.ID, Name: actor.Name}, Subject: standin.EventUser{ID: subject.ID, Name: subject.Name},
		ImpersonationID: id, Action: "impersonation.start", Outcome: "started"}); err != nil {
		t.Fatal(err)
	}
}

// refuse appends a refusal in session id at t.
func (f *fixture) refuse(t *testing.T, id string, at time.Time) {
	t.Helper()
	if err := f.log.Append(context.Background(), &standin.Event{Type: standin.EventActionDenied, Time: at,
		Actor: standin.EventUser{ID: f.sam.ID, Name: f.sam.Name}, Subject: standin.EventUser{ID: f.ada.ID, Name: f.ada.Name},
		ImpersonationID: id, Action: "booking.create", Outcome: "denied"}); err != nil {
		t.Fatal(err)
	}
}

// raised counts the alert.raised events by rule.
func (f *fixture) raised(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := f.log.EventsMatching(context.Background(), standin.EventFilter{Type: standin.EventAlertRaised}, func(e *standin.Event) error {
		out[e.Outcome]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) evaluator() *alerts.Evaluator {
	return alerts.New(alerts.Config{Store: f.db, Log: f.log, Leases: nil})
}

// TestRulesRaiseOnce: each rule's condition raises one alert, however
// many events meet it and however many evaluators (a restart, a second
// node) read the log; a session within the rules raises none.
func TestRulesRaiseOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ev := f.evaluator()
	turn := func(e *alerts.Evaluator) {
		t.Helper()
		if err := e.Turn(ctx); err != nil {
			t.Fatal(err)
		}
	}

	f.start(t, "s-ok", f.sam, f.ada, weekday10())
	turn(ev)
	if got := f.raised(t); len(got) != 0 {
		t.Fatalf("a session within the rules raised %v", got)
	}

	f.start(t, "s-saturday", f.sam, f.ada, saturday10())
	f.start(t, "s-tess", f.sam, f.tess, weekday10())
	base := weekday10().Add(time.Hour)
	for i := range 12 {
		f.refuse(t, "s-ok", base.Add(time.Duration(i)*time.Minute))
	}
	turn(ev)
	// Sam started sessions many times within an hour, on Ada mostly.
	for i := range 11 {
		f.start(t, fmt.Sprintf("s-many-%d", i), f.sam, f.ada, base.Add(time.Duration(i)*time.Minute))
	}
	turn(ev)
	turn(alerts.New(alerts.Config{Store: f.db, Log: f.log})) // another node, or a restart
	turn(ev)

	want := map[string]int{standin.RuleOffHours: 1, standin.RulePrivilegedTarget: 1, standin.RuleRefusals: 1,
		standin.RuleAgentStarts: 1, standin.RuleRepeatedTarget: 1}
	got := f.raised(t)
	for rule, n := range want {
		if got[rule] != n {
			t.Errorf("%s: %d alerts, want %d (all: %v)", rule, got[rule], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("alerts raised: %v", got)
	}
	list, err := f.db.Alerts(ctx, 100)
	if err != nil || len(list) != len(want) {
		t.Fatalf("stored alerts: %d %v", len(list), err)
	}
	for _, a := range list {
		if a.Seq == 0 || a.Words == "" {
			t.Fatalf("an alert without its event or words: %+v", a)
		}
	}
}

// TestLongSession: a session in force longer than the rule allows
// raises one alert.
func TestLongSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	now := time.Now()
	imp := &standin.Impersonation{ActorID: f.sam.ID, ActorName: f.sam.Name, SubjectID: f.ada.ID, SubjectName: f.ada.Name,
		Reason: "r", SessionID: "s", StartedAt: now.Add(-3 * time.Hour), ExpiresAt: now.Add(time.Hour)}
	if err := f.db.CreateImpersonation(ctx, imp); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.evaluator().Turn(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.raised(t); got[standin.RuleLongSession] != 1 || len(got) != 1 {
		t.Fatalf("alerts: %v", got)
	}
}

// scopeAll lets everyone list and acknowledge everything.
type scopeAll struct{}

func (scopeAll) Scope(context.Context, *standin.Principal, string, string, []string) (standin.Scope, error) {
	return standin.Scope{All: true}, nil
}

// TestAcknowledgeOnce: an alert is acknowledged once, with its note,
// audited; a second acknowledgment is refused.
func TestAcknowledgeOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.start(t, "s-tess", f.sam, f.tess, weekday10())
	if err := f.evaluator().Turn(ctx); err != nil {
		t.Fatal(err)
	}
	svc := alerts.NewService(f.db, f.log, scopeAll{}, nil)
	admin := &standin.Principal{Actor: f.sam, Subject: f.sam}
	list, err := svc.List(ctx, admin)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	a, err := svc.Acknowledge(ctx, admin, list[0].ID, "Tess asked for it", standin.Origin{})
	if err != nil || a.AckNote != "Tess asked for it" || a.AckedAt.IsZero() {
		t.Fatalf("acknowledge: %+v %v", a, err)
	}
	if _, err := svc.Acknowledge(ctx, admin, list[0].ID, "again", standin.Origin{}); standin.ErrorCode(err) != standin.EConflict {
		t.Fatalf("a second acknowledgment: %v", err)
	}
	n := 0
	_ = f.log.EventsMatching(ctx, standin.EventFilter{Type: standin.EventAlertAcknowledged}, func(e *standin.Event) error {
		if e.Reason != "Tess asked for it" || e.Object != "alert:"+list[0].ID {
			t.Errorf("acknowledgment event: %+v", e)
		}
		n++
		return nil
	})
	if n != 1 {
		t.Fatalf("%d acknowledgment events", n)
	}
}
