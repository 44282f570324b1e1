// Package realtime pushes events to browsers over WebSocket: the hub, its
// topics and subscriptions, and the handler that upgrades GET /ws.
//
// A client subscribes to topics with {"type":"subscribe","topic":T,
// "after_seq":N} and receives {"type":"event","topic":T,"seq":N,"event":{...}}
// messages. A text frame carries one or more messages, one JSON object per
// line, so messages queued together share a write.
//
// Publishing never blocks: every socket has a bounded queue, and a socket
// whose queue overflows is closed with StatusSlowConsumer so it can resume
// with after_seq. Subscriptions are authorized when made and every event
// again for every recipient, since permissions change while sockets are
// open.
//
// Sockets are capped per session and per person (a socket past a cap is
// closed at once with StatusTooManySockets) and in total, never taking the
// file descriptors the rest of the process needs (past that bound an
// upgrade is refused with 503).
package realtime

import (
	"context"
	"encoding/json"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Principal is who a socket belongs to, as Sessions finds them behind a
// session cookie. The hub reads only its session, person and expiry; the
// application's own idea of the principal travels in Value and is handed
// back, untouched, to the Authorizer and the Backlog.
type Principal struct {
	// SessionID names the sign-in session: PublishSession and
	// CloseSession reach its sockets, and MaxSocketsPerSession counts
	// them. Required.
	SessionID string
	// UserID names the person, whose sockets across all their sessions
	// MaxSocketsPerUser counts. Required.
	UserID string
	// ExpiresAt is when the session ends unless it is extended: the hub
	// then asks Sessions again and closes the socket with
	// StatusSessionEnded unless the session goes on. Zero never expires.
	ExpiresAt time.Time
	// Value is the application's principal.
	Value any
	// LogAttrs are logged with the socket's messages besides the user, as
	// slog key-value pairs (whom the session acts as, say).
	LogAttrs []any
}

// Sessions turns the token in the session cookie into the principal it
// authenticates. It returns an error with code EUnauthenticated for an
// unknown or expired token, and one with code EUnavailable when it cannot
// tell for now; any other error is a fault.
type Sessions interface {
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// Authorizer decides who may subscribe to and receive which events.
//
// CanSubscribe returns nil to allow a subscription. A refusal is an error
// whose message (ErrorMessage) is shown to the client under code
// EForbidden; an error with code EInternal or EUnavailable, and any error
// that is not an *Error, is a fault, logged and reported as EUnavailable.
//
// CanReceive is asked for every event and every recipient, on the
// recipient's own writer goroutine, so a slow answer delays only that
// socket. It is not asked for TopicSession, which the hub scopes itself.
type Authorizer interface {
	CanSubscribe(ctx context.Context, p *Principal, topic string) error
	CanReceive(ctx context.Context, p *Principal, topic string, ev Event) bool
}

// Backlog reads stored events so that a client subscribing with after_seq
// receives what it missed before the live stream.
//
// EventsAfter calls fn for every event of topic with a seq above afterSeq,
// in increasing seq order, and stops with fn's error if fn returns one. p
// is the subscriber, for topics whose events differ by person; the hub
// checks each event with CanReceive before sending it.
type Backlog interface {
	EventsAfter(ctx context.Context, p *Principal, topic string, afterSeq int64, fn func(Event) error) error
}

// Event is one event on a topic.
type Event struct {
	// Seq orders a topic's events; a client resumes after the last Seq it
	// saw. Zero means the event is not stored and cannot be replayed.
	Seq int64
	// Payload is the JSON object clients receive as "event". It should carry
	// "seq" like the API's events do; an empty Payload is sent as
	// {"seq":Seq}.
	Payload json.RawMessage
	// Meta is handed to the Authorizer's CanReceive with the event, so it
	// can decide from what the event is about without decoding Payload.
	// It is never sent.
	Meta any
}

// Config configures a Hub. Zero values select the documented defaults.
type Config struct {
	// Sessions authenticates the session cookie. Required.
	Sessions Sessions
	// Cookie names the cookie that carries the session token. Default
	// DefaultCookie.
	Cookie string
	// Authorizer decides subscriptions to every topic but TopicSession.
	// Nil refuses them all with EForbidden.
	Authorizer Authorizer
	// Backlog replays events missed before a subscription. Nil accepts and
	// echoes after_seq but replays nothing.
	Backlog Backlog
	// Logger receives the hub's logs. Nil discards them. Tokens are never
	// logged.
	Logger *slog.Logger
	// OriginPatterns lists the host patterns (path.Match syntax, as in
	// websocket.AcceptOptions) of other origins allowed to connect. The
	// request's own host is always allowed; nil allows only it.
	OriginPatterns []string
	// QueueSize bounds the messages waiting for one socket, and the live
	// events held back for one subscription while its backlog is replayed.
	// Default 256.
	QueueSize int
	// WriteTimeout bounds every write to a socket. Default 5s.
	WriteTimeout time.Duration
	// PingInterval is the time between keepalive pings. Default 30s;
	// negative disables pings.
	PingInterval time.Duration
	// PingTimeout bounds the wait for a pong. Default 10s.
	PingTimeout time.Duration
	// ReadLimit is the largest frame a client may send, in bytes; a larger
	// one closes the socket with websocket.StatusMessageTooBig. Default 8 KiB.
	ReadLimit int64
	// AuthTimeout bounds each call to Sessions and to
	// Authorizer.CanSubscribe. Default 10s.
	AuthTimeout time.Duration
	// MaxSubscriptions bounds the topics one socket may subscribe to.
	// Default 64.
	MaxSubscriptions int

	// MaxSocketsPerSession bounds the sockets one sign-in session holds
	// open on this hub at once: one a tab, so a person never meets the
	// default of 32. A socket past it is accepted and closed at once with
	// StatusTooManySockets and ReasonTooManyForSession.
	MaxSocketsPerSession int
	// MaxSocketsPerUser bounds the sockets of one person (the session's
	// Principal.UserID) across all their sessions on this hub.
	// Default 128. A socket past it is closed with StatusTooManySockets
	// and ReasonTooManyForUser.
	MaxSocketsPerUser int
	// MaxSockets bounds all the sockets open on this hub at once. Whatever
	// it says, sockets never take the process's last ReservedFiles file
	// descriptors (RLIMIT_NOFILE, read at every upgrade); zero sets no
	// bound but that one. An upgrade past the bound is refused before
	// upgrading with 503 and code EUnavailable.
	MaxSockets int
	// ReservedFiles is how many file descriptors sockets leave to the
	// rest of the process: HTTP connections, the database and its files.
	// Default DefaultReservedFiles, or half the limit when that is less.
	ReservedFiles int
}

// Defaults of Config.
const (
	DefaultCookie           = "session"
	DefaultQueueSize        = 256
	DefaultWriteTimeout     = 5 * time.Second
	DefaultPingInterval     = 30 * time.Second
	DefaultPingTimeout      = 10 * time.Second
	DefaultReadLimit        = 8 << 10
	DefaultAuthTimeout      = 10 * time.Second
	DefaultMaxSubscriptions = 64

	DefaultMaxSocketsPerSession = 32
	DefaultMaxSocketsPerUser    = 128
	DefaultReservedFiles        = 1024
)

// maxBatch bounds the messages merged into one frame.
const maxBatch = 64

// Hub routes published events to subscribed sockets. It is an
// http.Handler for the WebSocket endpoint. Its methods are safe for
// concurrent use.
type Hub struct {
	ctx context.Context
	cfg Config
	log *slog.Logger

	handlers sync.WaitGroup // ServeHTTP calls past the closing check, and their sockets

	mu       sync.RWMutex
	closing  bool
	conns    map[*conn]struct{}
	sessions map[string]map[*conn]struct{}         // by session ID
	topics   map[string]map[*subscription]struct{} // by subscription key

	// Sockets admitted and not closed yet: from before the upgrade until
	// the connection under them is closed, which is when they stop
	// holding a file descriptor. Guarded by mu.
	open       int
	bySession  map[string]int // counted against MaxSocketsPerSession
	byUser     map[string]int // counted against MaxSocketsPerUser
	fullWarned time.Time      // when refusing for the bound was last logged
}

// New returns a hub. ctx is the server's: it carries values to Sessions,
// Authorizer and Backlog calls, and cancelling it aborts those calls; it
// does not close sockets, which Shutdown does.
//
// New returns an error with code EInvalid when cfg.Sessions is nil or an
// origin pattern is malformed.
func New(ctx context.Context, cfg Config) (*Hub, error) {
	if cfg.Sessions == nil {
		return nil, Errorf(EInvalid, "The realtime hub needs a session store.")
	}
	for _, p := range cfg.OriginPatterns {
		if _, err := path.Match(strings.ToLower(p), ""); err != nil {
			return nil, Errorf(EInvalid, "The origin pattern %q is malformed.", p)
		}
	}
	if cfg.Cookie == "" {
		cfg.Cookie = DefaultCookie
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultReadLimit
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = DefaultAuthTimeout
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if cfg.MaxSocketsPerSession <= 0 {
		cfg.MaxSocketsPerSession = DefaultMaxSocketsPerSession
	}
	if cfg.MaxSocketsPerUser <= 0 {
		cfg.MaxSocketsPerUser = DefaultMaxSocketsPerUser
	}
	return &Hub{
		ctx:       ctx,
		cfg:       cfg,
		log:       cfg.Logger,
		conns:     make(map[*conn]struct{}),
		sessions:  make(map[string]map[*conn]struct{}),
		topics:    make(map[string]map[*subscription]struct{}),
		bySession: make(map[string]int),
		byUser:    make(map[string]int),
	}, nil
}

// Publish sends ev to every socket subscribed to topic whose principal the
// Authorizer lets receive it. It never blocks: a socket whose queue is full
// is closed with StatusSlowConsumer instead.
//
// Events of one topic should be published from one goroutine in seq order;
// every subscriber receives them in that order.
//
// Publish returns an error with code EInvalid when topic is not a valid
// topic, is TopicSession (use PublishSession), or ev.Payload is not valid
// JSON.
func (h *Hub) Publish(topic string, ev Event) error {
	if topic == TopicSession {
		return Errorf(EInvalid, "Session events are published with PublishSession.")
	}
	if !ValidTopic(topic) {
		return Errorf(EInvalid, "There is no topic %q.", topic)
	}
	return h.publish(topic, topic, ev)
}

// PublishSession sends ev on TopicSession to the sockets of session
// sessionID that subscribed to it, and to no other socket. Like Publish it
// never blocks, and returns an error with code EInvalid for an empty
// sessionID or a payload that is not valid JSON.
func (h *Hub) PublishSession(sessionID string, ev Event) error {
	if sessionID == "" {
		return Errorf(EInvalid, "A session event needs a session ID.")
	}
	return h.publish(sessionKey(sessionID), TopicSession, ev)
}

// sessionKey is the subscription key of a session's TopicSession. The '/'
// cannot occur in a valid topic, so keys never collide.
func sessionKey(sessionID string) string { return TopicSession + "/" + sessionID }

func (h *Hub) publish(key, topic string, ev Event) error {
	msg, err := encodeEvent(topic, ev)
	if err != nil {
		return &Error{Code: EInvalid, Message: "The event payload is not valid JSON.", Cause: err}
	}
	d := &delivery{topic: topic, ev: ev, msg: msg}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.topics[key] {
		s.offer(d)
	}
	return nil
}

// CloseSession closes every socket of session sessionID with code and
// reason, after writing what is already queued for them. Use it with
// StatusSessionEnded and ReasonSessionEnded when a session ends by logout
// or revocation. A reason longer than 123 bytes is cut.
func (h *Hub) CloseSession(sessionID string, code websocket.StatusCode, reason string) {
	reason = cutReason(reason)
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.sessions[sessionID] {
		c.fail(code, reason, true)
	}
}

// CloseAll closes every open socket with code and reason, after writing
// what is already queued for it: with StatusSessionChanged, every client
// reconnects, is authenticated again and resumes with after_seq, as after
// a server learns it may have missed news of some sessions.
func (h *Hub) CloseAll(code websocket.StatusCode, reason string) {
	reason = cutReason(reason)
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.conns {
		c.fail(code, reason, true)
	}
}

// Connections returns the number of open sockets.
func (h *Hub) Connections() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

// Shutdown refuses new sockets with 503, then closes the open ones with
// websocket.StatusGoingAway after writing what is already queued for them,
// and waits for them to finish. When ctx ends first it drops the remaining
// connections without finishing their close handshake and returns ctx's
// error.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()

	for _, c := range conns {
		c.fail(websocket.StatusGoingAway, ReasonShutdown, true)
	}
	done := make(chan struct{})
	go func() {
		h.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Sockets registered after the snapshot do not exist: closing
		// refuses them.
		for _, c := range conns {
			c.closeNow()
		}
		return ctx.Err()
	}
}

// enter admits a handler unless the hub is shutting down. The WaitGroup is
// only added to under the lock, before Shutdown starts waiting.
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.handlers.Add(1)
	return true
}

// register adds an accepted socket; it fails once Shutdown has begun.
func (h *Hub) register(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.conns[c] = struct{}{}
	set := h.sessions[c.sessionID]
	if set == nil {
		set = make(map[*conn]struct{})
		h.sessions[c.sessionID] = set
	}
	set[c] = struct{}{}
	c.registered = true
	return true
}

// unregister removes a socket and all its subscriptions, after which no
// publisher reaches it. The subscriptions stay active so that a draining
// socket still delivers what was queued for them.
func (h *Hub) unregister(c *conn) {
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()

	h.mu.Lock()
	defer h.mu.Unlock()
	c.registered = false
	delete(h.conns, c)
	if set := h.sessions[c.sessionID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.sessions, c.sessionID)
		}
	}
	for _, s := range subs {
		h.unrouteLocked(s)
	}
}

// addSub starts routing s's key to s, unless its socket is gone.
func (h *Hub) addSub(s *subscription) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.c.registered {
		return false
	}
	set := h.topics[s.key]
	if set == nil {
		set = make(map[*subscription]struct{})
		h.topics[s.key] = set
	}
	set[s] = struct{}{}
	return true
}

// removeSub ends s: nothing more is routed to it, and what is queued for
// it is skipped.
func (h *Hub) removeSub(s *subscription) {
	s.active.Store(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unrouteLocked(s)
}

func (h *Hub) unrouteLocked(s *subscription) {
	if set := h.topics[s.key]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.topics, s.key)
		}
	}
}

// maxCloseReason is the longest reason a close frame carries.
const maxCloseReason = 123

func cutReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	reason = reason[:maxCloseReason]
	// Do not leave part of a UTF-8 sequence at the end.
	for len(reason) > 0 {
		r, size := utf8.DecodeLastRuneInString(reason)
		if r != utf8.RuneError || size != 1 {
			break
		}
		reason = reason[:len(reason)-1]
	}
	return reason
}
