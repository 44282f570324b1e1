package realtime

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/coder/websocket"
)

// Topics a client can subscribe to. Besides these, each impersonation
// session has its own topic, named by ImpersonationTopic.
const (
	// TopicSession carries the state of the viewer's own session. It is
	// private to each session: events go only to sockets of the session
	// named in PublishSession, and any signed-in client may subscribe.
	TopicSession = "session"
	// TopicActivity is the activity feed, scoped per recipient by the
	// Authorizer.
	TopicActivity = "activity"
	// TopicNotifications carries the viewer's own notifications.
	TopicNotifications = "notifications"
	// TopicPresence says who is looking at which user.
	TopicPresence = "presence"
	// TopicSinks carries how the delivery of the audit log's sinks
	// stands, for those who may see the sinks.
	TopicSinks = "sinks"
)

const impersonationPrefix = "impersonation:"

// maxTopicID bounds the id part of an impersonation topic, so a client
// cannot make the hub hold arbitrarily long keys.
const maxTopicID = 64

// ImpersonationTopic returns the topic of the impersonation session id.
// It is a valid topic when id is 1 to 64 letters, digits, '-', '_' or
// '.'.
func ImpersonationTopic(id string) string { return impersonationPrefix + id }

// ImpersonationOf returns the id of the impersonation session whose topic
// is topic, and false when topic is not a valid impersonation topic. It is
// the one place a topic is parsed.
func ImpersonationOf(topic string) (string, bool) {
	id, ok := strings.CutPrefix(topic, impersonationPrefix)
	if !ok || id == "" || len(id) > maxTopicID {
		return "", false
	}
	for _, r := range id {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
		default:
			return "", false
		}
	}
	return id, true
}

// ValidTopic reports whether topic has one of the shapes the hub knows:
// a fixed topic name, or "impersonation:" followed by 1 to 64 letters,
// digits, '-', '_' or '.'. Clients subscribing to anything else get an
// EUnknownTopic error.
func ValidTopic(topic string) bool {
	switch topic {
	case TopicSession, TopicActivity, TopicNotifications, TopicPresence, TopicSinks:
		return true
	}
	_, ok := ImpersonationOf(topic)
	return ok
}

// Error codes sent in {"type":"error","topic":T,"code":C,"message":M}
// messages. The socket stays open after every one of them. Clients switch
// on the code, so codes are never renamed.
const (
	// EBadMessage: the message is not a JSON object with a known "type",
	// lacks a topic, has a negative after_seq, or came in a binary frame.
	EBadMessage = "bad_message"
	// EUnknownTopic: the topic has no shape the hub knows (see ValidTopic).
	EUnknownTopic = "unknown_topic"
	// EForbidden: the Authorizer refused the subscription.
	EForbidden = "forbidden"
	// EAlreadySubscribed: the socket is already subscribed to the topic;
	// unsubscribe first to subscribe again with another after_seq.
	EAlreadySubscribed = "already_subscribed"
	// ETooManySubscriptions: the socket holds Config.MaxSubscriptions
	// subscriptions already.
	ETooManySubscriptions = "too_many_subscriptions"
	// EReplayFailed: missed events could not be read from the Backlog. The
	// subscription is dropped, so the client never sees a stream with a gap;
	// it may subscribe again.
	EReplayFailed = "replay_failed"
)

// A subscription that could not be checked because a dependency failed is
// answered with code EUnavailable; the client may try again.

// Close codes and reasons the hub ends sockets with, besides the standard
// websocket.StatusGoingAway (Shutdown), websocket.StatusMessageTooBig (a
// frame over Config.ReadLimit), websocket.StatusPolicyViolation (too many
// requests in flight, or no pong in time) and websocket.StatusTryAgainLater
// (the session could not be re-checked when it reached its expiry).
const (
	// StatusSessionEnded: the session ended (logout, revocation, expiry).
	// Clients should not reconnect until they sign in again.
	StatusSessionEnded websocket.StatusCode = 4001
	// StatusSessionChanged: the session was replaced by a new one for the
	// same person (impersonation started or ended; the cookie now holds
	// the new token). Clients reconnect at once and reload their session.
	StatusSessionChanged websocket.StatusCode = 4002
	// StatusSlowConsumer: the socket's queue overflowed because the client
	// read too slowly. Clients reconnect and subscribe with after_seq set to
	// the last seq they saw.
	StatusSlowConsumer websocket.StatusCode = 4008
	// StatusTooManySockets: the socket was refused as soon as it opened,
	// because its session or its person already holds as many sockets as
	// the hub allows (Config.MaxSocketsPerSession, MaxSocketsPerUser).
	// Clients say so and do not reconnect at once: only after a long
	// pause, or once the person has closed other tabs.
	StatusTooManySockets websocket.StatusCode = 4029
)

// Close reasons sent with the hub's close codes.
const (
	ReasonSessionEnded    = "session ended"
	ReasonSessionChanged  = "session changed: reconnect"
	ReasonSlowConsumer    = "slow consumer: resume with after_seq"
	ReasonShutdown        = "server shutting down"
	ReasonTooManyInFlight = "too many requests in flight"
	ReasonPingTimeout     = "ping timeout"
	ReasonRecheckFailed   = "session could not be checked"

	ReasonTooManyForSession = "too many live connections for this session: close some tabs"
	ReasonTooManyForUser    = "too many live connections for this account: close some tabs or windows"
)

// Message types on the wire.
const (
	typeSubscribe    = "subscribe"
	typeUnsubscribe  = "unsubscribe"
	typeSubscribed   = "subscribed"
	typeUnsubscribed = "unsubscribed"
	typeError        = "error"
	typeEvent        = "event"
)

// clientMessage is one line a client sends.
type clientMessage struct {
	Type     string `json:"type"`
	Topic    string `json:"topic"`
	AfterSeq *int64 `json:"after_seq"`
}

// replyMessage answers a clientMessage.
type replyMessage struct {
	Type     string `json:"type"`
	Topic    string `json:"topic,omitempty"`
	AfterSeq *int64 `json:"after_seq,omitempty"`
	Code     string `json:"code,omitempty"`
	Message  string `json:"message,omitempty"`
}

// eventMessage carries one event. Seq is repeated beside the event so a
// client can resume even from an event object that lacks it.
type eventMessage struct {
	Type  string          `json:"type"`
	Topic string          `json:"topic"`
	Seq   int64           `json:"seq"`
	Event json.RawMessage `json:"event"`
}

// encodeEvent returns the single line that carries ev on topic. Marshal
// compacts the payload, so the line holds no raw newline.
func encodeEvent(topic string, ev Event) ([]byte, error) {
	payload := ev.Payload
	if len(payload) == 0 {
		payload = json.RawMessage(`{"seq":` + strconv.FormatInt(ev.Seq, 10) + `}`)
	}
	return json.Marshal(eventMessage{Type: typeEvent, Topic: topic, Seq: ev.Seq, Event: payload})
}

// encodeReply returns the line that carries m.
func encodeReply(m replyMessage) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// Only strings and an *int64 are marshalled; this cannot fail.
		panic(err)
	}
	return b
}
