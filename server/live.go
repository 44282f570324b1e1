package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"standin/realtime"
	"standin/server/access"
	"standin/server/audit"
	"standin/server/httpapi"
	"standin/server/impersonation"
	"standin/server/mongostore"
	"standin/server/presence"
	"standin/server/standin"
)

// live connects what happens in the console to the realtime hub. It
// publishes committed audit events on the activity feed and on the channel
// of their impersonation, notifications to their user, presence changes to
// support staff and session changes to the session's own tabs. As the
// hub's Authorizer it decides who may subscribe to and receive what, by
// the same rules as the HTTP API; as its Backlog it reads what a
// reconnecting client missed.
//
// Only what is committed is published: audit events come from the audit
// log's commit hook, notifications once stored. Live delivery covers what
// this server commits; a client of another server sharing the database
// sees those events on its next replay.
type live struct {
	hub      atomic.Pointer[realtime.Hub]
	access   *access.Decider
	events   *audit.Log
	db       *mongostore.DB
	imps     *impersonation.Service
	presence *presence.Tracker
	log      *slog.Logger
}

var (
	_ realtime.Authorizer = (*live)(nil)
	_ realtime.Backlog    = (*live)(nil)
)

// publish sends ev on topic once the hub exists; before that no socket
// can be open.
func (l *live) publish(topic string, ev realtime.Event) {
	h := l.hub.Load()
	if h == nil {
		return
	}
	if err := h.Publish(topic, ev); err != nil {
		l.log.Error("realtime: publishing failed", "topic", topic, "seq", ev.Seq, "err", err)
	}
}

// committed is the audit log's commit hook: it runs on the log's appender,
// in seq order, and never blocks (Publish only queues).
func (l *live) committed(evs []*standin.Event) {
	for _, e := range evs {
		ev, ok := l.auditEvent(e)
		if !ok {
			continue
		}
		l.publish(realtime.TopicActivity, ev)
		if topic := realtime.ImpersonationTopic(e.ImpersonationID); e.ImpersonationID != "" && realtime.ValidTopic(topic) {
			l.publish(topic, ev)
		}
	}
}

func (l *live) auditEvent(e *standin.Event) (realtime.Event, bool) {
	payload, err := httpapi.MarshalEvent(e)
	if err != nil {
		l.log.Error("realtime: encoding an audit event failed", "seq", e.Seq, "err", err)
		return realtime.Event{}, false
	}
	return realtime.Event{Seq: e.Seq, Payload: payload, Meta: e}, true
}

// notified publishes a stored notification to its user.
func (l *live) notified(n *standin.Notification) {
	if ev, ok := l.notification(n); ok {
		l.publish(realtime.TopicNotifications, ev)
	}
}

func (l *live) notification(n *standin.Notification) (realtime.Event, bool) {
	payload, err := httpapi.MarshalNotification(n)
	if err != nil {
		l.log.Error("realtime: encoding a notification failed", "notification", n.ID, "err", err)
		return realtime.Event{}, false
	}
	return realtime.Event{Seq: n.Seq, Payload: payload, Meta: n}, true
}

// presenceMessage is a presence event: the change and the whole state it
// led to.
type presenceMessage struct {
	presence.State
	Change *presence.Change `json:"change,omitempty"`
}

// presenceChanged is the presence tracker's change hook.
func (l *live) presenceChanged(s presence.State, c presence.Change) {
	if ev, ok := l.presenceEvent(s, &c); ok {
		l.publish(realtime.TopicPresence, ev)
	}
}

func (l *live) presenceEvent(s presence.State, c *presence.Change) (realtime.Event, bool) {
	payload, err := json.Marshal(presenceMessage{State: s, Change: c})
	if err != nil {
		l.log.Error("realtime: encoding presence failed", "err", err)
		return realtime.Event{}, false
	}
	return realtime.Event{Seq: s.Version, Payload: payload}, true
}

// sessionMessage tells a session's tabs that it switched to or from an
// impersonation; the hub then closes their sockets with
// realtime.StatusSessionChanged so they reconnect with the new cookie.
type sessionMessage struct {
	Type          string          `json:"type"`
	Impersonation sessionImpJSON  `json:"impersonation"`
	Cause         string          `json:"cause,omitempty"`
	Actor         presence.Person `json:"actor"`
	Subject       presence.Person `json:"subject"`
}

type sessionImpJSON struct {
	ID        string `json:"id"`
	Reason    string `json:"reason"`
	StartedAt string `json:"started_at"`
	ExpiresAt string `json:"expires_at"`
	EndedAt   string `json:"ended_at,omitempty"`
}

// sessionChanged tells the tabs of the sessions ids of an impersonation's
// start or end.
func (l *live) sessionChanged(typ string, imp *standin.Impersonation, ids []string) {
	h := l.hub.Load()
	if h == nil || len(ids) == 0 {
		return
	}
	m := sessionMessage{
		Type: typ, Cause: imp.Cause,
		Impersonation: sessionImpJSON{ID: imp.ID, Reason: imp.Reason, StartedAt: rfc3339(imp.StartedAt),
			ExpiresAt: rfc3339(imp.ExpiresAt), EndedAt: rfc3339(imp.EndedAt)},
		Actor:   presence.Person{ID: imp.ActorID, Name: imp.ActorName},
		Subject: presence.Person{ID: imp.SubjectID, Name: imp.SubjectName},
	}
	payload, err := json.Marshal(m)
	if err != nil {
		l.log.Error("realtime: encoding a session change failed", "err", err)
		return
	}
	for _, id := range ids {
		if err := h.PublishSession(id, realtime.Event{Payload: payload}); err != nil {
			l.log.Error("realtime: publishing a session change failed", "err", err)
		}
	}
}

// CanSubscribe implements realtime.Authorizer. Every rule looks at the
// effective user (the subject while impersonating), as the HTTP API does:
// an agent acting as a user sees what that user would.
func (l *live) CanSubscribe(ctx context.Context, p *standin.Principal, topic string) error {
	switch topic {
	case realtime.TopicNotifications:
		return nil
	case realtime.TopicActivity:
		// Anyone who may read some of it, as GET /api/v1/activity decides.
		sc, err := l.access.Scope(ctx, p, standin.ActList, standin.KindActivity, p.Subject.ProjectIDs())
		if err != nil {
			return err
		}
		if sc.Empty() {
			return standin.Errorf(standin.EForbidden, "You do not have permission to read the activity log.")
		}
		return nil
	case realtime.TopicPresence:
		ok, err := l.staff(ctx, p)
		if err != nil {
			return err
		}
		if !ok {
			return standin.Errorf(standin.EForbidden, "Only support staff see who is looking at which user.")
		}
		return nil
	}
	id, ok := strings.CutPrefix(topic, "impersonation:")
	if !ok {
		return standin.Errorf(standin.EForbidden, "You may not subscribe to this topic.")
	}
	// An id that names nothing and one the caller may not follow are
	// refused alike, so that a refusal reveals nothing.
	hidden := standin.Errorf(standin.EForbidden, "There is no impersonation session with this id that you may follow.")
	if p.Impersonation != nil {
		if p.Impersonation.ID == id {
			return nil
		}
		return hidden
	}
	imp, err := l.db.ImpersonationByID(ctx, id)
	if standin.ErrorCode(err) == standin.ENotFound {
		return hidden
	}
	if err != nil {
		return err
	}
	if !l.imps.CanSee(ctx, p.Subject, imp) {
		return hidden
	}
	return nil
}

// CanReceive implements realtime.Authorizer. It is asked for every event
// and recipient, so it decides from the event's Meta and cached policy
// decisions; an event it cannot place is withheld.
func (l *live) CanReceive(ctx context.Context, p *standin.Principal, topic string, ev realtime.Event) bool {
	switch topic {
	case realtime.TopicNotifications:
		// Notifications tell a person what happened to their account; an
		// agent acting as them reads their inbox but is not interrupted by
		// toasts meant for them (about the agent's own session, mostly).
		n, ok := ev.Meta.(*standin.Notification)
		return ok && n.UserID == p.Subject.ID && p.Impersonation == nil
	case realtime.TopicPresence:
		ok, err := l.staff(ctx, p)
		return ok && err == nil
	case realtime.TopicActivity:
		e, ok := ev.Meta.(*standin.Event)
		if !ok {
			return false
		}
		return l.allowedIn(ctx, p, standin.ActList, standin.KindActivity, e.Projects)
	}
	e, ok := ev.Meta.(*standin.Event)
	if !ok || topic != realtime.ImpersonationTopic(e.ImpersonationID) {
		return false
	}
	if p.Impersonation != nil {
		return p.Impersonation.ID == e.ImpersonationID
	}
	if e.Actor.ID == p.Subject.ID {
		return true
	}
	return l.allowedIn(ctx, p, standin.ActRevoke, standin.KindImpersonation, e.Projects)
}

// allowedIn reports whether p may do act on kind everywhere or in one of
// the projects an event concerns; a decision that cannot be made is a
// refusal.
func (l *live) allowedIn(ctx context.Context, p *standin.Principal, act, kind string, projects []string) bool {
	sc, err := l.access.Scope(ctx, p, act, kind, projects)
	return err == nil && !sc.Empty()
}

// staff reports whether p may look people up in the user directory, which
// is what presence is about.
func (l *live) staff(ctx context.Context, p *standin.Principal) (bool, error) {
	if p.Impersonation != nil {
		return false, nil
	}
	dec, err := l.access.Decide(ctx, p, standin.ActRead, standin.Object{Kind: standin.KindUser}, "")
	return dec.Allowed, err
}

// EventsAfter implements realtime.Backlog: the audit log for the activity
// feed and impersonation channels, the stored notifications of the
// subscriber, and for presence the current state when it is newer than
// afterSeq. The hub checks each event with CanReceive before sending it.
func (l *live) EventsAfter(ctx context.Context, topic string, afterSeq int64, fn func(realtime.Event) error) error {
	p := standin.PrincipalFrom(ctx)
	if p == nil || p.Subject == nil {
		return standin.Errorf(standin.EUnauthenticated, "Sign in to continue.")
	}
	switch topic {
	case realtime.TopicActivity:
		return l.events.EventsAfter(ctx, afterSeq, func(e *standin.Event) error {
			if ev, ok := l.auditEvent(e); ok {
				return fn(ev)
			}
			return nil
		})
	case realtime.TopicNotifications:
		return l.db.NotificationsAfter(ctx, p.Subject.ID, afterSeq, func(n *standin.Notification) error {
			if ev, ok := l.notification(n); ok {
				return fn(ev)
			}
			return nil
		})
	case realtime.TopicPresence:
		s := l.presence.State()
		if s.Version > afterSeq {
			if ev, ok := l.presenceEvent(s, nil); ok {
				return fn(ev)
			}
		}
		return nil
	}
	id, ok := strings.CutPrefix(topic, "impersonation:")
	if !ok {
		return nil
	}
	return l.events.EventsMatching(ctx, standin.EventFilter{ImpersonationID: id, AfterSeq: afterSeq}, func(e *standin.Event) error {
		if ev, ok := l.auditEvent(e); ok {
			return fn(ev)
		}
		return nil
	})
}

// rfc3339 formats t for JSON; the zero time is "".
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
