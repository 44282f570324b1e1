package demo_test

import (
	"context"
	"os"
	"testing"
	"time"

	"standin/server/dbtest"
	"standin/server/demo"
	"standin/server/password"
	"standin/server/standin"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var cheap = password.Params{Time: 1, Memory: 1024, Threads: 1}

func TestSeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

	seeded, err := demo.Seed(ctx, db, "s3cret", cheap, now)
	if err != nil || !seeded {
		t.Fatalf("first Seed = %v, %v", seeded, err)
	}
	again, err := demo.Seed(ctx, db, "s3cret", cheap, now)
	if err != nil || again {
		t.Fatalf("second Seed = %v, %v; want no seeding", again, err)
	}
	if n, err := db.CountUsers(ctx); err != nil || n != 7 {
		t.Fatalf("%d users, %v; want 7", n, err)
	}

	projects, err := db.Projects(ctx)
	if err != nil || len(projects) != 2 || projects[0].Code != "CELL" || projects[1].Code != "NEURO" ||
		projects[1].Name != "Neuro Imaging" || projects[0].Name != "Cell Biology" {
		t.Fatalf("projects %+v, %v", projects, err)
	}
	cell, neuro := projects[0], projects[1]

	resources, err := db.Resources(ctx)
	if err != nil || len(resources) != 2 {
		t.Fatalf("resources %+v, %v", resources, err)
	}
	confocal, flow := resources[0], resources[1]
	if confocal.Name != "Confocal LSM 900" || flow.Name != "Flow Cytometer" {
		t.Fatalf("resource names %q, %q", confocal.Name, flow.Name)
	}
	if len(confocal.RequiredTrainings) != 2 || confocal.Rule.MaxHours != 4 ||
		len(confocal.Rule.Projects) != 1 || confocal.Rule.Projects[0] != neuro.ID {
		t.Fatalf("confocal %+v", confocal)
	}
	if len(confocal.Rule.Windows) != 5 {
		t.Fatalf("confocal windows %+v, want Monday to Friday", confocal.Rule.Windows)
	}
	for _, w := range confocal.Rule.Windows {
		if w.Day == time.Saturday || w.Day == time.Sunday || w.StartMinute != 8*60 || w.EndMinute != 20*60 {
			t.Fatalf("window %+v, want a weekday 08:00-20:00", w)
		}
	}
	if len(flow.RequiredTrainings) != 0 || len(flow.Rule.Projects) != 1 || flow.Rule.Projects[0] != cell.ID {
		t.Fatalf("flow cytometer %+v", flow)
	}

	tests := []struct {
		email     string
		role      standin.Role
		project   string
		projRole  standin.ProjectRole
		trainings int
	}{
		{"owner@example.org", standin.RoleOwner, "", "", 0},
		{"admin@example.org", standin.RoleAdmin, "", "", 0},
		{"support@example.org", standin.RoleSupport, "", "", 0},
		{"manager@example.org", standin.RoleManager, neuro.ID, standin.ProjectLead, 0},
		{"ada@example.org", standin.RoleUser, neuro.ID, standin.ProjectMember, 2},
		{"ben@example.org", standin.RoleUser, neuro.ID, standin.ProjectMember, 1},
		{"cleo@example.org", standin.RoleUser, cell.ID, standin.ProjectMember, 0},
	}
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			u, err := db.UserByEmail(ctx, tt.email)
			if err != nil {
				t.Fatal(err)
			}
			if u.Role != tt.role || !u.Active() || u.Name == "" {
				t.Fatalf("user %+v", u)
			}
			if err := password.Verify("s3cret", u.PasswordHash); err != nil {
				t.Fatalf("demo password does not verify: %v", err)
			}
			if tt.project == "" && len(u.Memberships) != 0 {
				t.Fatalf("memberships %+v, want none", u.Memberships)
			}
			if tt.project != "" && (len(u.Memberships) != 1 || u.Memberships[0].ProjectID != tt.project || u.Memberships[0].Role != tt.projRole) {
				t.Fatalf("memberships %+v", u.Memberships)
			}
			if len(u.Trainings) != tt.trainings {
				t.Fatalf("trainings %+v, want %d", u.Trainings, tt.trainings)
			}
			for _, rec := range u.Trainings {
				if !rec.ValidAt(now) {
					t.Fatalf("training %+v is not valid at seeding time", rec)
				}
			}
		})
	}

	// Ben has Laser Safety and lacks Confocal Basics: the classic case.
	ben, err := db.UserByEmail(ctx, "ben@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if ben.Trainings[0].TrainingID != confocal.RequiredTrainings[0] {
		t.Fatalf("Ben's training %s is not the confocal's first requirement (Laser Safety) %s",
			ben.Trainings[0].TrainingID, confocal.RequiredTrainings[0])
	}
}

func TestSeedLeavesADatabaseWithAccountsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	if err := db.EnsureUser(ctx, &standin.User{Name: "Real", Email: "real@lab.example", PasswordHash: "x", Role: standin.RoleOwner, Status: standin.StatusActive}); err != nil {
		t.Fatal(err)
	}
	seeded, err := demo.Seed(ctx, db, "demo", cheap, time.Now())
	if err != nil || seeded {
		t.Fatalf("Seed = %v, %v; want no seeding", seeded, err)
	}
	if _, err := db.UserByEmail(ctx, "owner@example.org"); standin.ErrorCode(err) != standin.ENotFound {
		t.Fatalf("a demo account was added to a database with accounts: %v", err)
	}
}

func TestSeedResumesAfterAnInterruption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	// A first run that stopped after starting and creating one account.
	if err := db.Mark(ctx, "demo_seeding"); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureUser(ctx, &standin.User{Name: "Olivia Owner", Email: "owner@example.org", PasswordHash: "x", Role: standin.RoleOwner, Status: standin.StatusActive}); err != nil {
		t.Fatal(err)
	}
	seeded, err := demo.Seed(ctx, db, "demo", cheap, time.Now())
	if err != nil || !seeded {
		t.Fatalf("Seed = %v, %v; want the interrupted seed completed", seeded, err)
	}
	if n, err := db.CountUsers(ctx); err != nil || n != 7 {
		t.Fatalf("%d users, %v; want 7", n, err)
	}
}
