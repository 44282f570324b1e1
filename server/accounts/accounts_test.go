package accounts_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"testing"

	"standin/server/accounts"
	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/impersonation"
	"standin/server/loginlimit"
	"standin/server/mongostore"
	"standin/server/password"
	"standin/server/rbac"
	"standin/server/session"
	"standin/server/standin"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// The packages the server wires in fit the interfaces accounts declares.
var (
	_ accounts.Users          = (*mongostore.DB)(nil)
	_ accounts.Sessions       = (*session.Manager)(nil)
	_ accounts.Impersonations = (*impersonation.Service)(nil)
	_ accounts.Limiter        = (*loginlimit.Limiter)(nil)
	_ accounts.Audit          = (*audit.Log)(nil)
	_ accounts.Authorizer     = (*rbac.Authorizer)(nil)
)

var testCost = password.Params{Time: 1, Memory: 1024, Threads: 1}

const secret = "correct horse"

var origin = standin.Origin{IP: "192.0.2.7", UserAgent: "test-agent"}

// stack is a Service over a real database, audit log, authorizer,
// sessions and impersonation service, with the people it knows.
type stack struct {
	svc      *accounts.Service
	db       *mongostore.DB
	log      *audit.Log
	rbac     *rbac.Authorizer
	sessions *session.Manager
	imps     *impersonation.Service
	admin    *standin.User
	support  *standin.User
	ada      *standin.User
	ben      *standin.User
	project  string // Ada's project
}

func mustStack(t *testing.T, limits loginlimit.Policy) *stack {
	t.Helper()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	s := &stack{db: db}
	project := &standin.Project{Code: "ADA", Name: "Ada's project"}
	if err := db.EnsureProject(ctx, project); err != nil {
		t.Fatal(err)
	}
	s.project = project.ID
	s.admin = mustUser(t, db, "admin@example.org", standin.RoleAdmin, nil)
	s.support = mustUser(t, db, "support@example.org", standin.RoleSupport, nil)
	s.ada = mustUser(t, db, "ada@example.org", standin.RoleUser, []standin.Membership{{ProjectID: project.ID, Role: standin.ProjectMember}})
	s.ben = mustUser(t, db, "ben@example.org", standin.RoleUser, nil)

	var err error
	if s.log, err = audit.Open(ctx, db.Events(), audit.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.log.Close(context.Background()) })
	if s.rbac, err = rbac.New(ctx, db, db, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	s.sessions = session.NewManager(db, db, session.Config{})
	s.imps = impersonation.New(db, s.sessions, s.rbac, s.log, impersonation.Config{})
	s.svc, err = accounts.New(accounts.Config{
		Users: db, Sessions: s.sessions, Impersonations: s.imps, Audit: s.log, Authorizer: s.rbac,
		SignIn:       loginlimit.New(limits, loginlimit.NewMemory(0)),
		PasswordCost: testCost,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustUser(t *testing.T, db *mongostore.DB, email string, role standin.Role, ms []standin.Membership) *standin.User {
	t.Helper()
	hash, err := password.Hash(secret, testCost)
	if err != nil {
		t.Fatal(err)
	}
	u := &standin.User{Name: "Test " + email, Email: email, PasswordHash: hash, Role: role, Status: standin.StatusActive, Memberships: ms}
	if err := db.EnsureUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// mustSignIn signs u in and returns the principal its token acts for.
func (s *stack) mustSignIn(t *testing.T, u *standin.User) (string, *standin.Principal) {
	t.Helper()
	in, err := s.svc.SignIn(context.Background(), accounts.Credentials{Email: u.Email, Password: secret, Origin: origin})
	if err != nil {
		t.Fatalf("sign in %s: %v", u.Email, err)
	}
	p, err := s.svc.Authenticate(context.Background(), in.Token)
	if err != nil {
		t.Fatalf("authenticate %s: %v", u.Email, err)
	}
	return in.Token, p
}

// mustImpersonate has actor impersonate target and returns the actor's
// principal under it.
func (s *stack) mustImpersonate(t *testing.T, actor, target *standin.User) (*standin.Principal, *standin.Impersonation) {
	t.Helper()
	ctx := context.Background()
	_, p := s.mustSignIn(t, actor)
	started, err := s.imps.Start(ctx, p, impersonation.Request{UserID: target.ID, Reason: "ticket"}, origin)
	if err != nil {
		t.Fatalf("impersonate: %v", err)
	}
	p, err = s.svc.Authenticate(ctx, started.Token)
	if err != nil {
		t.Fatal(err)
	}
	return p, started.Impersonation
}

// events returns the log's events of type typ.
func (s *stack) events(t *testing.T, typ string) []*standin.Event {
	t.Helper()
	var out []*standin.Event
	err := s.log.EventsMatching(context.Background(), standin.EventFilter{Type: typ}, func(e *standin.Event) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *stack) mustImpersonation(t *testing.T, id string) *standin.Impersonation {
	t.Helper()
	imp, err := s.db.ImpersonationByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return imp
}

func wantCode(t *testing.T, err error, code, message string) {
	t.Helper()
	if standin.ErrorCode(err) != code || (message != "" && standin.ErrorMessage(err) != message) {
		t.Fatalf("error %v, want %s %q", err, code, message)
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	t.Parallel()
	if _, err := accounts.New(accounts.Config{}); err == nil {
		t.Fatal("New without dependencies succeeded")
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	t.Run("OK", func(t *testing.T) {
		_, p := s.mustSignIn(t, s.ben)
		if p.Actor.ID != s.ben.ID || p.Subject.ID != s.ben.ID || p.Impersonation != nil {
			t.Errorf("principal %+v, want Ben alone", p)
		}
	})
	t.Run("Impersonating", func(t *testing.T) {
		p, imp := s.mustImpersonate(t, s.support, s.ada)
		if p.Actor.ID != s.support.ID || p.Subject.ID != s.ada.ID || p.Impersonation == nil || p.Impersonation.ID != imp.ID {
			t.Errorf("principal %+v, want support as Ada", p)
		}
	})
	t.Run("ErrUnknownToken", func(t *testing.T) {
		_, err := s.svc.Authenticate(context.Background(), "no-such-token")
		wantCode(t, err, standin.EUnauthenticated, "")
	})
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		in, err := s.svc.SignIn(ctx, accounts.Credentials{Email: " Ben@Example.org ", Password: secret, Origin: origin})
		if err != nil {
			t.Fatal(err)
		}
		if in.User.ID != s.ben.ID || in.Token == "" || in.Session.UserID != s.ben.ID || in.Session.IP != origin.IP {
			t.Errorf("signed in %+v, want a session of Ben's from %s", in, origin.IP)
		}
		var mine []*standin.Event
		for _, e := range s.events(t, standin.EventLogin) {
			if e.Actor.ID == s.ben.ID {
				mine = append(mine, e)
			}
		}
		if len(mine) != 1 {
			t.Fatalf("%d auth.login events for Ben, want 1", len(mine))
		}
		e := mine[0]
		if e.Subject.ID != s.ben.ID || e.Action != "session.start" || e.Outcome != "signed_in" || e.IP != origin.IP || e.UserAgent != origin.UserAgent {
			t.Errorf("event %+v", e)
		}
	})
	t.Run("ReplacesOldSession", func(t *testing.T) {
		old, _ := s.mustSignIn(t, s.ada)
		if _, err := s.svc.SignIn(ctx, accounts.Credentials{Email: s.ada.Email, Password: secret, Replaces: old, Origin: origin}); err != nil {
			t.Fatal(err)
		}
		_, err := s.svc.Authenticate(ctx, old)
		wantCode(t, err, standin.EUnauthenticated, "")
	})
	refusals := []struct {
		name, email, password, code, message string
	}{
		{"ErrMissing", "", secret, standin.EInvalid, "Enter your email address and password."},
		{"ErrTooLong", s.ben.Email, string(make([]byte, 1025)), standin.EInvalid, "The email address or password is too long."},
		{"ErrWrongPassword", s.ben.Email, "wrong", standin.EUnauthenticated, "Wrong email or password."},
		{"ErrUnknown", "nobody@example.org", secret, standin.EUnauthenticated, "Wrong email or password."},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.svc.SignIn(ctx, accounts.Credentials{Email: tt.email, Password: tt.password, Origin: origin})
			wantCode(t, err, tt.code, tt.message)
		})
	}
}

func TestSignInSuspended(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	ctx := context.Background()
	_, admin := s.mustSignIn(t, s.admin)
	if _, err := s.svc.Suspend(ctx, admin, s.ben.ID, origin); err != nil {
		t.Fatal(err)
	}
	_, err := s.svc.SignIn(ctx, accounts.Credentials{Email: s.ben.Email, Password: secret, Origin: origin})
	wantCode(t, err, standin.EUnauthenticated, "Wrong email or password.")
}

func TestSignInMustWait(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{AccountFree: 1})
	ctx := context.Background()
	_, err := s.svc.SignIn(ctx, accounts.Credentials{Email: s.ben.Email, Password: "wrong", Origin: origin})
	wantCode(t, err, standin.EUnauthenticated, "")
	_, err = s.svc.SignIn(ctx, accounts.Credentials{Email: s.ben.Email, Password: secret, Origin: origin})
	w, ok := errors.AsType[*accounts.WaitError](err)
	if !ok || w.Wait <= 0 {
		t.Fatalf("error %v, want a WaitError with a wait", err)
	}
	wantCode(t, err, standin.ETooManyRequests, "")
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	ctx := context.Background()
	p, imp := s.mustImpersonate(t, s.support, s.ada)
	if err := s.svc.SignOut(ctx, p, origin); err != nil {
		t.Fatal(err)
	}
	if got := s.mustImpersonation(t, imp.ID); got.EndedAt.IsZero() || got.Cause != standin.CauseActorLoggedOut {
		t.Errorf("impersonation ended %v with cause %q, want %q", got.EndedAt, got.Cause, standin.CauseActorLoggedOut)
	}
	if sess, err := s.db.SessionByID(ctx, p.Session.ID); err == nil {
		t.Errorf("session %s still stored after sign-out", sess.ID)
	}
	evs := s.events(t, standin.EventLogout)
	if len(evs) != 1 || evs[0].Actor.ID != s.support.ID || evs[0].Subject.ID != s.support.ID ||
		evs[0].Action != "session.end" || evs[0].Outcome != "signed_out" || evs[0].ImpersonationID != "" {
		t.Errorf("auth.logout events %+v, want one of the support agent as themselves", evs)
	}
}

func TestSuspend(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	ctx := context.Background()
	adaToken, _ := s.mustSignIn(t, s.ada)
	_, imp := s.mustImpersonate(t, s.support, s.ada)
	_, admin := s.mustSignIn(t, s.admin)

	u, err := s.svc.Suspend(ctx, admin, s.ada.ID, origin)
	if err != nil {
		t.Fatal(err)
	}
	if u.Status != standin.StatusSuspended {
		t.Errorf("status %q, want suspended", u.Status)
	}
	if got := s.mustImpersonation(t, imp.ID); got.Cause != standin.CauseTargetSuspended {
		t.Errorf("impersonation cause %q, want %q", got.Cause, standin.CauseTargetSuspended)
	}
	_, err = s.svc.Authenticate(ctx, adaToken)
	wantCode(t, err, standin.EUnauthenticated, "")
	evs := s.events(t, standin.EventUserSuspended)
	if len(evs) != 1 {
		t.Fatalf("%d user.suspended events, want 1", len(evs))
	}
	e := evs[0]
	if e.Actor.ID != s.admin.ID || e.Subject.ID != s.ada.ID || e.Object != "user:"+s.ada.ID ||
		e.Action != "user.suspend" || e.Outcome != "suspended" || e.Reason != s.ada.Name || !slices.Contains(e.Projects, s.project) {
		t.Errorf("event %+v", e)
	}
}

// TestSuspendTellsTheAuthorizer: once suspended, the account's rules are
// gone from the authorizer at once, so even a decision asked with the
// account as it was before (a principal resolved a moment earlier) is a
// denial.
func TestSuspendTellsTheAuthorizer(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	ctx := context.Background()
	before := *s.ben
	if dec := s.rbac.Check(ctx, &before, standin.ActRead, standin.KindProfile, ""); !dec.Allowed {
		t.Fatalf("before suspension: %s", dec.Reason)
	}
	_, admin := s.mustSignIn(t, s.admin)
	if _, err := s.svc.Suspend(ctx, admin, s.ben.ID, origin); err != nil {
		t.Fatal(err)
	}
	if dec := s.rbac.Check(ctx, &before, standin.ActRead, standin.KindProfile, ""); dec.Allowed {
		t.Errorf("after suspension the authorizer still allows Ben (%s)", dec.Reason)
	}
}

func TestSuspendRefusals(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	ctx := context.Background()
	_, admin := s.mustSignIn(t, s.admin)
	_, support := s.mustSignIn(t, s.support)
	if _, err := s.svc.Suspend(ctx, admin, s.ben.ID, origin); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		by      *standin.Principal
		userID  string
		code    string
		message string
	}{
		{"ErrSelf", admin, s.admin.ID, standin.EInvalid, "You cannot suspend your own account."},
		{"ErrRank", support, s.admin.ID, standin.EForbidden, "You cannot suspend this account."},
		{"ErrAlreadySuspended", admin, s.ben.ID, standin.EConflict, "Test ben@example.org's account is already suspended."},
		{"ErrNotFound", admin, "000000000000000000000000", standin.ENotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.svc.Suspend(ctx, tt.by, tt.userID, origin)
			wantCode(t, err, tt.code, tt.message)
		})
	}
	if n := len(s.events(t, standin.EventUserSuspended)); n != 1 {
		t.Errorf("%d user.suspended events, want only the one suspension", n)
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	ctx := context.Background()
	_, p := s.mustSignIn(t, s.ben)
	err := s.svc.ChangePassword(ctx, p, secret, "short")
	wantCode(t, err, standin.EInvalid, "The new password must be 8 to 256 characters long.")
	err = s.svc.ChangePassword(ctx, p, "wrong", "a new long password")
	wantCode(t, err, standin.EInvalid, "The current password is not correct.")
	if err := s.svc.ChangePassword(ctx, p, secret, "a new long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.SignIn(ctx, accounts.Credentials{Email: s.ben.Email, Password: "a new long password", Origin: origin}); err != nil {
		t.Errorf("sign in with the new password: %v", err)
	}
}

func TestRename(t *testing.T) {
	t.Parallel()
	s := mustStack(t, loginlimit.Policy{})
	ctx := context.Background()
	_, p := s.mustSignIn(t, s.ben)
	_, err := s.svc.Rename(ctx, p, "   ", origin)
	wantCode(t, err, standin.EInvalid, "Enter a name of 1 to 100 characters.")
	u, err := s.svc.Rename(ctx, p, " Benjamin ", origin)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "Benjamin" {
		t.Errorf("name %q, want Benjamin", u.Name)
	}
	p.Subject = u
	if _, err := s.svc.Rename(ctx, p, "Benjamin", origin); err != nil {
		t.Fatal(err)
	}
	evs := s.events(t, standin.EventUserRenamed)
	if len(evs) != 1 {
		t.Fatalf("%d user.renamed events, want 1 (an unchanged name is no rename)", len(evs))
	}
	if e := evs[0]; e.Object != "user:"+s.ben.ID || e.Action != "profile.rename" || e.Outcome != "renamed" ||
		e.Reason != `Renamed from "Test ben@example.org" to "Benjamin".` {
		t.Errorf("event %+v", e)
	}
}
