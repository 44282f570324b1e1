package session_test

import (
	"context"
	"os"
	"testing"
	"time"

	"standin/server/dbtest"
	"standin/server/session"
	"standin/server/standin"
	"standin/server/testclock"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

type fixture struct {
	m     *session.Manager
	clk   *testclock.Clock
	user  *standin.User
	ended chan string
}

func newFixture(t *testing.T, status standin.Status) *fixture {
	t.Helper()
	db := dbtest.MustOpen(t)
	u := &standin.User{Name: "Ada", Email: "ada@example.org", PasswordHash: "x", Role: standin.RoleUser, Status: status}
	if err := db.EnsureUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	f := &fixture{clk: testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), user: u, ended: make(chan string, 10)}
	f.m = session.NewManager(db, db, session.Config{
		TTL: 8 * time.Hour, Idle: time.Hour, TouchEvery: time.Minute,
		Now:   f.clk.Now,
		OnEnd: func(id string) { f.ended <- id },
	})
	return f
}

func (f *fixture) mustStart(t *testing.T) (string, *standin.Session) {
	t.Helper()
	token, s, err := f.m.Start(context.Background(), f.user, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	return token, s
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, standin.StatusActive)
		token, s := f.mustStart(t)
		if s.ID != session.ID(token) || s.ID == token {
			t.Fatal("the stored id must be the token's digest, not the token")
		}
		p, err := f.m.Authenticate(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if p.Actor.ID != f.user.ID || p.Subject.ID != f.user.ID || p.Session.ID != s.ID || p.Impersonating() {
			t.Fatalf("principal %+v", p)
		}
	})

	t.Run("ErrUnknownToken", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, standin.StatusActive)
		for _, token := range []string{"", "nope"} {
			if _, err := f.m.Authenticate(ctx, token); standin.ErrorCode(err) != standin.EUnauthenticated {
				t.Errorf("Authenticate(%q) = %v", token, err)
			}
		}
	})

	t.Run("IdleExpiryEndsSession", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, standin.StatusActive)
		token, s := f.mustStart(t)
		f.clk.Advance(time.Hour)
		if _, err := f.m.Authenticate(ctx, token); standin.ErrorCode(err) != standin.EUnauthenticated {
			t.Fatalf("after an idle hour: %v", err)
		}
		if got := <-f.ended; got != s.ID {
			t.Fatalf("OnEnd got %q, want %q", got, s.ID)
		}
	})

	t.Run("UseSlidesIdleExpiry", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, standin.StatusActive)
		token, _ := f.mustStart(t)
		for range 3 {
			f.clk.Advance(50 * time.Minute)
			if _, err := f.m.Authenticate(ctx, token); err != nil {
				t.Fatalf("active use ended the session: %v", err)
			}
		}
	})

	t.Run("AbsoluteLifetimeCaps", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, standin.StatusActive)
		token, s := f.mustStart(t)
		if want := s.CreatedAt.Add(8 * time.Hour); !f.m.Deadline(s).Equal(want) {
			t.Fatalf("Deadline = %v, want %v", f.m.Deadline(s), want)
		}
		for elapsed := time.Duration(0); elapsed < 8*time.Hour-50*time.Minute; elapsed += 50 * time.Minute {
			f.clk.Advance(50 * time.Minute)
			if _, err := f.m.Authenticate(ctx, token); err != nil {
				t.Fatalf("at %v: %v", elapsed, err)
			}
		}
		f.clk.Advance(50 * time.Minute)
		if _, err := f.m.Authenticate(ctx, token); standin.ErrorCode(err) != standin.EUnauthenticated {
			t.Fatalf("past the absolute lifetime: %v", err)
		}
	})

	t.Run("ErrSuspendedAccount", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, standin.StatusSuspended)
		token, s := f.mustStart(t)
		if _, err := f.m.Authenticate(ctx, token); standin.ErrorCode(err) != standin.EUnauthenticated {
			t.Fatalf("suspended account: %v", err)
		}
		if got := <-f.ended; got != s.ID {
			t.Fatalf("OnEnd got %q", got)
		}
	})

	t.Run("End", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, standin.StatusActive)
		token, s := f.mustStart(t)
		if err := f.m.End(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Authenticate(ctx, token); standin.ErrorCode(err) != standin.EUnauthenticated {
			t.Fatalf("after End: %v", err)
		}
		if err := f.m.End(ctx, s.ID); err != nil {
			t.Fatalf("ending twice: %v", err)
		}
	})
}

func TestSweepAndEndUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, standin.StatusActive)
	old, oldSession := f.mustStart(t)
	f.clk.Advance(90 * time.Minute)
	fresh, _ := f.mustStart(t)

	n, err := f.m.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want the one expired session", n, err)
	}
	if got := <-f.ended; got != oldSession.ID {
		t.Fatalf("OnEnd got %q, want the swept session", got)
	}
	if _, err := f.m.Authenticate(ctx, old); standin.ErrorCode(err) != standin.EUnauthenticated {
		t.Fatalf("swept session: %v", err)
	}
	if _, err := f.m.Authenticate(ctx, fresh); err != nil {
		t.Fatalf("a live session was swept: %v", err)
	}

	n, err = f.m.EndUser(ctx, f.user.ID)
	if err != nil || n != 1 {
		t.Fatalf("EndUser = %d, %v", n, err)
	}
	if _, err := f.m.Authenticate(ctx, fresh); standin.ErrorCode(err) != standin.EUnauthenticated {
		t.Fatalf("after EndUser: %v", err)
	}
}
