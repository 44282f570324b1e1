package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"standin/server/password"
	"standin/server/standin"
)

// Rename gives p's subject a new name. A change is audited as
// user.renamed before it takes effect: who was called what, and when,
// stays on record whatever name they show later.
//
// Errors: EInvalid for an empty name or one that is not text of 1 to 100
// characters; EUnavailable when storage or the audit log is down.
func (s *Service) Rename(ctx context.Context, p *standin.Principal, name string, o standin.Origin) (*standin.User, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, standin.Errorf(standin.EInvalid, "Enter a name of 1 to 100 characters.")
	}
	if problem := standin.TextProblem(name, 100); problem != "" {
		return nil, standin.Errorf(standin.EInvalid, "The name %s", problem)
	}
	if name == p.Subject.Name {
		// Nothing changes, so nothing is written.
		return s.cfg.Users.UserByID(ctx, p.Subject.ID)
	}
	ev := p.EventOf(standin.EventUserRenamed, o).Concerning("profile.rename", "user:"+p.Subject.ID, "", "renamed",
		fmt.Sprintf("Renamed from %q to %q.", p.Subject.Name, name))
	if err := s.cfg.Audit.Append(ctx, ev); err != nil {
		return nil, err
	}
	return s.cfg.Users.UpdateUserName(ctx, p.Subject.ID, name, s.cfg.Now())
}

// ChangePassword replaces p's subject's password after checking the
// current one.
//
// Errors: EInvalid when the new password is not 8 to 256 characters long
// or the current one is wrong; the account store's errors.
func (s *Service) ChangePassword(ctx context.Context, p *standin.Principal, current, next string) error {
	if n := utf8.RuneCountInString(next); n < 8 || n > 256 {
		return standin.Errorf(standin.EInvalid, "The new password must be 8 to 256 characters long.")
	}
	u, err := s.cfg.Users.UserByID(ctx, p.Subject.ID)
	if err != nil {
		return err
	}
	if err := password.Verify(current, u.PasswordHash); err != nil {
		if errors.Is(err, password.ErrMismatch) {
			return standin.Errorf(standin.EInvalid, "The current password is not correct.")
		}
		return fmt.Errorf("verify the current password: %w", err)
	}
	hash, err := password.Hash(next, s.cfg.PasswordCost)
	if err != nil {
		return fmt.Errorf("hash the new password: %w", err)
	}
	return s.cfg.Users.SetPasswordHash(ctx, u.ID, hash, s.cfg.Now())
}

// Suspend suspends account userID on p's behalf. The user.suspended event,
// about the suspended user and seen by their project leads, is written
// first; then the status changes, the authorizer learns it at once, the
// impersonations the user takes part in end (as actor: actor_suspended,
// as subject: target_suspended) and so do their sessions. It returns the
// account as suspended.
//
// Errors: ENotFound for no such user; EInvalid for one's own account;
// EForbidden for an account whose role is not lower than p's subject's;
// EConflict when it is already suspended; EUnavailable when storage or
// the audit log is down.
func (s *Service) Suspend(ctx context.Context, p *standin.Principal, userID string, o standin.Origin) (*standin.User, error) {
	u, err := s.cfg.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := maySuspend(p.Subject, u); err != nil {
		return nil, err
	}
	ev := p.EventOf(standin.EventUserSuspended, o).Concerning("user.suspend", "user:"+u.ID, "", "suspended", u.Name)
	// The event is about the suspended user, whom its project leads see.
	ev.Subject = standin.EventUser{ID: u.ID, Name: u.Name}
	ev.Projects = append(ev.Projects, u.ProjectIDs()...)
	if err := s.cfg.Audit.Append(ctx, ev); err != nil {
		return nil, err
	}
	u, err = s.cfg.Users.SetUserStatus(ctx, u.ID, standin.StatusSuspended, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Authorizer.SyncUser(u); err != nil {
		// The authorizer refuses a suspended account by its status
		// whatever rules it still holds; the sessions must end anyway.
		s.log.Error("suspended user's rules not removed from the authorizer", "user", u.ID, "err", err)
	}
	if err := s.cfg.Impersonations.EndFor(ctx, u.ID, standin.CauseActorSuspended, standin.CauseTargetSuspended, p.Actor, o); err != nil {
		return nil, err
	}
	if _, err := s.cfg.Sessions.EndUser(ctx, u.ID); err != nil {
		return nil, err
	}
	return u, nil
}

// maySuspend applies to suspension the ranks that govern impersonation
// (standin.ImpersonationBars): never oneself, only a lower role, and only
// an account that is not suspended yet.
func maySuspend(by, u *standin.User) error {
	switch standin.ImpersonationBars(by, u).First() {
	case standin.BarSelf:
		return standin.Errorf(standin.EInvalid, "You cannot suspend your own account.")
	case standin.BarOwner, standin.BarRank:
		return &standin.Error{Code: standin.EForbidden, Message: "You cannot suspend this account.",
			Reason: fmt.Sprintf("%s has the role %q, which is not lower than yours.", u.Name, u.Role)}
	case standin.BarSuspended:
		return standin.Errorf(standin.EConflict, "%s's account is already suspended.", u.Name)
	}
	return nil
}
