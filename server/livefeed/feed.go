// Package livefeed is the console's live feed: what the realtime hub
// carries and to whom. It publishes committed audit events on the
// activity feed and on the topic of their impersonation, notifications to
// their user, presence changes to support staff and session changes to
// the session's own tabs (Feed); and it decides, by the same rules as the
// HTTP API, who may open a socket, subscribe to and receive what, and
// replays what a reconnecting client missed (Subscriptions).
//
// Only what is committed is published: audit events come from the audit
// log's commit hook, notifications once stored. Every server sharing a
// database delivers what any of them committed (see Feed).
//
// It defines the one JSON form of a notification (NotificationJSON) and
// carries audit events in the one JSON form of the audit log
// (audit.ViewJSON).
package livefeed

import (
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
	"standin/server/presence"
	"standin/server/sinks"
	"standin/server/standin"
)

// Hub is what the feed publishes through: the realtime hub.
type Hub interface {
	Publish(topic string, ev realtime.Event) error
	PublishSession(sessionID string, ev realtime.Event) error
	CloseSession(sessionID string, code websocket.StatusCode, reason string)
	CloseAll(code websocket.StatusCode, reason string)
}

var _ Hub = (*realtime.Hub)(nil)

// Feed publishes what happens in the console to the hub. Its hooks may be
// handed to the audit log, the presence tracker and the impersonation
// workflow before the hub exists: until Attach, no socket can be open,
// so they publish nothing. Its methods are safe for concurrent use and
// never block.
//
// Every server sharing a database delivers to its own sockets what any
// of them did, by one path: audit events reach Committed from the audit
// log every server follows, and what is not an audit fact (a
// notification, a session's tabs to tell or close) is sent as a signal
// (UseSignals) that every server, this one included, hands back to
// Apply. Without signals the feed applies them here at once.
type Feed struct {
	hub    atomic.Pointer[hubRef]
	sender atomic.Pointer[senderRef]
	log    *slog.Logger
}

// Sender sends a signal to every server sharing the database, this one
// included (package signals' Stream), and never blocks.
type Sender interface {
	Send(kind string, data []byte)
}

type senderRef struct{ Sender }

// Kinds of the feed's signals.
const (
	signalNotification = "livefeed.notification"
	signalSession      = "livefeed.session"
	signalEnded        = "livefeed.session_ended"
	signalReplaced     = "livefeed.session_replaced"
	signalSinkHealth   = "livefeed.sink_health"
)

// sessionSignal tells the tabs of Sessions the message Payload.
type sessionSignal struct {
	Sessions []string        `json:"sessions"`
	Payload  json.RawMessage `json:"payload"`
}

// closeSignal closes the sockets of Session.
type closeSignal struct {
	Session string `json:"session"`
}

// SessionGone returns the session a signal says ended or was replaced on
// some server (ok false for any other signal): what keeps sessions in
// memory must forget it.
func SessionGone(kind string, data []byte) (id string, ok bool) {
	if kind != signalEnded && kind != signalReplaced {
		return "", false
	}
	var m closeSignal
	if json.Unmarshal(data, &m) != nil || m.Session == "" {
		return "", false
	}
	return m.Session, true
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

// UseSignals makes the feed send what is not an audit fact through s,
// once; a second call panics. The receiving end hands each signal, from
// any server, to Apply.
func (f *Feed) UseSignals(s Sender) {
	if !f.sender.CompareAndSwap(nil, &senderRef{s}) {
		panic("livefeed: signals are in use already")
	}
}

// signal sends v as a signal of kind to every server, or applies it here
// when the feed has no signals.
func (f *Feed) signal(kind string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		f.log.Error("livefeed: encoding a signal failed", "kind", kind, "err", err)
		return
	}
	if r := f.sender.Load(); r != nil {
		r.Send(kind, data)
		return
	}
	f.Apply(kind, data)
}

// Apply acts on a signal of the feed's, sent by any server: it publishes
// a notification, tells a session's tabs of a switch, or closes a
// session's sockets. Signals of other kinds are ignored.
func (f *Feed) Apply(kind string, data []byte) {
	h := f.hubOf()
	if h == nil {
		return
	}
	var err error
	switch kind {
	case signalNotification:
		var n standin.Notification
		if err = json.Unmarshal(data, &n); err == nil {
			if ev, ok := notificationEvent(f.log, &n); ok {
				f.publish(realtime.TopicNotifications, ev)
			}
		}
	case signalSession:
		var m sessionSignal
		if err = json.Unmarshal(data, &m); err == nil {
			for _, id := range m.Sessions {
				if perr := h.PublishSession(id, realtime.Event{Payload: m.Payload}); perr != nil {
					f.log.Error("livefeed: publishing a session change failed", "err", perr)
				}
			}
		}
	case signalSinkHealth:
		f.publish(realtime.TopicSinks, realtime.Event{Payload: data})
	case signalEnded, signalReplaced:
		var m closeSignal
		if err = json.Unmarshal(data, &m); err == nil {
			if kind == signalEnded {
				h.CloseSession(m.Session, realtime.StatusSessionEnded, realtime.ReasonSessionEnded)
			} else {
				h.CloseSession(m.Session, realtime.StatusSessionChanged, realtime.ReasonSessionChanged)
			}
		}
	}
	if err != nil {
		f.log.Error("livefeed: a signal could not be read", "kind", kind, "err", err)
	}
}

// SinkHealth tells the admins on every server how a sink's delivery
// stands, as the node delivering it sees it.
func (f *Feed) SinkHealth(h standin.SinkHealth) {
	f.signal(signalSinkHealth, sinks.HealthView(h.SinkID, &h, 0))
}

// Resync makes every socket of this server reconnect (closed with
// realtime.StatusSessionChanged): each is authenticated again and resumes
// its topics with after_seq. The server calls it when it learns it missed
// signals, so that a session that ended or switched meanwhile is not left
// with a socket that still speaks for it.
func (f *Feed) Resync() {
	if h := f.hubOf(); h != nil {
		h.CloseAll(realtime.StatusSessionChanged, realtime.ReasonSessionChanged)
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

// Notified publishes a stored notification to its user, on whichever
// server their sockets are.
func (f *Feed) Notified(n *standin.Notification) {
	f.signal(signalNotification, n)
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
	if len(ids) == 0 {
		return
	}
	payload, err := sessionPayload(typ, imp)
	if err != nil {
		f.log.Error("livefeed: encoding a session change failed", "err", err)
		return
	}
	f.signal(signalSession, sessionSignal{Sessions: ids, Payload: payload})
}

// SessionEnded closes the sockets of session id, which ended by logout,
// revocation or expiry, with realtime.StatusSessionEnded, on every
// server: its tabs do not reconnect until someone signs in again.
func (f *Feed) SessionEnded(id string) {
	f.closeHere(id, realtime.StatusSessionEnded, realtime.ReasonSessionEnded)
	f.signal(signalEnded, closeSignal{Session: id})
}

// SessionReplaced closes the sockets of session id, replaced by a new
// session of the same person, with realtime.StatusSessionChanged, on
// every server: its tabs reconnect at once with the new cookie.
//
// Unlike an end, the close travels only with the signals, this server's
// own sockets included, so that the session's switch sent before it
// (impersonation started or ended) reaches its tabs first. Should the
// signal not come back within replacedFallback, this server closes its
// own sockets all the same.
func (f *Feed) SessionReplaced(id string) {
	f.signal(signalReplaced, closeSignal{Session: id})
	if f.sender.Load() != nil {
		time.AfterFunc(replacedFallback, func() {
			f.closeHere(id, realtime.StatusSessionChanged, realtime.ReasonSessionChanged)
		})
	}
}

// replacedFallback is how long a replaced session's sockets on this
// server wait for the close signal before they are closed without it.
const replacedFallback = 5 * time.Second

// closeHere closes this server's own sockets of session id at once when
// the close also travels as a signal, whatever becomes of it; closing
// them again when it arrives does nothing. Without signals, the signal's
// own application here closes them.
func (f *Feed) closeHere(id string, code websocket.StatusCode, reason string) {
	if h := f.hubOf(); h != nil && f.sender.Load() != nil {
		h.CloseSession(id, code, reason)
	}
}
