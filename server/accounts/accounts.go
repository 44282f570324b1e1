// Package accounts owns what people do with their accounts and what is
// done to them: signing in and out, suspension, password changes and
// renaming, each with its audit event, and finding out who a session
// token acts for. Handlers call it; it knows nothing of HTTP.
package accounts

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"standin/server/loginlimit"
	"standin/server/password"
	"standin/server/standin"
)

// Users is the account storage.
type Users interface {
	UserByID(ctx context.Context, id string) (*standin.User, error)
	UserByEmail(ctx context.Context, email string) (*standin.User, error)
	UpdateUserName(ctx context.Context, id, name string, at time.Time) (*standin.User, error)
	SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error
	SetUserStatus(ctx context.Context, id string, status standin.Status, at time.Time) (*standin.User, error)
}

// Sessions starts, resolves and ends sign-in sessions (package session).
type Sessions interface {
	Start(ctx context.Context, u *standin.User, ip, userAgent string) (string, *standin.Session, error)
	Authenticate(ctx context.Context, token string) (*standin.Principal, error)
	End(ctx context.Context, id string) error
	EndUser(ctx context.Context, userID string) (int, error)
}

// Impersonations is what accounts needs of the impersonation service
// (package impersonation).
type Impersonations interface {
	// Resolve turns a session's principal into the effective one.
	Resolve(ctx context.Context, p *standin.Principal) (*standin.Principal, error)
	// EndFor ends the impersonations userID takes part in, as actor with
	// the cause asActor, as subject with asSubject ("" leaves them).
	EndFor(ctx context.Context, userID, asActor, asSubject string, by *standin.User, o standin.Origin) error
}

// Limiter decides which sign-in attempts must wait (package loginlimit).
type Limiter interface {
	Check(ctx context.Context, a loginlimit.Attempt, now time.Time) (time.Duration, error)
	Begin(ctx context.Context, a loginlimit.Attempt, now time.Time) (loginlimit.Ticket, time.Duration, error)
	Settle(ctx context.Context, t loginlimit.Ticket, o loginlimit.Outcome) error
}

// Audit appends events; they are committed when it returns nil.
type Audit interface {
	Append(ctx context.Context, evs ...*standin.Event) error
}

// Authorizer keeps the authorizer's view of a user in step with the
// account (package authz).
type Authorizer interface {
	// SyncUser makes u's role, memberships and status, as given, the
	// ones every later decision uses.
	SyncUser(u *standin.User) error
}

// Config wires a Service. Users, Sessions, Impersonations, Audit and
// Authorizer are required; zero values of the others are the documented
// defaults.
type Config struct {
	Users          Users
	Sessions       Sessions
	Impersonations Impersonations
	Audit          Audit
	Authorizer     Authorizer

	// SignIn decides which sign-in attempts must wait (default
	// loginlimit's policy over a store in this process's memory).
	SignIn Limiter
	// PasswordCost is the Argon2id cost of new passwords (default
	// password.Default).
	PasswordCost password.Params
	// Logger receives sign-ins, sign-outs and faults; nil discards them.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service runs the account workflows. It is safe for concurrent use.
type Service struct {
	cfg       Config
	log       *slog.Logger
	hashing   chan struct{} // bounds concurrent password verification at sign-in
	dummyHash string        // verified against for unknown accounts
}

// New returns a Service. It fails when a required dependency is missing
// or the password cost cannot hash.
func New(cfg Config) (*Service, error) {
	if cfg.Users == nil || cfg.Sessions == nil || cfg.Impersonations == nil || cfg.Audit == nil || cfg.Authorizer == nil {
		return nil, fmt.Errorf("accounts: Users, Sessions, Impersonations, Audit and Authorizer are required")
	}
	if cfg.SignIn == nil {
		cfg.SignIn = loginlimit.New(loginlimit.Policy{}, loginlimit.NewMemory(0))
	}
	if cfg.PasswordCost == (password.Params{}) {
		cfg.PasswordCost = password.Default
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dummy, err := password.Hash("standin-no-such-account", cfg.PasswordCost)
	if err != nil {
		return nil, fmt.Errorf("accounts: hash the stand-in password: %w", err)
	}
	return &Service{
		cfg:       cfg,
		log:       cfg.Logger,
		hashing:   make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		dummyHash: dummy,
	}, nil
}

// Authenticate returns who a session token acts for: the session's
// principal, with the subject of the impersonation in force, if any. An
// impersonation that may no longer run is ended on the way, and the
// principal is then the actor alone with Session.RotatePending set: a
// caller that can hand out a new token should rotate the session.
//
// Errors: EUnauthenticated for an unknown, expired or suspended session
// (see package session), EUnavailable when storage is down.
func (s *Service) Authenticate(ctx context.Context, token string) (*standin.Principal, error) {
	p, err := s.cfg.Sessions.Authenticate(ctx, token)
	if err != nil {
		return nil, err
	}
	return s.cfg.Impersonations.Resolve(ctx, p)
}

// SignOut ends the actor's session. It ends the impersonations the actor
// conducts, from this session or another; being impersonated is not
// theirs to end. The auth.logout event is written before the session ends.
func (s *Service) SignOut(ctx context.Context, p *standin.Principal, o standin.Origin) error {
	if err := s.cfg.Impersonations.EndFor(ctx, p.Actor.ID, standin.CauseActorLoggedOut, "", p.Actor, o); err != nil {
		return err
	}
	self := &standin.Principal{Actor: p.Actor, Subject: p.Actor}
	if err := s.cfg.Audit.Append(ctx, self.EventOf(standin.EventLogout, o).Concerning("session.end", "", "", "signed_out", "")); err != nil {
		return err
	}
	if err := s.cfg.Sessions.End(ctx, p.Session.ID); err != nil {
		return err
	}
	s.log.Info("signed out", "user", p.Actor.ID)
	return nil
}
