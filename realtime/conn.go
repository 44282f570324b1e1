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

	"standin/server/standin"
)

// maxInFlight bounds the client lines read but not yet handled. A client
// that sends faster than its requests are answered is closed with
// websocket.StatusPolicyViolation rather than let the read loop stall,
// which would also stall pongs.
const maxInFlight = 32

// errClosed stops a replay when the socket closes.
var errClosed = errors.New("realtime: socket closed")

// conn is one socket. Its goroutines:
//
//   - serve (the handler's) watches the session's expiry, then closes;
//   - readLoop reads frames and hands their lines to commandLoop;
//   - commandLoop answers subscribe and unsubscribe, replaying backlogs;
//   - writeLoop is the only writer of data frames;
//   - pingLoop keeps the connection alive.
//
// Replies and replays reach writeLoop through the unbuffered direct
// channel, live events through the bounded queue. Because a direct send
// completes only when writeLoop has taken the batch, every reply of a
// subscription is written before the live events released after it.
type conn struct {
	h         *Hub
	ws        *websocket.Conn
	netConn   net.Conn // under ws; closing it drops the socket at once
	sessionID string
	token     string
	log       *slog.Logger
	principal atomic.Pointer[standin.Principal]

	// authCtx carries the principal under the hub's context; it is not
	// cancelled when the socket closes, so draining still authorizes.
	authCtx context.Context
	// ctx bounds calls made for the socket (Authorizer, Backlog); fail
	// cancels it, and so does the end of the hub's context.
	ctx    context.Context
	cancel context.CancelFunc
	// done is closed by fail and only by fail: the socket's goroutines
	// stop on it.
	done chan struct{}
	// commandsDone is closed when commandLoop has returned.
	commandsDone chan struct{}

	queue  chan outMsg
	direct chan []outMsg
	cmds   chan command

	closeMu     sync.Mutex
	failed      bool
	closeCode   websocket.StatusCode
	closeReason string
	drain       bool

	mu   sync.Mutex
	subs map[string]*subscription // by topic; only commandLoop adds

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
}

// subscription is one socket's interest in one topic.
type subscription struct {
	c       *conn
	topic   string
	key     string
	private bool // TopicSession: scoped by key, not by the Authorizer
	active  atomic.Bool

	mu        sync.Mutex
	buffering bool // live events wait in pending until replies and replay are written
	pending   []*delivery
}

// offer routes a live event to the socket without blocking.
func (s *subscription) offer(d *delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buffering {
		if len(s.pending) >= s.c.h.cfg.QueueSize {
			s.c.fail(StatusSlowConsumer, ReasonSlowConsumer, false)
			return
		}
		s.pending = append(s.pending, d)
		return
	}
	s.c.enqueue(outMsg{sub: s, d: d})
}

// goLive releases the events buffered while the subscription was being
// answered, skipping those at or below seq, which the client has.
func (s *subscription) goLive(seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.pending {
		if d.ev.Seq != 0 && d.ev.Seq <= seq {
			continue
		}
		s.c.enqueue(outMsg{sub: s, d: d})
	}
	s.pending = nil
	s.buffering = false
}

func (c *conn) enqueue(m outMsg) {
	select {
	case c.queue <- m:
	default:
		c.fail(StatusSlowConsumer, ReasonSlowConsumer, false)
	}
}

// fail ends the socket with code and reason; the first call wins. With
// drain, what is queued is written before the close frame.
// guard runs one of the socket's loops so that a panic in it (in an
// Authorizer or Backlog, say) closes this socket with an internal error
// and is logged, instead of ending the process.
func (c *conn) guard(loop func()) func() {
	return func() {
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("realtime: panic in socket", "panic", r, "stack", string(debug.Stack()))
				c.fail(websocket.StatusInternalError, "internal error", false)
			}
		}()
		loop()
	}
}

func (c *conn) fail(code websocket.StatusCode, reason string, drain bool) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.failed {
		return
	}
	c.failed = true
	c.closeCode, c.closeReason, c.drain = code, reason, drain
	close(c.done)
	c.cancel()
	switch code {
	case StatusSlowConsumer:
		c.log.Warn("realtime: closing a slow consumer", "queue", cap(c.queue))
	case websocket.StatusNormalClosure:
	default:
		c.log.Debug("realtime: closing socket", "code", int(code), "reason", reason)
	}
}

// closeNow closes the connection under the socket at once, ending any write or
// close handshake in progress.
func (c *conn) closeNow() {
	if c.netConn != nil {
		c.netConn.Close()
		return
	}
	c.ws.CloseNow()
}

// closed reports whether fail has been called.
func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *conn) closeStatus() (websocket.StatusCode, string, bool) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeCode, c.closeReason, c.drain
}

// serve runs an accepted socket until it closes.
func (h *Hub) serve(ws *websocket.Conn, netConn net.Conn, p *standin.Principal, token, remote string) {
	ws.SetReadLimit(h.cfg.ReadLimit)
	authCtx := standin.NewContext(h.ctx, p)
	ctx, cancel := context.WithCancel(authCtx)
	defer cancel()
	c := &conn{
		h:            h,
		ws:           ws,
		netConn:      netConn,
		sessionID:    p.Session.ID,
		token:        token,
		log:          h.log.With("user", p.Actor.ID, "subject", p.Subject.ID, "remote", remote),
		authCtx:      authCtx,
		ctx:          ctx,
		cancel:       cancel,
		done:         make(chan struct{}),
		commandsDone: make(chan struct{}),
		queue:        make(chan outMsg, h.cfg.QueueSize),
		direct:       make(chan []outMsg),
		cmds:         make(chan command, maxInFlight),
		subs:         make(map[string]*subscription),
	}
	c.principal.Store(p)
	if !h.register(c) {
		ws.Close(websocket.StatusGoingAway, ReasonShutdown)
		return
	}
	c.log.Debug("realtime: socket open")

	var wg sync.WaitGroup
	wg.Go(c.guard(c.readLoop))
	wg.Go(c.guard(c.commandLoop))
	if h.cfg.PingInterval > 0 {
		wg.Go(c.guard(c.pingLoop))
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.guard(c.writeLoop)()
	}()

	c.watchSession()
	h.unregister(c)
	// The writer finishes its last write (bounded by WriteTimeout) before
	// the close frame, so the close frame is always the last frame.
	<-writerDone
	code, reason, _ := c.closeStatus()
	if err := ws.Close(code, reason); err != nil {
		c.log.Debug("realtime: close handshake incomplete", "err", err)
	}
	wg.Wait()
	c.log.Debug("realtime: socket closed", "code", int(code))
}

// watchSession waits for the socket to end, re-checking the session when it
// reaches its expiry: a socket must not outlive the session that opened it.
func (c *conn) watchSession() {
	exp := c.principal.Load().Session.ExpiresAt
	if exp.IsZero() {
		<-c.done
		return
	}
	timer := time.NewTimer(time.Until(exp))
	defer timer.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-timer.C:
		}
		p, err := c.h.authenticate(c.token)
		switch {
		case err == nil && p != nil && p.Session != nil && p.Actor != nil && p.Subject != nil &&
			p.Session.ID == c.sessionID && time.Now().Before(p.Session.ExpiresAt):
			c.principal.Store(p)
			timer.Reset(time.Until(p.Session.ExpiresAt))
		case err == nil || standin.ErrorCode(err) == standin.EUnauthenticated:
			c.fail(StatusSessionEnded, ReasonSessionEnded, true)
		default:
			c.log.Warn("realtime: re-checking a session failed", "err", err)
			c.fail(websocket.StatusTryAgainLater, ReasonRecheckFailed, true)
		}
	}
}

// readLoop reads client frames. Its context is never cancelled by fail:
// coder/websocket closes the connection when a read's context ends, which
// would cut the close handshake short. Close unblocks the read instead.
func (c *conn) readLoop() {
	ctx := context.WithoutCancel(c.h.ctx)
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			// The peer closed, a frame was over the limit (coder/websocket has
			// sent StatusMessageTooBig), or the socket is closing already.
			c.fail(websocket.StatusNormalClosure, "", false)
			return
		}
		if typ != websocket.MessageText {
			if !c.command(command{binary: true}) {
				return
			}
			continue
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if !c.command(command{line: line}) {
				return
			}
		}
	}
}

func (c *conn) command(cm command) bool {
	select {
	case c.cmds <- cm:
		return true
	default:
		c.fail(websocket.StatusPolicyViolation, ReasonTooManyInFlight, false)
		return false
	}
}

// pingLoop pings the client; a missing pong ends the socket.
func (c *conn) pingLoop() {
	t := time.NewTicker(c.h.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		// Not derived from c.ctx: an expired ping context closes the
		// connection, which must not happen on an orderly close.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.h.ctx), c.h.cfg.PingTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			c.fail(websocket.StatusPolicyViolation, ReasonPingTimeout, false)
			return
		}
	}
}

// commandLoop handles the client's requests one at a time, in order.
func (c *conn) commandLoop() {
	defer close(c.commandsDone)
	for {
		select {
		case <-c.done:
			return
		case cm := <-c.cmds:
			c.handle(cm)
		}
	}
}

func (c *conn) handle(cm command) {
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
		c.subscribe(m)
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
func (c *conn) subscribe(m clientMessage) {
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
	_, dup := c.subs[topic]
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
	} else if !c.authorizeSubscription(topic) {
		return
	}

	s := &subscription{c: c, topic: topic, key: key, private: private, buffering: true}
	s.active.Store(true)
	c.mu.Lock()
	if c.subs == nil { // the socket is closing
		c.mu.Unlock()
		return
	}
	c.subs[topic] = s
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
			if seq, err = c.replay(s, seq); err != nil {
				if c.closed() {
					return
				}
				c.log.Warn("realtime: replaying missed events failed", "topic", topic, "err", err)
				c.dropSub(s)
				c.replyError(topic, EReplayFailed, "Missed events could not be loaded; subscribe again.")
				return
			}
		}
	}
	s.goLive(seq)
}

// authorizeSubscription asks the Authorizer and answers a refusal.
func (c *conn) authorizeSubscription(topic string) bool {
	az := c.h.cfg.Authorizer
	if az == nil {
		c.replyError(topic, EForbidden, "You may not subscribe to this topic.")
		return false
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.h.cfg.AuthTimeout)
	err := az.CanSubscribe(ctx, c.principal.Load(), topic)
	cancel()
	switch standin.ErrorCode(err) {
	case "":
		return true
	case standin.EInternal, standin.EUnavailable:
		if !c.closed() {
			c.log.Error("realtime: authorizing a subscription failed", "topic", topic, "err", err)
			c.replyError(topic, EUnavailable, "The subscription could not be checked; try again.")
		}
		return false
	default:
		c.replyError(topic, EForbidden, standin.ErrorMessage(err))
		return false
	}
}

// replay sends the backlog after afterSeq in batches and returns the last
// seq sent.
func (c *conn) replay(s *subscription, afterSeq int64) (int64, error) {
	last := afterSeq
	batch := make([]outMsg, 0, maxBatch)
	err := c.h.cfg.Backlog.EventsAfter(c.ctx, s.topic, afterSeq, func(ev Event) error {
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
			if !c.sendBatch(batch) {
				return errClosed
			}
			batch = make([]outMsg, 0, maxBatch)
		}
		return nil
	})
	if err == nil && len(batch) > 0 && !c.sendBatch(batch) {
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
	s := c.subs[m.Topic]
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
	if c.subs != nil && c.subs[s.topic] == s {
		delete(c.subs, s.topic)
	}
	c.mu.Unlock()
	c.h.removeSub(s)
}

func (c *conn) replyError(topic, code, message string) {
	c.send(outMsg{reply: encodeReply(replyMessage{Type: typeError, Topic: topic, Code: code, Message: message})})
}

// send hands a message to the writer, waiting while it writes.
func (c *conn) send(m outMsg) bool { return c.sendBatch([]outMsg{m}) }

func (c *conn) sendBatch(ms []outMsg) bool {
	select {
	case c.direct <- ms:
		return true
	case <-c.done:
		return false
	}
}

// writeLoop merges what is waiting into frames of up to maxBatch lines.
// When the socket ends with drain, what is still queued is written first.
func (c *conn) writeLoop() {
	var batch []outMsg
	var buf []byte
	for {
		batch = batch[:0]
		select {
		case <-c.done:
			if _, _, drain := c.closeStatus(); drain {
				// A subscription answered just before the close releases its
				// held-back events when its command finishes; wait for that
				// so they are drained too.
				<-c.commandsDone
				c.drainQueue(batch, buf)
			}
			return
		case m := <-c.queue:
			batch = append(batch, m)
		case ms := <-c.direct:
			batch = append(batch, ms...)
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case m := <-c.queue:
				batch = append(batch, m)
			case ms := <-c.direct:
				batch = append(batch, ms...)
			default:
				break gather
			}
		}
		var err error
		if buf, err = c.writeBatch(batch, buf); err != nil {
			c.fail(websocket.StatusInternalError, "", false)
			return
		}
		clear(batch) // let delivered events be collected
	}
}

func (c *conn) drainQueue(batch []outMsg, buf []byte) {
	for {
		batch = batch[:0]
	take:
		for len(batch) < maxBatch {
			select {
			case m := <-c.queue:
				batch = append(batch, m)
			default:
				break take
			}
		}
		if len(batch) == 0 {
			return
		}
		var err error
		if buf, err = c.writeBatch(batch, buf); err != nil {
			return
		}
	}
}

// writeBatch writes the batch's deliverable lines in frames of at most
// maxBatch lines and returns the buffer for reuse.
func (c *conn) writeBatch(batch []outMsg, buf []byte) ([]byte, error) {
	buf = buf[:0]
	n := 0
	for _, m := range batch {
		line := m.reply
		if m.d != nil {
			if !c.deliverable(m) {
				continue
			}
			line = m.d.msg
		}
		if n > 0 {
			buf = append(buf, '\n')
		}
		buf = append(buf, line...)
		n++
		if n == maxBatch {
			if err := c.write(buf); err != nil {
				return buf, err
			}
			buf, n = buf[:0], 0
		}
	}
	if n > 0 {
		if err := c.write(buf); err != nil {
			return buf, err
		}
	}
	// Keep an ordinary buffer for the next frame, not one a burst grew.
	if cap(buf) > 1<<20 {
		buf = nil
	}
	return buf, nil
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
	return az != nil && az.CanReceive(c.authCtx, c.principal.Load(), m.d.topic, m.d.ev)
}

// write sends one frame. Its deadline is not derived from c.ctx, so a
// socket being closed still finishes the frame in progress.
func (c *conn) write(frame []byte) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.h.ctx), c.h.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, frame)
}
