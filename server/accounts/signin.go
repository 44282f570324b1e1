package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"standin/server/loginlimit"
	"standin/server/password"
	"standin/server/session"
	"standin/server/standin"
)

// Input bounds for sign-in: longer values are not addresses or passwords
// anyone types, and would only cost hashing time and limiter memory.
const (
	maxEmail    = 254
	maxPassword = 1024
)

// Credentials are what a person signs in with, and from where.
type Credentials struct {
	Email    string
	Password string
	// Replaces is the token of the session the client held before, if
	// any: a new sign-in always gets a new session id, and the old one
	// ends.
	Replaces string
	Origin   standin.Origin
}

// SignedIn is a started session.
type SignedIn struct {
	User    *standin.User
	Token   string
	Session *standin.Session
}

// WaitError refuses a sign-in attempt that must wait (package
// loginlimit). Its code is ETooManyRequests; Wait says for how long.
type WaitError struct {
	Wait time.Duration
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("sign-in attempt must wait %s", e.Wait)
}

// Unwrap gives the error its code.
func (e *WaitError) Unwrap() error {
	return standin.Errorf(standin.ETooManyRequests, "Too many failed sign-in attempts.")
}

// SignIn checks the credentials and starts a session, audited as
// auth.login before it is handed out: no audit, no session.
//
// Errors: EInvalid for a missing or overlong email or password; a
// *WaitError (ETooManyRequests) when the attempt must wait;
// EUnauthenticated with one message for unknown, wrong and suspended
// alike; EUnavailable when hashing is too busy or storage or the audit
// log is down.
func (s *Service) SignIn(ctx context.Context, c Credentials) (*SignedIn, error) {
	email := standin.NormalizeEmail(c.Email)
	if email == "" || c.Password == "" {
		return nil, standin.Errorf(standin.EInvalid, "Enter your email address and password.")
	}
	if len(email) > maxEmail || len(c.Password) > maxPassword {
		return nil, standin.Errorf(standin.EInvalid, "The email address or password is too long.")
	}
	user, err := s.checkSignIn(ctx, loginlimit.Attempt{Address: loginlimit.AddressOf(c.Origin.IP), Email: email}, c.Password)
	if err != nil {
		if standin.ErrorCode(err) == standin.EUnauthenticated {
			s.log.Info("sign-in refused", "ip", c.Origin.IP)
		}
		return nil, err
	}
	if c.Replaces != "" {
		if err := s.cfg.Sessions.End(ctx, session.ID(c.Replaces)); err != nil {
			return nil, err
		}
	}
	token, sess, err := s.cfg.Sessions.Start(ctx, user, c.Origin.IP, c.Origin.UserAgent)
	if err != nil {
		return nil, err
	}
	self := &standin.Principal{Actor: user, Subject: user}
	if err := s.cfg.Audit.Append(ctx, self.EventOf(standin.EventLogin, c.Origin).Concerning("session.start", "", "", "signed_in", "")); err != nil {
		_ = s.cfg.Sessions.End(context.WithoutCancel(ctx), sess.ID)
		return nil, err
	}
	s.log.Info("signed in", "user", user.ID, "ip", c.Origin.IP)
	return &SignedIn{User: user, Token: token, Session: sess}, nil
}

// checkSignIn returns the active account with this email and password,
// or refuses: a *WaitError when the attempt must wait (package
// loginlimit), EUnauthenticated with one message for unknown, wrong and
// suspended alike, EUnavailable when hashing is too busy, or the account
// store's error. The limiter is asked first, before the account is looked
// up, so that a refused flood costs the database nothing; then again with
// the account, recording the attempt, which is settled once judged.
func (s *Service) checkSignIn(ctx context.Context, attempt loginlimit.Attempt, plain string) (*standin.User, error) {
	now := s.cfg.Now()
	if wait, err := s.cfg.SignIn.Check(ctx, attempt, now); err != nil {
		return nil, err
	} else if wait > 0 {
		return nil, &WaitError{Wait: wait}
	}
	user, err := s.cfg.Users.UserByEmail(ctx, attempt.Email)
	switch {
	case err == nil:
		attempt.Account = user.ID
	case standin.ErrorCode(err) == standin.ENotFound:
		user = nil // counted in its address's ledgers only
	default:
		return nil, err
	}
	ticket, wait, err := s.cfg.SignIn.Begin(ctx, attempt, now)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, &WaitError{Wait: wait}
	}
	outcome := loginlimit.Failed
	user, err = s.verifyPassword(user, plain)
	switch {
	case err == nil:
		outcome = loginlimit.Passed
	case standin.ErrorCode(err) != standin.EUnauthenticated:
		outcome = loginlimit.Void // not judged: counts against no one
	}
	if serr := s.cfg.SignIn.Settle(context.WithoutCancel(ctx), ticket, outcome); serr != nil {
		// The attempt stays counted as failed, the safe side; it is no
		// reason to refuse a right password.
		s.log.Warn("sign-in attempt not settled", "err", serr)
	}
	return user, err
}

// verifyPassword returns user when plain is its password and it is
// active, or EUnauthenticated with one message for unknown (nil user),
// wrong and suspended alike, taking as long for an unknown account as for
// a wrong password; EUnavailable when hashing stays busy. Hashing is
// memory-hard, so only a few run at once.
func (s *Service) verifyPassword(user *standin.User, plain string) (*standin.User, error) {
	hash := s.dummyHash
	if user != nil {
		hash = user.PasswordHash
	}
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	case <-time.After(10 * time.Second):
		return nil, standin.Errorf(standin.EUnavailable, "The server is busy. Try again in a moment.")
	}
	verr := password.Verify(plain, hash)
	if verr != nil && !errors.Is(verr, password.ErrMismatch) && user != nil {
		s.log.Error("stored password hash is unreadable", "user", user.ID, "err", verr)
	}
	if user == nil || verr != nil || !user.Active() {
		return nil, standin.Errorf(standin.EUnauthenticated, "Wrong email or password.")
	}
	return user, nil
}
