package access_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"standin/server/access"
	"standin/server/dbtest"
	"standin/server/demo"
	"standin/server/mongostore"
	"standin/server/password"
	"standin/server/rbac"
	"standin/server/standin"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

type demoFacility struct {
	db        *mongostore.DB
	decider   *access.Decider
	users     map[string]*standin.User
	projects  map[string]string // code → id
	resources map[string]*standin.Resource
}

// mustDemo seeds the demo facility into a fresh database and builds the
// decider over it as the server does: the authorizer with the default
// policies, stored in the database.
func mustDemo(t testing.TB, now time.Time) *demoFacility {
	t.Helper()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	if _, err := demo.Seed(ctx, db, "demo", password.Params{Time: 1, Memory: 64, Threads: 1}, now.AddDate(0, -1, 0)); err != nil {
		t.Fatal(err)
	}
	a, err := rbac.New(ctx, db, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f := &demoFacility{db: db, decider: access.New(a, db, time.UTC, func() time.Time { return now }),
		users: map[string]*standin.User{}, projects: map[string]string{}, resources: map[string]*standin.Resource{}}
	all, err := db.AllUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range all {
		f.users[strings.TrimSuffix(u.Email, "@example.org")] = u
	}
	projects, err := db.Projects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range projects {
		f.projects[p.Code] = p.ID
	}
	resources, err := db.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resources {
		f.resources[r.Name] = r
	}
	return f
}

func as(u *standin.User) *standin.Principal { return &standin.Principal{Actor: u, Subject: u} }

func TestDecideOverTheDemoFacility(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f := mustDemo(t, now)
	mon := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	confocal, flow := f.resources["Confocal LSM 900"], f.resources["Flow Cytometer"]
	book := func(r *standin.Resource, start time.Time, hours float64) standin.Object {
		return standin.Object{Kind: standin.KindBooking, Resource: r, Start: start, End: start.Add(time.Duration(hours * float64(time.Hour)))}
	}

	tests := []struct {
		name    string
		who     string
		action  string
		obj     standin.Object
		project string
		allowed bool
		reason  string
	}{
		{"AdaBooksConfocalInNEURO", "ada", standin.ActCreate, book(confocal, mon, 2), "NEURO", true, ""},
		{"BenMissingConfocalBasics", "ben", standin.ActCreate, book(confocal, mon, 1), "NEURO", false, "Confocal Basics"},
		{"CleoNotANEUROMember", "cleo", standin.ActCreate, book(confocal, mon, 1), "NEURO", false, "membership"},
		{"AdaFiveHours", "ada", standin.ActCreate, book(confocal, mon, 5), "NEURO", false, "at most 4 hours"},
		{"AdaOnSunday", "ada", standin.ActCreate, book(confocal, mon.Add(-24*time.Hour), 1), "NEURO", false, "Monday to Friday"},
		{"AdaAt21", "ada", standin.ActCreate, book(confocal, mon.Add(12*time.Hour), 1), "NEURO", false, "21:00"},
		{"AdaFlowCytometerInNEURO", "ada", standin.ActCreate, book(flow, mon, 1), "NEURO", false, `"CELL"`},
		{"CleoFlowCytometerInCELL", "cleo", standin.ActCreate, book(flow, mon, 1), "CELL", true, ""},
		{"ManagerListsNEUROBookings", "manager", standin.ActList, standin.Object{Kind: standin.KindBookingProject}, "NEURO", true, ""},
		{"ManagerNotCELLBookings", "manager", standin.ActList, standin.Object{Kind: standin.KindBookingProject}, "CELL", false, "lead"},
		{"UserCancelsOwn", "ada", standin.ActCancel, standin.Object{Kind: standin.KindBookingOwn}, "NEURO", true, ""},
		{"UserNotSomeoneElses", "ben", standin.ActCancel, standin.Object{Kind: standin.KindBookingAny}, "NEURO", false, "lead"},
		{"SupportListsUsers", "support", standin.ActList, standin.Object{Kind: standin.KindUser}, "", true, ""},
		{"UserNotTheDirectory", "ada", standin.ActList, standin.Object{Kind: standin.KindUser}, "", false, `"support"`},
		{"AdminChangesPolicy", "admin", standin.ActUpdate, standin.Object{Kind: standin.KindPolicy}, "", true, ""},
		{"ManagerNotPolicy", "manager", standin.ActUpdate, standin.Object{Kind: standin.KindPolicy}, "", false, `"admin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			project := ""
			if tt.project != "" {
				project = f.projects[tt.project]
			}
			dec, err := f.decider.Decide(context.Background(), as(f.users[tt.who]), tt.action, tt.obj, project)
			if err != nil {
				t.Fatal(err)
			}
			if dec.Allowed != tt.allowed {
				t.Fatalf("allowed = %v (%s), want %v", dec.Allowed, dec.Reason, tt.allowed)
			}
			if dec.Reason == "" {
				t.Fatal("a decision without a reason")
			}
			if !strings.Contains(dec.Reason, tt.reason) {
				t.Fatalf("reason %q does not name %q", dec.Reason, tt.reason)
			}
		})
	}

	t.Run("BenWithAnExpiredTraining", func(t *testing.T) {
		t.Parallel()
		ben := *f.users["ben"]
		ben.Trainings = []standin.TrainingRecord{{TrainingID: confocal.RequiredTrainings[0],
			CompletedAt: time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)}}
		dec, err := f.decider.Decide(context.Background(), as(&ben), standin.ActCreate, book(confocal, mon, 1), f.projects["NEURO"])
		if err != nil {
			t.Fatal(err)
		}
		if dec.Allowed || !strings.Contains(dec.Reason, "Laser Safety") || !strings.Contains(dec.Reason, "expired 3 Jan 2026") {
			t.Fatalf("%+v", dec)
		}
	})

	t.Run("ImpersonationUsesTheSubjectOnly", func(t *testing.T) {
		t.Parallel()
		// An owner acting as Ben gets Ben's permissions, never the union.
		p := &standin.Principal{Actor: f.users["owner"], Subject: f.users["ben"]}
		for _, c := range []struct {
			action, kind, project string
		}{{standin.ActList, standin.KindUser, ""}, {standin.ActUpdate, standin.KindPolicy, ""}, {standin.ActList, standin.KindBookingProject, f.projects["NEURO"]}} {
			dec, err := f.decider.Decide(context.Background(), p, c.action, standin.Object{Kind: c.kind}, c.project)
			if err != nil || dec.Allowed {
				t.Errorf("as Ben, %s %s: %+v, %v", c.action, c.kind, dec, err)
			}
		}
		dec, err := f.decider.Decide(context.Background(), p, standin.ActCreate, book(confocal, mon, 1), f.projects["NEURO"])
		if err != nil || dec.Allowed || !strings.Contains(dec.Reason, "Confocal Basics") {
			t.Errorf("as Ben, booking the confocal: %+v, %v", dec, err)
		}
	})
}

func BenchmarkDecideBooking(b *testing.B) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f := mustDemo(b, now)
	mon := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	obj := standin.Object{Kind: standin.KindBooking, Resource: f.resources["Confocal LSM 900"], Start: mon, End: mon.Add(time.Hour)}
	p, project := as(f.users["ben"]), f.projects["NEURO"]
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if dec, err := f.decider.Decide(ctx, p, standin.ActCreate, obj, project); err != nil || dec.Allowed {
			b.Fatal(dec, err)
		}
	}
}

func TestScopeOverTheDemoFacility(t *testing.T) {
	t.Parallel()
	f := mustDemo(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	ctx := context.Background()
	neuro, cell := f.projects["NEURO"], f.projects["CELL"]
	tests := []struct {
		name     string
		who      string
		projects []string
		all      bool
		want     []string
	}{
		{"AdminEverywhere", "admin", nil, true, nil},
		{"ManagerTheirProject", "manager", []string{neuro, cell}, false, []string{neuro}},
		{"ManagerNoProjectsAsked", "manager", nil, false, []string{}},
		{"UserNowhere", "ben", []string{neuro, cell}, false, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := f.decider.Scope(ctx, as(f.users[tc.who]), standin.ActList, standin.KindActivity, tc.projects)
			if err != nil {
				t.Fatal(err)
			}
			if sc.All != tc.all || !slices.Equal(sc.Projects, tc.want) || sc.Global.Allowed != tc.all {
				t.Fatalf("scope %+v, want all=%v projects=%v", sc, tc.all, tc.want)
			}
			if sc.Empty() != (!tc.all && len(tc.want) == 0) {
				t.Fatalf("Empty() = %v for %+v", sc.Empty(), sc)
			}
			if !tc.all && sc.Global.Reason == "" {
				t.Fatal("a refusal everywhere carries no reason")
			}
		})
	}
}
