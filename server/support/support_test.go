package support_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"standin/server/access"
	"standin/server/access/accesstest"
	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/standin"
	"standin/server/support"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Ben, in NEURO, holds Laser Safety (ending in ten days) but not Confocal
// Basics: the overview says the confocal is blocked and why, that one
// training is missing and one expiring, which instruments need them, and
// lists the refusal and the session on his account and his coming
// booking, not his past one.
func TestOverview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	log, err := audit.Open(ctx, db.Events(), audit.Config{})
	must(t, err)
	t.Cleanup(func() { _ = log.Close(context.Background()) })
	now := time.Now().UTC().Truncate(time.Hour)

	neuro, cell := &standin.Project{Code: "NEURO", Name: "Neuro"}, &standin.Project{Code: "CELL", Name: "Cell"}
	must(t, db.EnsureProject(ctx, neuro))
	must(t, db.EnsureProject(ctx, cell))
	laser := &standin.Training{Name: "Laser Safety", ValidFor: 365 * 24 * time.Hour}
	basics := &standin.Training{Name: "Confocal Basics", ValidFor: 365 * 24 * time.Hour}
	other := &standin.Training{Name: "Cytometry", ValidFor: 365 * 24 * time.Hour}
	for _, tr := range []*standin.Training{laser, basics, other} {
		must(t, db.EnsureTraining(ctx, tr))
	}
	confocal := &standin.Resource{Name: "Confocal", Kind: "instrument", RequiredTrainings: []string{laser.ID, basics.ID},
		Rule: standin.AccessRule{Projects: []string{neuro.ID}}}
	scope := &standin.Resource{Name: "Scope", Kind: "instrument", RequiredTrainings: []string{laser.ID}}
	flow := &standin.Resource{Name: "Flow", Kind: "instrument", RequiredTrainings: []string{other.ID},
		Rule: standin.AccessRule{Projects: []string{cell.ID}}}
	for _, r := range []*standin.Resource{confocal, scope, flow} {
		must(t, db.EnsureResource(ctx, r))
	}
	ben := &standin.User{Name: "Ben", Email: "ben@example.org", PasswordHash: "x", Role: standin.RoleUser, Status: standin.StatusActive,
		Memberships: []standin.Membership{{ProjectID: neuro.ID, Role: standin.ProjectMember}},
		Trainings:   []standin.TrainingRecord{{TrainingID: laser.ID, CompletedAt: now.AddDate(-1, 0, 10), ExpiresAt: now.AddDate(0, 0, 10)}}}
	must(t, db.EnsureUser(ctx, ben))
	agent := &standin.User{Name: "Sam", Email: "sam@example.org", PasswordHash: "x", Role: standin.RoleSupport, Status: standin.StatusActive}
	must(t, db.EnsureUser(ctx, agent))

	imp := &standin.Impersonation{ActorID: agent.ID, ActorName: agent.Name, SubjectID: ben.ID, SubjectName: ben.Name,
		Reason: "confocal", StartedAt: now, ExpiresAt: now.Add(time.Hour)}
	must(t, db.CreateImpersonation(ctx, imp))
	p := &standin.Principal{Actor: agent, Subject: ben, Impersonation: imp}
	must(t, log.Append(ctx,
		p.EventOf(standin.EventImpersonationStarted, standin.Origin{}).Concerning("impersonation.start", "", "", "started", "confocal"),
		p.DecisionEvent("booking.create", "resource:"+confocal.ID, neuro.ID, standin.Decision{Reason: "needs Confocal Basics"}, standin.Origin{})))
	for _, start := range []time.Time{now.Add(-48 * time.Hour), now.Add(48 * time.Hour)} {
		b := &standin.Booking{ResourceID: scope.ID, UserID: ben.ID, ProjectID: neuro.ID, Start: start, End: start.Add(time.Hour), CreatedBy: ben.ID, CreatedAt: now}
		must(t, db.CreateBooking(ctx, b, func(*standin.Booking) error { return nil }))
	}

	svc := support.New(db, access.New(accesstest.Members{}, db, time.UTC, func() time.Time { return now }), log, func() time.Time { return now })
	o, err := svc.Overview(ctx, ben.ID)
	must(t, err)

	got := map[string]support.Access{}
	for _, a := range o.Access {
		got[a.Resource.Name] = a
	}
	if len(o.Access) != 2 || !got["Scope"].Bookable || got["Confocal"].Bookable || !strings.Contains(got["Confocal"].Reason, "Confocal Basics") {
		t.Errorf("access: %+v, want Scope bookable and Confocal blocked for Confocal Basics (Flow is CELL's)", o.Access)
	}
	states := map[string]support.TrainingState{}
	for _, s := range o.Trainings {
		states[s.Training.Name] = s
	}
	if len(o.Trainings) != 2 || states["Laser Safety"].State != support.TrainingExpiring || states["Confocal Basics"].State != support.TrainingMissing ||
		strings.Join(states["Laser Safety"].NeededFor, ",") != "Confocal,Scope" || strings.Join(states["Confocal Basics"].NeededFor, ",") != "Confocal" {
		t.Errorf("trainings: %+v", o.Trainings)
	}
	if len(o.Refusals) != 1 || o.Refusals[0].Reason != "needs Confocal Basics" {
		t.Errorf("refusals: %+v", o.Refusals)
	}
	if len(o.Sessions) != 1 || len(o.Running) != 1 || o.Running[0].ID != imp.ID {
		t.Errorf("sessions %+v, running %+v", o.Sessions, o.Running)
	}
	if len(o.Bookings) != 1 || !o.Bookings[0].Start.After(now) {
		t.Errorf("bookings: %+v, want the coming one only", o.Bookings)
	}
	if _, err := svc.Overview(ctx, "000000000000000000000000"); standin.ErrorCode(err) != standin.ENotFound {
		t.Errorf("an unknown user: %v", err)
	}
}
