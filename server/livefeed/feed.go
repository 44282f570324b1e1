// Package livefeed is the console's live feed: what the realtime hub
// carries and to whom. It publishes committed audit events on the
// activity feed and on the topic of their impersonation, notifications to
// their user, presence changes to support staff and session changes to
// the session's own tabs (Feed); and it decides, by the same rules as the
// HTTP API, who may open a socket, subscribe to and receive what, and
// replays what a reconnecting client missed (Subscriptions).
//
// Only what is committed is published: audit events come from the audit
// log's commit hook, notifications once stored. Live delivery covers what
// this server commits; a client of another server sharing the database
// sees those events on its next replay.
//
// It defines the one JSON form of a notification (NotificationJSON) and
// carries audit events in the one JSON form of the audit log
// (audit.ViewJSON).
package livefeed

import (
	"log/slog"
	"sync/atomic"

	"github.com/coder/websocket"

	"standin/realtime"
	"standin/server/presence"
	"standin/server/standin"
)

// Hub is what the feed publishes through: the realtime hub.
type Hub interface {
	Publish(topic string, ev realtime.Event) error
	PublishSession(sessionID string, ev realtime.Event) error
	CloseSession(sessionID string, code websocket.StatusCode, reason string)
}

var _ Hub = (*realtime.Hub)(nil)

// Feed publishes what happens in the console to the hub. Its hooks may be
// handed to the audit log, the presence tracker and the impersonation
// workflow before the hub exists: until Attach, no socket can be open,
// so they publish nothing. Its methods are safe for concurrent use and
// never block.
type Feed struct {
	hub atomic.Pointer[hubRef]
	log *slog.Logger
}

type hubRef struct{ Hub }

// New returns a feed that logs to log (nil discards).
func New(log *slog.Logger) *Feed {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Feed{log: log}
}

// Attach sets the hub the feed publishes through, once; a second call
// panics, as the hub is the one way to every socket.
func (f *Feed) Attach(h Hub) {
	if !f.hub.CompareAndSwap(nil, &hubRef{h}) {
		panic("livefeed: a hub is attached already")
	}
}

// hubOf returns the attached hub, or nil before Attach.
func (f *Feed) hubOf() Hub {
	if r := f.hub.Load(); r != nil {
		return r.Hub
	}
	return nil
}

// publish sends ev on topic once the hub exists.
func (f *Feed) publish(topic string, ev realtime.Event) {
	h := f.hubOf()
	if h == nil {
		return
	}
	if err := h.Publish(topic, ev); err != nil {
		f.log.Error("livefeed: publishing failed", "topic", topic, "seq", ev.Seq, "err", err)
	}
}

// Committed is the audit log's commit hook: it runs on the log's
// appender, in seq order, and never blocks (the hub only queues). Each
// event goes to the activity feed and, when it belongs to one, to the
// topic of its impersonation.
func (f *Feed) Committed(evs []*standin.Event) {
	for _, e := range evs {
		ev, ok := auditEvent(f.log, e)
		if !ok {
			continue
		}
		f.publish(realtime.TopicActivity, ev)
		if topic := realtime.ImpersonationTopic(e.ImpersonationID); e.ImpersonationID != "" && realtime.ValidTopic(topic) {
			f.publish(topic, ev)
		}
	}
}

// Notified publishes a stored notification to its user.
func (f *Feed) Notified(n *standin.Notification) {
	if ev, ok := notificationEvent(f.log, n); ok {
		f.publish(realtime.TopicNotifications, ev)
	}
}

// PresenceChanged is the presence tracker's change hook.
func (f *Feed) PresenceChanged(s presence.State, c presence.Change) {
	if ev, ok := presenceEvent(f.log, s, &c); ok {
		f.publish(realtime.TopicPresence, ev)
	}
}

// ImpersonationStarted tells the tabs of oldSession, the actor's session
// before it, that imp started.
func (f *Feed) ImpersonationStarted(imp *standin.Impersonation, oldSession string) {
	f.sessionChanged(sessionStarted, imp, []string{oldSession})
}

// ImpersonationEnded tells the tabs of the sessions sessionIDs that imp
// ended.
func (f *Feed) ImpersonationEnded(imp *standin.Impersonation, sessionIDs []string) {
	f.sessionChanged(sessionEnded, imp, sessionIDs)
}

func (f *Feed) sessionChanged(typ string, imp *standin.Impersonation, ids []string) {
	h := f.hubOf()
	if h == nil || len(ids) == 0 {
		return
	}
	payload, err := sessionPayload(typ, imp)
	if err != nil {
		f.log.Error("livefeed: encoding a session change failed", "err", err)
		return
	}
	for _, id := range ids {
		if err := h.PublishSession(id, realtime.Event{Payload: payload}); err != nil {
			f.log.Error("livefeed: publishing a session change failed", "err", err)
		}
	}
}

// SessionEnded closes the sockets of session id, which ended by logout,
// revocation or expiry, with realtime.StatusSessionEnded: its tabs do not
// reconnect until someone signs in again.
func (f *Feed) SessionEnded(id string) {
	if h := f.hubOf(); h != nil {
		h.CloseSession(id, realtime.StatusSessionEnded, realtime.ReasonSessionEnded)
	}
}

// SessionReplaced closes the sockets of session id, replaced by a new
// session of the same person, with realtime.StatusSessionChanged: its tabs
// reconnect at once with the new cookie.
func (f *Feed) SessionReplaced(id string) {
	if h := f.hubOf(); h != nil {
		h.CloseSession(id, realtime.StatusSessionChanged, realtime.ReasonSessionChanged)
	}
}
