package mongostore_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func mustOpen(t testing.TB) *mongostore.DB { return dbtest.MustOpen(t) }

func mustUser(t *testing.T, db *mongostore.DB, email string) *standin.User {
	t.Helper()
	u := &standin.User{Name: "Test " + email, Email: email, PasswordHash: "x", Role: standin.RoleUser, Status: standin.StatusActive}
	if err := db.EnsureUser(context.Background(), u); err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	return u
}

func TestUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)

	p := &standin.Project{Code: "NEURO", Name: "Neuro Imaging"}
	if err := db.EnsureProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	tr := &standin.Training{Name: "Laser Safety", ValidFor: 48 * time.Hour}
	if err := db.EnsureTraining(ctx, tr); err != nil {
		t.Fatal(err)
	}
	done := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	u := &standin.User{
		Name: "Ada", Email: " Ada@Example.org", PasswordHash: "h", Role: standin.RoleUser, Status: standin.StatusActive,
		Memberships: []standin.Membership{{ProjectID: p.ID, Role: standin.ProjectMember}},
		Trainings:   []standin.TrainingRecord{{TrainingID: tr.ID, CompletedAt: done, ExpiresAt: done.Add(tr.ValidFor)}},
	}
	if err := db.EnsureUser(ctx, u); err != nil {
		t.Fatal(err)
	}

	t.Run("ByEmailNormalized", func(t *testing.T) {
		got, err := db.UserByEmail(ctx, "ADA@example.ORG ")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || got.Email != "ada@example.org" || got.Name != "Ada" {
			t.Fatalf("got %+v", got)
		}
		if len(got.Memberships) != 1 || got.Memberships[0].ProjectID != p.ID || got.Memberships[0].Role != standin.ProjectMember {
			t.Fatalf("memberships %+v", got.Memberships)
		}
		if len(got.Trainings) != 1 || !got.Trainings[0].ExpiresAt.Equal(done.Add(48*time.Hour)) {
			t.Fatalf("trainings %+v", got.Trainings)
		}
	})
	t.Run("ByID", func(t *testing.T) {
		got, err := db.UserByID(ctx, u.ID)
		if err != nil || got.Email != "ada@example.org" {
			t.Fatalf("UserByID = %+v, %v", got, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, id := range []string{"000000000000000000000000", "not-an-id", ""} {
			if _, err := db.UserByID(ctx, id); standin.ErrorCode(err) != standin.ENotFound {
				t.Errorf("UserByID(%q) = %v, want not_found", id, err)
			}
		}
		if _, err := db.UserByEmail(ctx, "nobody@example.org"); standin.ErrorCode(err) != standin.ENotFound {
			t.Errorf("UserByEmail = %v, want not_found", err)
		}
	})
	t.Run("EnsureIsIdempotent", func(t *testing.T) {
		again := &standin.User{Name: "Someone Else", Email: "ada@example.org", PasswordHash: "other", Role: standin.RoleAdmin, Status: standin.StatusActive}
		if err := db.EnsureUser(ctx, again); err != nil {
			t.Fatal(err)
		}
		if again.ID != u.ID {
			t.Fatalf("second EnsureUser got id %s, want existing %s", again.ID, u.ID)
		}
		got, err := db.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ada" || got.Role != standin.RoleUser {
			t.Fatalf("existing account was changed: %+v", got)
		}
		if n, err := db.CountUsers(ctx); err != nil || n != 1 {
			t.Fatalf("CountUsers = %d, %v; want 1", n, err)
		}
	})
}

func TestSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)
	u := mustUser(t, db, "ben@example.org")
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := &standin.Session{ID: strings.Repeat("a", 64), UserID: u.ID, CSRFToken: "csrf", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), IP: "127.0.0.1", UserAgent: "test"}

	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	t.Run("ErrConflictOnSameID", func(t *testing.T) {
		if err := db.CreateSession(ctx, s); standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("second CreateSession = %v, want conflict", err)
		}
	})
	t.Run("Read", func(t *testing.T) {
		got, err := db.SessionByID(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.UserID != u.ID || got.CSRFToken != "csrf" || !got.ExpiresAt.Equal(s.ExpiresAt) {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("Touch", func(t *testing.T) {
		later := now.Add(10 * time.Minute)
		if err := db.TouchSession(ctx, s.ID, later, later.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := db.SessionByID(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastSeenAt.Equal(later) || !got.ExpiresAt.Equal(later.Add(time.Hour)) {
			t.Fatalf("touch not stored: %+v", got)
		}
	})
	t.Run("DeleteUserSessions", func(t *testing.T) {
		other := *s
		other.ID = strings.Repeat("b", 64)
		if err := db.CreateSession(ctx, &other); err != nil {
			t.Fatal(err)
		}
		ids, err := db.DeleteUserSessions(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 2 {
			t.Fatalf("deleted %v, want both sessions", ids)
		}
		if _, err := db.SessionByID(ctx, s.ID); standin.ErrorCode(err) != standin.ENotFound {
			t.Fatalf("session still there: %v", err)
		}
		if err := db.DeleteSession(ctx, s.ID); err != nil {
			t.Fatalf("deleting a gone session: %v", err)
		}
	})
}

func TestMarkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)
	if ok, err := db.Marked(ctx, "k"); err != nil || ok {
		t.Fatalf("Marked before Mark = %v, %v", ok, err)
	}
	for range 2 {
		if err := db.Mark(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := db.Marked(ctx, "k"); err != nil || !ok {
		t.Fatalf("Marked after Mark = %v, %v", ok, err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: Open must fail fast with a coded error.
	ctx := context.Background()
	start := time.Now()
	_, err := mongostore.Open(ctx, "mongodb://127.0.0.1:1/", "x", mongostore.Options{Timeout: 300 * time.Millisecond})
	if standin.ErrorCode(err) != standin.EUnavailable {
		t.Fatalf("Open on a closed port = %v, want unavailable", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Open took %v; the timeout was not applied", time.Since(start))
	}
}
