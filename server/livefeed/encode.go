package livefeed

import (
	"encoding/json"
	"log/slog"
	"time"

	"standin/realtime"
	"standin/server/audit"
	"standin/server/presence"
	"standin/server/standin"
)

// NotificationJSON is a notification's JSON form, the one definition of
// it: GET /api/v1/notifications lists it and the notifications topic
// carries it.
type NotificationJSON struct {
	ID         string `json:"id"`
	Seq        int64  `json:"seq"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Body       string `json:"body"`
	ActorName  string `json:"actor_name"`
	ActorEmail string `json:"actor_email,omitempty"`
	Reason     string `json:"reason"`
	Until      string `json:"until,omitempty"`
	At         string `json:"at"`
	// ImpersonationID is the session it tells of: its summary is
	// GET /api/v1/impersonations/{id}/summary.
	ImpersonationID string `json:"impersonation_id,omitempty"`
}

// NotificationView converts a notification to its JSON form; times are
// RFC 3339 in whole seconds, and a zero Until is left out.
func NotificationView(n *standin.Notification) NotificationJSON {
	return NotificationJSON{ID: n.ID, Seq: n.Seq, Type: n.Type, Title: n.Title, Body: n.Body,
		ActorName: n.ActorName, ActorEmail: n.ActorEmail, Reason: n.Reason,
		Until: standin.FormatTime(n.Until), At: standin.FormatTime(n.At), ImpersonationID: n.ImpersonationID}
}

// auditEvent is e as the activity feed and impersonation topics carry it;
// e itself rides along as the event's Meta for CanReceive.
func auditEvent(log *slog.Logger, e *standin.Event) (realtime.Event, bool) {
	payload, err := json.Marshal(audit.ViewJSON(e))
	if err != nil {
		log.Error("livefeed: encoding an audit event failed", "seq", e.Seq, "err", err)
		return realtime.Event{}, false
	}
	return realtime.Event{Seq: e.Seq, Payload: payload, Meta: e}, true
}

// notificationEvent is n as the notifications topic carries it, n itself
// as its Meta.
func notificationEvent(log *slog.Logger, n *standin.Notification) (realtime.Event, bool) {
	payload, err := json.Marshal(NotificationView(n))
	if err != nil {
		log.Error("livefeed: encoding a notification failed", "notification", n.ID, "err", err)
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

// presenceEvent is the presence state s, and the change c that led to it
// (nil when replayed), as the presence topic carries them.
func presenceEvent(log *slog.Logger, s presence.State, c *presence.Change) (realtime.Event, bool) {
	payload, err := json.Marshal(presenceMessage{State: s, Change: c})
	if err != nil {
		log.Error("livefeed: encoding presence failed", "err", err)
		return realtime.Event{}, false
	}
	return realtime.Event{Seq: s.Version, Payload: payload}, true
}

// Types of session messages.
const (
	sessionStarted = "impersonation.started"
	sessionEnded   = "impersonation.ended"
)

// sessionMessage tells a session's tabs that it switched to or from an
// impersonation; the hub then closes their sockets with
// realtime.StatusSessionChanged so they reconnect with the new cookie.
type sessionMessage struct {
	Type          string          `json:"type"`
	Impersonation sessionImpJSON  `json:"impersonation"`
	Cause         string          `json:"cause,omitempty"`
	EndedWords    string          `json:"ended_words,omitempty"` // how it ended and who ended it, in words
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

// sessionPayload encodes the session message of type typ about imp.
func sessionPayload(typ string, imp *standin.Impersonation) ([]byte, error) {
	words := ""
	if !imp.EndedAt.IsZero() {
		words = imp.EndWords()
	}
	return json.Marshal(sessionMessage{
		Type: typ, Cause: imp.Cause, EndedWords: words,
		Impersonation: sessionImpJSON{ID: imp.ID, Reason: imp.Reason, StartedAt: nanos(imp.StartedAt),
			ExpiresAt: nanos(imp.ExpiresAt), EndedAt: nanos(imp.EndedAt)},
		Actor:   presence.Person{ID: imp.ActorID, Name: imp.ActorName},
		Subject: presence.Person{ID: imp.SubjectID, Name: imp.SubjectName},
	})
}

// nanos formats t as RFC 3339 in UTC with the fraction it needs; the zero
// time is "".
func nanos(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
