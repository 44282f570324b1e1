package impersonation

import (
	"context"
	"fmt"
	"strings"

	"standin/server/standin"
)

// Reveal shows p one masked personal data field of user userID, for a
// reason (break-glass): the reveal is audited as field.revealed, naming the
// field and the reason, never the value, before the value is returned.
// While impersonating, only the impersonated user's fields can be
// revealed, and the reveal is part of the session (its summary shows it to
// the user); outside one, staff who may read the directory reveal the
// fields of users of a lower role than theirs, and the user is told.
//
// Errors: EInvalid for an unknown field or a missing reason; ENotFound for
// an unknown user; EForbidden when p may not see it (audited while
// impersonating); EUnavailable when the audit log cannot be written: then
// nothing is shown.
func (s *Service) Reveal(ctx context.Context, p *standin.Principal, userID, field, reason string, o standin.Origin) (string, error) {
	if err := standin.CheckField(field); err != nil {
		return "", err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", standin.Errorf(standin.EInvalid, "Give the reason for looking at the %s: it is recorded and shown to the user.", standin.FieldLabel(field))
	}
	if problem := standin.TextProblem(reason, 500); problem != "" {
		return "", standin.Errorf(standin.EInvalid, "The reason %s", problem)
	}
	if !standin.ValidID(userID) {
		return "", standin.Errorf(standin.ENotFound, "There is no user with this id.")
	}
	target, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return "", err
	}
	value, _ := target.Personal.Get(field)
	if p.Impersonation == nil && p.Actor.ID == target.ID {
		return value, nil // one's own
	}
	if why := s.mayReveal(ctx, p, target); why != "" {
		if p.Impersonation != nil {
			ev := p.EventOf(standin.EventActionDenied, o).Concerning("personal.reveal", "field:"+field, "", "denied", why)
			if err := s.audit.Append(ctx, ev); err != nil {
				return "", err
			}
		}
		return "", &standin.Error{Code: standin.EForbidden, Message: "You may not see this.", Reason: why}
	}
	set, err := s.store.ImpersonationSettings(ctx)
	if err != nil {
		return "", err
	}
	if !set.Masked(field) || value == "" {
		return value, nil // shown to staff anyway, or nothing to show
	}
	var ev *standin.Event
	if p.Impersonation != nil {
		ev = p.EventOf(standin.EventFieldRevealed, o)
	} else {
		ev = standin.NewEvent(standin.EventFieldRevealed, p.Actor, target, "", o)
	}
	ev.Concerning("personal.reveal", "field:"+field, "", "revealed", reason)
	if err := s.audit.Append(ctx, ev); err != nil {
		return "", err
	}
	if p.Impersonation == nil {
		// Outside a session, no summary will tell the user: a notification does.
		n := &standin.Notification{UserID: target.ID, Seq: ev.Seq, Type: standin.EventFieldRevealed, Title: "Support looked at your " + standin.FieldLabel(field),
			Body:      fmt.Sprintf("%s looked at your %s. Reason: %s", standin.Named(p.Actor.Name, p.Actor.Email), standin.FieldLabel(field), reason),
			ActorName: p.Actor.Name, ActorEmail: p.Actor.Email, Reason: reason, At: s.cfg.Now()}
		if err := s.store.AddNotification(ctx, n); err != nil {
			s.cfg.Logger.Warn("could not store a notification", "user", target.ID, "err", err)
		} else {
			s.cfg.OnNotify(n)
		}
	}
	return value, nil
}

// mayReveal says why p may not reveal target's personal data, or "".
func (s *Service) mayReveal(ctx context.Context, p *standin.Principal, target *standin.User) string {
	// The actor's own right to read users' data, whoever they act as.
	if dec := s.rbac.Check(ctx, p.Actor, standin.ActRead, standin.KindUser, ""); !dec.Allowed {
		return "Reading users' data " + dec.Reason + "."
	}
	if p.Impersonation != nil {
		if p.Impersonation.SubjectID != target.ID {
			return fmt.Sprintf("While acting as %s, only their data can be looked at.", p.Impersonation.SubjectName)
		}
		return ""
	}
	if p.Actor.Role.Rank() <= target.Role.Rank() {
		return fmt.Sprintf("%s's role (%s) is not lower than yours (%s).", target.Name, target.Role, p.Actor.Role)
	}
	return ""
}
