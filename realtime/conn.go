package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// maxInFlight bounds the client lines read but not yet handled. A client
// that sends faster than its requests are answered is closed with
// websocket.StatusPolicyViolation rather than let the reader stall, which
// would also stall pongs.
const maxInFlight = 32

// errClosed stops a replay when the socket closes.
var errClosed = errors.New("realtime: socket closed")

// conn is one socket. An idle socket costs one goroutine, the reader, and
// holds no queue or buffer; other goroutines run only while they have work:
//
//   - serve, the reader, reads frames and queues their lines as commands;
//     when the socket has closed it waits for the rest to finish;
//   - runCommands answers the queued commands one at a time, replaying
//     backlogs; it starts with the first queued command and ends when none
//     is left;
//   - writer merges queued messages into frames; it starts with the first
//     queued message and ends when the queue is empty;
//   - closer, started by fail, stops routing to the socket, waits for the
//     writer, writes what is left when asked to drain, and closes;
//   - tick runs on the socket's one timer to ping the client and to
//     re-check the session when it expires.
//
// Replies, replayed events and live events share one queue, so the writer
// is the only writer of data frames and keeps their order. The command
// worker waits until the writer has taken what it queued before it goes
// on, so a replay never runs ahead of the socket, and a subscription's
// held-back live events are queued only after its replies.
type conn struct {
	h         *Hub
	ws        *websocket.Conn
	netConn   net.Conn // under ws; closing it drops the socket at once
	sessionID string
	token     string
	remote    string
	principal atomic.Pointer[Principal]

	// tasks counts the running command worker and timer run. They start
	// only before fail, so serve can wait for them after it.
	tasks sync.WaitGroup

	mu sync.Mutex
	// cond is broadcast when the writer takes messages or stops, when the
	// command worker stops, when the socket fails and when it has closed.
	cond sync.Cond

	failed      bool
	closeCode   websocket.StatusCode
	closeReason string
	drain       bool
	finished    bool // the closer is done; the connection is closed

	queue   []outMsg // waiting to be written; released when the writer stops
	live    int      // live events in queue, at most Config.QueueSize
	queued  uint64   // messages ever queued
	taken   uint64   // messages ever taken by the writer
	writing bool     // the writer is running
	sealed  bool     // the closer took the last messages; nothing more is queued

	cmds           []command // lines waiting for the command worker
	commanding     bool      // the command worker is running
	cancelCommands context.CancelFunc

	subs []*subscription // only the command worker adds

	timer    *time.Timer
	nextPing time.Time // touched only by serve before the timer is armed, and by tick

	registered bool // guarded by h.mu
}

// command is one line a client sent, or a binary frame.
type command struct {
	line   []byte
	binary bool
}

// delivery is one published event, encoded once for all its recipients.
type delivery struct {
	topic string
	ev    Event
	msg   []byte
}

// outMsg is one line for the writer: an event for a subscription, or a
// reply.
type outMsg struct {
	sub   *subscription
	d     *delivery
	reply []byte
	live  bool // counts against Config.QueueSize
}

// subscription is one socket's interest in one topic.
type subscription struct {
	c       *conn
	topic   string
	key     string
	private bool // TopicSession: scoped by key, not by the Authorizer
	active  atomic.Bool

	// Guarded by c.mu.
	buffering bool // live events wait in pending until replies and replay are queued
	pending   []*delivery
	// replayed is the last seq the replay sent. An event stored before
	// the replay read it may still be published after the subscription
	// went live; as events of a topic are published in seq order, any
	// live event at or below it is one the client has.
	replayed int64
}

func newConn(h *Hub, ws *websocket.Conn, netConn net.Conn, p *Principal, token, remote string) *conn {
	c := &conn{
		h:         h,
		ws:        ws,
		netConn:   netConn,
		sessionID: p.SessionID,
		token:     token,
		remote:    remote,
	}
	c.cond.L = &c.mu
	c.principal.Store(p)
	return c
}

// log logs with the socket's attributes. The logger carrying them is made
// on use: most sockets never log.
func (c *conn) log(level slog.Level, msg string, args ...any) {
	if !c.h.log.Enabled(c.h.ctx, level) {
		return
	}
	p := c.principal.Load()
	c.h.log.With("user", p.UserID, "remote", c.remote).With(p.LogAttrs...).Log(c.h.ctx, level, msg, args...)
}

// offer routes a live event to the socket without blocking.
func (s *subscription) offer(d *delivery) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.buffering {
		if len(s.pending) >= c.h.cfg.QueueSize {
			c.failLocked(StatusSlowConsumer, ReasonSlowConsumer, false)
			return
		}
		s.pending = append(s.pending, d)
		return
	}
	if d.ev.Seq != 0 && d.ev.Seq <= s.replayed {
		return
	}
	c.enqueueLocked(outMsg{sub: s, d: d, live: true})
}

// goLive releases the events held back while the subscription was being
// answered, skipping those at or below seq, which the client has.
func (s *subscription) goLive(seq int64) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range s.pending {
		if d.ev.Seq != 0 && d.ev.Seq <= seq {
			continue
		}
		c.enqueueLocked(outMsg{sub: s, d: d, live: true})
	}
	s.pending = nil
	s.buffering = false
	s.replayed = seq
}

// enqueueLocked queues m for the writer, starting it when it is not
// running. A live event that finds the queue full fails the socket as a
// slow consumer. Once the socket has failed, only a socket that drains
// still takes messages, until the closer seals it.
func (c *conn) enqueueLocked(m outMsg) {
	if c.sealed || (c.failed && !c.drain) {
		return
	}
	if m.live {
		if c.live >= c.h.cfg.QueueSize {
			c.failLocked(StatusSlowConsumer, ReasonSlowConsumer, false)
			return
		}
		c.live++
	}
	c.queue = append(c.queue, m)
	c.queued++
	if !c.writing && !c.failed {
		c.writing = true
		go c.writer()
	}
}

// takeLocked removes up to maxBatch messages from the head of the queue.
// The batch keeps the queue's memory: later appends go past its end.
func (c *conn) takeLocked() []outMsg {
	n := min(len(c.queue), maxBatch)
	batch := c.queue[:n:n]
	c.queue = c.queue[n:]
	for _, m := range batch {
		if m.live {
			c.live--
		}
	}
	c.taken += uint64(n)
	if n > 0 {
		c.cond.Broadcast()
	}
	return batch
}

// send queues replies or replayed events and waits until the writer has
// taken them. It reports false once the socket has failed.
func (c *conn) send(ms ...outMsg) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed {
		return false
	}
	for _, m := range ms {
		c.enqueueLocked(m)
	}
	mine := c.queued
	for c.taken < mine && !c.failed {
		c.cond.Wait()
	}
	return c.taken >= mine
}

// guard runs f so that a panic in it (in an Authorizer or Backlog, say)
// closes this socket with an internal error and is logged, instead of
// ending the process.
func (c *conn) guard(f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.log(slog.LevelError, "realtime: panic in socket", "panic", r, "stack", string(debug.Stack()))
			c.fail(websocket.StatusInternalError, "internal error", false)
		}
	}()
	f()
}

// fail ends the socket with code and reason; the first call wins. With
// drain, what is queued is written before the close frame.
func (c *conn) fail(code websocket.StatusCode, reason string, drain bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(code, reason, drain)
}

func (c *conn) failLocked(code websocket.StatusCode, reason string, drain bool) {
	if c.failed {
		return
	}
	c.failed = true
	c.closeCode, c.closeReason, c.drain = code, reason, drain
	if c.cancelCommands != nil {
		c.cancelCommands()
	}
	c.cond.Broadcast()
	go c.closer()
	switch code {
	case StatusSlowConsumer:
		c.log(slog.LevelWarn, "realtime: closing a slow consumer", "queue", c.h.cfg.QueueSize)
	case websocket.StatusNormalClosure:
	default:
		c.log(slog.LevelDebug, "realtime: closing socket", "code", int(code), "reason", reason)
	}
}

// closeNow closes the connection under the socket at once, ending any
// write or close handshake in progress.
func (c *conn) closeNow() {
	if c.netConn != nil {
		c.netConn.Close()
		return
	}
	c.ws.CloseNow()
}

// closed reports whether fail has been called.
func (c *conn) closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// serve runs a registered socket until it closes. It reads the client's
// frames on the calling goroutine, the socket's only lasting one.
func (c *conn) serve() {
	c.ws.SetReadLimit(c.h.cfg.ReadLimit)
	c.log(slog.LevelDebug, "realtime: socket open")
	if c.h.cfg.PingInterval > 0 {
		c.nextPing = time.Now().Add(c.h.cfg.PingInterval)
	}
	c.mu.Lock()
	if d, ok := c.nextTick(); ok && !c.failed {
		c.timer = time.AfterFunc(d, c.tick)
	}
	c.mu.Unlock()

	c.guard(c.readLoop)
	// The peer closed, a frame was over the limit (coder/websocket has sent
	// StatusMessageTooBig), or the socket is closing already.
	c.fail(websocket.StatusNormalClosure, "", false)

	c.mu.Lock()
	for !c.finished {
		c.cond.Wait()
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	code := c.closeCode
	c.mu.Unlock()
	c.tasks.Wait()
	c.log(slog.LevelDebug, "realtime: socket closed", "code", int(code))
}

// readLoop reads client frames and queues their lines. Its context is never
// cancelled: coder/websocket closes the connection when a read's context
// ends, which would cut the close handshake short. Closing unblocks the
// read instead.
func (c *conn) readLoop() {
	ctx := context.WithoutCancel(c.h.ctx)
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			if !c.queueCommand(command{binary: true}) {
				return
			}
			continue
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if !c.queueCommand(command{line: line}) {
				return
			}
		}
	}
}

// queueCommand hands a line to the command worker, starting it when it is
// not running. It reports false once the socket has failed.
func (c *conn) queueCommand(cm command) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed {
		return false
	}
	if len(c.cmds) >= maxInFlight {
		c.failLocked(websocket.StatusPolicyViolation, ReasonTooManyInFlight, false)
		return false
	}
	c.cmds = append(c.cmds, cm)
	if !c.commanding {
		c.commanding = true
		c.tasks.Add(1)
		// Calls made for the commands end when the socket fails, and when
		// the hub's context ends.
		ctx, cancel := context.WithCancel(c.h.ctx)
		c.cancelCommands = cancel
		go c.runCommands(ctx, cancel)
	}
	return true
}

// runCommands handles the client's requests one at a time, in order, until
// none is waiting.
func (c *conn) runCommands(ctx context.Context, cancel context.CancelFunc) {
	defer c.tasks.Done()
	defer cancel()
	for {
		c.mu.Lock()
		if c.failed || len(c.cmds) == 0 {
			c.cmds = nil
			c.commanding = false
			c.cancelCommands = nil
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		cm := c.cmds[0]
		c.cmds[0] = command{}
		c.cmds = c.cmds[1:]
		c.mu.Unlock()
		c.guard(func() { c.handle(ctx, cm) })
	}
}

// nextTick returns the time until the next ping or session expiry, and
// false when there is neither.
func (c *conn) nextTick() (time.Duration, bool) {
	next := c.principal.Load().ExpiresAt
	if !c.nextPing.IsZero() && (next.IsZero() || c.nextPing.Before(next)) {
		next = c.nextPing
	}
	if next.IsZero() {
		return 0, false
	}
	return time.Until(next), true
}

// tick runs when the socket's timer fires: it re-checks the session once
// it has expired, pings the client when a ping is due, and arms the timer
// for whichever comes next. While a ping waits for its pong, an expiry
// waits for the ping.
func (c *conn) tick() {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return
	}
	c.tasks.Add(1)
	c.mu.Unlock()
	defer c.tasks.Done()
	c.guard(func() {
		if exp := c.principal.Load().ExpiresAt; !exp.IsZero() && !time.Now().Before(exp) && !c.recheckSession() {
			return
		}
		if !c.nextPing.IsZero() && !time.Now().Before(c.nextPing) {
			if !c.ping() {
				return
			}
			c.nextPing = time.Now().Add(c.h.cfg.PingInterval)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if d, ok := c.nextTick(); ok && !c.failed {
			c.timer.Reset(d)
		}
	})
}

// recheckSession asks Sessions again about a session that reached its
// expiry, and closes the socket unless it was extended: a socket must not
// outlive the session that opened it.
func (c *conn) recheckSession() bool {
	p, err := c.h.authenticate(c.token)
	switch {
	case err == nil && p != nil && p.SessionID == c.sessionID && p.UserID != "" &&
		(p.ExpiresAt.IsZero() || time.Now().Before(p.ExpiresAt)):
		c.principal.Store(p)
		return true
	case err == nil || ErrorCode(err) == EUnauthenticated:
		c.fail(StatusSessionEnded, ReasonSessionEnded, true)
	default:
		c.log(slog.LevelWarn, "realtime: re-checking a session failed", "err", err)
		c.fail(websocket.StatusTryAgainLater, ReasonRecheckFailed, true)
	}
	return false
}

// ping pings the client; a missing pong ends the socket.
func (c *conn) ping() bool {
	// Not cancelled by fail: an expired ping context closes the
	// connection, which must not happen on an orderly close.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.h.ctx), c.h.cfg.PingTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		c.fail(websocket.StatusPolicyViolation, ReasonPingTimeout, false)
		return false
	}
	return true
}

func (c *conn) handle(ctx context.Context, cm command) {
	if cm.binary {
		c.replyError("", EBadMessage, "Messages must be JSON in text frames.")
		return
	}
	var m clientMessage
	if err := json.Unmarshal(cm.line, &m); err != nil {
		c.replyError("", EBadMessage, "A message must be one JSON object per line.")
		return
	}
	switch m.Type {
	case typeSubscribe:
		c.subscribe(ctx, m)
	case typeUnsubscribe:
		c.unsubscribe(m)
	case "":
		c.replyError(m.Topic, EBadMessage, "The message has no type.")
	default:
		c.replyError(m.Topic, EBadMessage, "The message type must be subscribe or unsubscribe.")
	}
}

// subscribe registers for live events first, holding them back, then
// answers, replays the backlog, and releases the held events that the
// replay did not already cover: no gap and no duplicate.
func (c *conn) subscribe(ctx context.Context, m clientMessage) {
	topic := m.Topic
	switch {
	case topic == "":
		c.replyError("", EBadMessage, "A subscribe message needs a topic.")
		return
	case m.AfterSeq != nil && *m.AfterSeq < 0:
		c.replyError(topic, EBadMessage, "after_seq cannot be negative.")
		return
	case !ValidTopic(topic):
		c.replyError(topic, EUnknownTopic, "There is no such topic.")
		return
	}
	c.mu.Lock()
	dup := c.subscriptionLocked(topic) != nil
	n := len(c.subs)
	c.mu.Unlock()
	if dup {
		c.replyError(topic, EAlreadySubscribed, "This socket is already subscribed to the topic.")
		return
	}
	if n >= c.h.cfg.MaxSubscriptions {
		c.replyError(topic, ETooManySubscriptions, "This socket has too many subscriptions.")
		return
	}

	private := topic == TopicSession
	key := topic
	if private {
		key = sessionKey(c.sessionID)
	} else if !c.authorizeSubscription(ctx, topic) {
		return
	}

	s := &subscription{c: c, topic: topic, key: key, private: private, buffering: true}
	s.active.Store(true)
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return
	}
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	if !c.h.addSub(s) {
		return
	}
	if !c.send(outMsg{reply: encodeReply(replyMessage{Type: typeSubscribed, Topic: topic, AfterSeq: m.AfterSeq})}) {
		return
	}

	var seq int64
	if m.AfterSeq != nil {
		seq = *m.AfterSeq
		if c.h.cfg.Backlog != nil && !private {
			var err error
			if seq, err = c.replay(ctx, s, seq); err != nil {
				if c.closed() {
					return
				}
				c.log(slog.LevelWarn, "realtime: replaying missed events failed", "topic", topic, "err", err)
				c.dropSub(s)
				c.replyError(topic, EReplayFailed, "Missed events could not be loaded; subscribe again.")
				return
			}
		}
	}
	s.goLive(seq)
}

// subscriptionLocked returns the subscription to topic, or nil.
func (c *conn) subscriptionLocked(topic string) *subscription {
	for _, s := range c.subs {
		if s.topic == topic {
			return s
		}
	}
	return nil
}

// authorizeSubscription asks the Authorizer and answers a refusal.
func (c *conn) authorizeSubscription(ctx context.Context, topic string) bool {
	az := c.h.cfg.Authorizer
	if az == nil {
		c.replyError(topic, EForbidden, "You may not subscribe to this topic.")
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, c.h.cfg.AuthTimeout)
	err := az.CanSubscribe(ctx, c.principal.Load(), topic)
	cancel()
	switch ErrorCode(err) {
	case "":
		return true
	case EInternal, EUnavailable:
		if !c.closed() {
			c.log(slog.LevelError, "realtime: authorizing a subscription failed", "topic", topic, "err", err)
			c.replyError(topic, EUnavailable, "The subscription could not be checked; try again.")
		}
		return false
	default:
		c.replyError(topic, EForbidden, ErrorMessage(err))
		return false
	}
}

// replay sends the backlog after afterSeq in batches and returns the last
// seq sent.
func (c *conn) replay(ctx context.Context, s *subscription, afterSeq int64) (int64, error) {
	last := afterSeq
	batch := make([]outMsg, 0, maxBatch)
	err := c.h.cfg.Backlog.EventsAfter(ctx, c.principal.Load(), s.topic, afterSeq, func(ev Event) error {
		if ev.Seq <= last {
			return nil
		}
		msg, err := encodeEvent(s.topic, ev)
		if err != nil {
			return err
		}
		last = ev.Seq
		batch = append(batch, outMsg{sub: s, d: &delivery{topic: s.topic, ev: ev, msg: msg}})
		if len(batch) == maxBatch {
			if !c.send(batch...) {
				return errClosed
			}
			batch = batch[:0]
		}
		return nil
	})
	if err == nil && len(batch) > 0 && !c.send(batch...) {
		err = errClosed
	}
	return last, err
}

func (c *conn) unsubscribe(m clientMessage) {
	if m.Topic == "" {
		c.replyError("", EBadMessage, "An unsubscribe message needs a topic.")
		return
	}
	c.mu.Lock()
	s := c.subscriptionLocked(m.Topic)
	c.mu.Unlock()
	if s != nil {
		c.dropSub(s)
	}
	// Unsubscribing from a topic one is not subscribed to is not an error:
	// the client ends up where it asked to be.
	c.send(outMsg{reply: encodeReply(replyMessage{Type: typeUnsubscribed, Topic: m.Topic})})
}

// dropSub ends a subscription; events already queued for it are skipped.
func (c *conn) dropSub(s *subscription) {
	c.mu.Lock()
	for i, x := range c.subs {
		if x == s {
			c.subs = append(c.subs[:i], c.subs[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	c.h.removeSub(s)
}

func (c *conn) replyError(topic, code, message string) {
	c.send(outMsg{reply: encodeReply(replyMessage{Type: typeError, Topic: topic, Code: code, Message: message})})
}

// writer writes what is queued, merging up to maxBatch messages into a
// frame, and stops when the queue is empty or the socket has failed; the
// closer writes what a draining socket still has.
func (c *conn) writer() {
	for {
		c.mu.Lock()
		if c.failed || len(c.queue) == 0 {
			c.writing = false
			if !c.failed {
				c.queue = nil
			}
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		batch := c.takeLocked()
		c.mu.Unlock()
		c.guard(func() {
			if err := c.writeBatch(batch); err != nil {
				c.fail(websocket.StatusInternalError, "", false)
			}
		})
		clear(batch) // let delivered events be collected
	}
}

// closer ends a failed socket: it stops routing events to it, lets the
// writer finish its frame (bounded by WriteTimeout), writes what is still
// queued when the failure drains, and closes with the failure's code, so
// the close frame is always the last frame.
func (c *conn) closer() {
	c.h.unregister(c)
	c.mu.Lock()
	for c.writing {
		c.cond.Wait()
	}
	code, reason, drain := c.closeCode, c.closeReason, c.drain
	if drain {
		// A subscription answered just before the close releases its
		// held-back events when its command finishes; wait for that so
		// they are drained too.
		for c.commanding {
			c.cond.Wait()
		}
	}
	c.mu.Unlock()

	if drain {
		c.guard(c.drainQueue)
	}
	c.mu.Lock()
	c.sealed = true
	c.queue, c.live = nil, 0
	c.mu.Unlock()

	if err := c.ws.Close(code, reason); err != nil {
		c.log(slog.LevelDebug, "realtime: close handshake incomplete", "err", err)
	}
	c.mu.Lock()
	c.finished = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

// drainQueue writes what is queued for a socket that is closing.
func (c *conn) drainQueue() {
	for {
		c.mu.Lock()
		batch := c.takeLocked()
		c.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		if err := c.writeBatch(batch); err != nil {
			return
		}
		clear(batch)
	}
}

// framePool holds the buffers frames of several lines are merged in. They
// are shared by all sockets, so an idle socket holds none.
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledFrame bounds the buffers kept in framePool: a burst of large
// events should not pin its buffer.
const maxPooledFrame = 64 << 10

// writeBatch writes the batch's deliverable lines as one frame; a batch
// holds at most maxBatch messages. A single line is written as it is.
func (c *conn) writeBatch(batch []outMsg) error {
	var frame []byte
	var buf *[]byte
	n := 0
	for _, m := range batch {
		line := m.reply
		if m.d != nil {
			if !c.deliverable(m) {
				continue
			}
			line = m.d.msg
		}
		switch n {
		case 0:
			frame = line
		case 1:
			buf = framePool.Get().(*[]byte)
			frame = append(append(append((*buf)[:0], frame...), '\n'), line...)
		default:
			frame = append(append(frame, '\n'), line...)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	err := c.write(frame)
	if buf != nil && cap(frame) <= maxPooledFrame {
		*buf = frame[:0]
		framePool.Put(buf)
	}
	return err
}

// deliverable reports whether m's event still goes to this socket: the
// subscription is live and the principal may receive it now.
func (c *conn) deliverable(m outMsg) bool {
	if !m.sub.active.Load() {
		return false
	}
	if m.sub.private {
		return true
	}
	az := c.h.cfg.Authorizer
	// Not a context fail cancels: a draining socket still authorizes.
	return az != nil && az.CanReceive(c.h.ctx, c.principal.Load(), m.d.topic, m.d.ev)
}

// write sends one frame. Its deadline is not derived from anything fail
// cancels, so a socket being closed still finishes the frame in progress.
func (c *conn) write(frame []byte) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.h.ctx), c.h.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, frame)
}
