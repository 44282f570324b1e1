package livefeed

import (
	"context"
	"log/slog"

	"standin/realtime"
	"standin/server/presence"
	"standin/server/standin"
)

// Authenticator resolves a session token into the effective principal:
// the session, then the impersonation in force. It returns EUnauthenticated
// for an unknown or expired token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*standin.Principal, error)
}

// Access makes the console's policy decisions (access.Decider).
type Access interface {
	Decide(ctx context.Context, p *standin.Principal, action string, obj standin.Object, project string) (standin.Decision, error)
	Scope(ctx context.Context, p *standin.Principal, action, kind string, projects []string) (standin.Scope, error)
	// ActivityScope is the part of the activity log p may read.
	ActivityScope(ctx context.Context, p *standin.Principal) (standin.Scope, error)
	// Staff reports whether p works as support staff (presence).
	Staff(ctx context.Context, p *standin.Principal) (bool, error)
}

// AuditLog reads committed audit events in seq order (audit.Log).
type AuditLog interface {
	EventsAfter(ctx context.Context, afterSeq int64, fn func(*standin.Event) error) error
	EventsMatching(ctx context.Context, f standin.EventFilter, fn func(*standin.Event) error) error
}

// Notifications reads a user's stored notifications after a seq.
type Notifications interface {
	NotificationsAfter(ctx context.Context, userID string, afterSeq int64, fn func(*standin.Notification) error) error
}

// Impersonations finds an impersonation session that someone may see
// (impersonation.Service.Get): its actor, and those who may revoke it. It
// returns ENotFound alike for an unknown id and one who may not see.
type Impersonations interface {
	Get(ctx context.Context, who *standin.User, id string) (*standin.Impersonation, error)
}

// Presence is the presence tracker's current state.
type Presence interface {
	State() presence.State
}

// Config holds what Subscriptions decides from. Every field but Logger is
// required.
type Config struct {
	Sessions       Authenticator
	Access         Access
	Audit          AuditLog
	Notifications  Notifications
	Impersonations Impersonations
	Presence       Presence
	// Logger receives what cannot be decided. Nil discards.
	Logger *slog.Logger
}

// Subscriptions is the hub's Sessions, Authorizer and Backlog: it opens
// sockets to signed-in people, lets them subscribe to and receive what
// the HTTP API would show them, and replays what they missed. Every rule
// looks at the effective user (the subject while impersonating), as the
// HTTP API does: an agent acting as a user sees what that user would.
type Subscriptions struct {
	cfg Config
	log *slog.Logger
}

var (
	_ realtime.Sessions   = (*Subscriptions)(nil)
	_ realtime.Authorizer = (*Subscriptions)(nil)
	_ realtime.Backlog    = (*Subscriptions)(nil)
)

// NewSubscriptions returns the rules of the live feed.
func NewSubscriptions(cfg Config) *Subscriptions {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Subscriptions{cfg: cfg, log: cfg.Logger}
}

// Authenticate implements realtime.Sessions: the socket belongs to the
// session, is counted against its actor, and carries the effective
// principal for the other rules. Errors keep their code (EUnauthenticated,
// EUnavailable; any other is a fault).
func (s *Subscriptions) Authenticate(ctx context.Context, token string) (*realtime.Principal, error) {
	p, err := s.cfg.Sessions.Authenticate(ctx, token)
	if err != nil {
		return nil, hubError(err)
	}
	if p == nil || p.Session == nil || p.Actor == nil || p.Subject == nil {
		return nil, realtime.Errorf(realtime.EInternal, "The session store returned an incomplete principal.")
	}
	return &realtime.Principal{SessionID: p.Session.ID, UserID: p.Actor.ID, ExpiresAt: p.Session.ExpiresAt, Value: p,
		LogAttrs: []any{"subject", p.Subject.ID}}, nil
}

// principalOf returns the console's principal a socket carries, nil for
// one Authenticate did not make.
func principalOf(p *realtime.Principal) *standin.Principal {
	if p == nil {
		return nil
	}
	sp, _ := p.Value.(*standin.Principal)
	if sp == nil || sp.Subject == nil {
		return nil
	}
	return sp
}

// hubError carries a console error to the hub with its code: refusals
// become EForbidden with their message, unavailability stays EUnavailable,
// and faults stay faults.
func hubError(err error) error {
	if err == nil {
		return nil
	}
	code := realtime.EForbidden
	switch standin.ErrorCode(err) {
	case standin.EUnauthenticated:
		code = realtime.EUnauthenticated
	case standin.EUnavailable:
		code = realtime.EUnavailable
	case standin.EInternal:
		code = realtime.EInternal
	}
	return &realtime.Error{Code: code, Message: standin.ErrorMessage(err), Cause: err}
}

// CanSubscribe implements realtime.Authorizer. Notifications are anyone's
// own; the activity feed is for those who may read some of it, presence
// for support staff, and an impersonation's topic for those who may see
// it.
func (s *Subscriptions) CanSubscribe(ctx context.Context, rp *realtime.Principal, topic string) error {
	p := principalOf(rp)
	if p == nil {
		return realtime.Errorf(realtime.EInternal, "The socket carries no principal.")
	}
	return hubError(s.canSubscribe(ctx, p, topic))
}

func (s *Subscriptions) canSubscribe(ctx context.Context, p *standin.Principal, topic string) error {
	switch topic {
	case realtime.TopicNotifications:
		return nil
	case realtime.TopicActivity:
		// Anyone who may read some of it, as GET /api/v1/activity decides.
		sc, err := s.cfg.Access.ActivityScope(ctx, p)
		if err != nil {
			return err
		}
		if sc.Empty() {
			return standin.Errorf(standin.EForbidden, "You do not have permission to read the activity log.")
		}
		return nil
	case realtime.TopicPresence:
		ok, err := s.cfg.Access.Staff(ctx, p)
		if err != nil {
			return err
		}
		if !ok {
			return standin.Errorf(standin.EForbidden, "Only support staff see who is looking at which user.")
		}
		return nil
	case realtime.TopicSinks:
		dec, err := s.cfg.Access.Decide(ctx, p, standin.ActList, standin.Object{Kind: standin.KindSink}, "")
		if err != nil {
			return err
		}
		if !dec.Allowed {
			return standin.Errorf(standin.EForbidden, "You may not see the audit log's sinks.")
		}
		return nil
	}
	id, ok := realtime.ImpersonationOf(topic)
	if !ok {
		return standin.Errorf(standin.EForbidden, "You may not subscribe to this topic.")
	}
	return s.mayFollow(ctx, p, id)
}

// mayFollow decides a subscription to the topic of impersonation id. An id
// that names nothing and one the caller may not follow are refused alike,
// so that a refusal reveals nothing.
func (s *Subscriptions) mayFollow(ctx context.Context, p *standin.Principal, id string) error {
	hidden := standin.Errorf(standin.EForbidden, "There is no impersonation session with this id that you may follow.")
	if p.Impersonation != nil {
		if p.Impersonation.ID == id {
			return nil
		}
		return hidden
	}
	_, err := s.cfg.Impersonations.Get(ctx, p.Subject, id)
	if standin.ErrorCode(err) == standin.ENotFound {
		return hidden
	}
	return err
}

// CanReceive implements realtime.Authorizer. It is asked for every event
// and recipient, so it decides from the event's Meta and cached policy
// decisions; an event it cannot place is withheld.
func (s *Subscriptions) CanReceive(ctx context.Context, rp *realtime.Principal, topic string, ev realtime.Event) bool {
	p := principalOf(rp)
	if p == nil {
		return false
	}
	switch topic {
	case realtime.TopicNotifications:
		// Notifications tell a person what happened to their account; an
		// agent acting as them reads their inbox but is not interrupted by
		// toasts meant for them (about the agent's own session, mostly).
		n, ok := ev.Meta.(*standin.Notification)
		return ok && n.UserID == p.Subject.ID && p.Impersonation == nil
	case realtime.TopicPresence:
		ok, err := s.cfg.Access.Staff(ctx, p)
		return ok && err == nil
	case realtime.TopicSinks:
		dec, err := s.cfg.Access.Decide(ctx, p, standin.ActList, standin.Object{Kind: standin.KindSink}, "")
		return err == nil && dec.Allowed
	case realtime.TopicActivity:
		e, ok := ev.Meta.(*standin.Event)
		return ok && s.allowedIn(ctx, p, standin.ActList, standin.KindActivity, e.Projects)
	}
	e, ok := ev.Meta.(*standin.Event)
	if id, isImp := realtime.ImpersonationOf(topic); !ok || !isImp || id != e.ImpersonationID {
		return false
	}
	if p.Impersonation != nil {
		return p.Impersonation.ID == e.ImpersonationID
	}
	if e.Actor.ID == p.Subject.ID {
		return true
	}
	// Those who may end it, and those who may moderate it.
	return s.allowedIn(ctx, p, standin.ActRevoke, standin.KindImpersonation, e.Projects) ||
		s.allowedIn(ctx, p, standin.ActModerate, standin.KindImpersonation, e.Projects)
}

// allowedIn reports whether p may do act on kind everywhere or in one of
// the projects an event concerns; a decision that cannot be made is a
// refusal.
func (s *Subscriptions) allowedIn(ctx context.Context, p *standin.Principal, act, kind string, projects []string) bool {
	sc, err := s.cfg.Access.Scope(ctx, p, act, kind, projects)
	return err == nil && !sc.Empty()
}

// EventsAfter implements realtime.Backlog: the audit log for the activity
// feed and impersonation topics, the stored notifications of the
// subscriber, and for presence the current state when it is newer than
// afterSeq. The hub checks each event with CanReceive before sending it.
func (s *Subscriptions) EventsAfter(ctx context.Context, rp *realtime.Principal, topic string, afterSeq int64, fn func(realtime.Event) error) error {
	p := principalOf(rp)
	if p == nil {
		return realtime.Errorf(realtime.EUnauthenticated, "Sign in to continue.")
	}
	audited := func(e *standin.Event) error {
		if ev, ok := auditEvent(s.log, e); ok {
			return fn(ev)
		}
		return nil
	}
	switch topic {
	case realtime.TopicActivity:
		return s.cfg.Audit.EventsAfter(ctx, afterSeq, audited)
	case realtime.TopicNotifications:
		return s.cfg.Notifications.NotificationsAfter(ctx, p.Subject.ID, afterSeq, func(n *standin.Notification) error {
			if ev, ok := notificationEvent(s.log, n); ok {
				return fn(ev)
			}
			return nil
		})
	case realtime.TopicPresence:
		st := s.cfg.Presence.State()
		if st.Version > afterSeq {
			if ev, ok := presenceEvent(s.log, st, nil); ok {
				return fn(ev)
			}
		}
		return nil
	}
	id, ok := realtime.ImpersonationOf(topic)
	if !ok {
		return nil
	}
	return s.cfg.Audit.EventsMatching(ctx, standin.EventFilter{ImpersonationID: id, AfterSeq: afterSeq}, audited)
}
