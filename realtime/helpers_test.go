package realtime_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
)

// testSessions is a test double of the session lookup: a map from token to
// principal, honouring each session's expiry.
type testSessions struct {
	mu      sync.Mutex
	byToken map[string]*realtime.Principal
}

func newTestSessions() *testSessions {
	return &testSessions{byToken: make(map[string]*realtime.Principal)}
}

func (s *testSessions) Authenticate(ctx context.Context, token string) (*realtime.Principal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byToken[token]
	if p == nil || !time.Now().Before(p.ExpiresAt) {
		return nil, realtime.Errorf(realtime.EUnauthenticated, "Your session has ended; sign in again.")
	}
	return p, nil
}

// add signs userID in under a session named sessionID, valid until expires
// (a day when zero), and returns the session's token.
func (s *testSessions) add(sessionID, userID string, expires time.Time) string {
	if expires.IsZero() {
		expires = time.Now().Add(24 * time.Hour)
	}
	p := &realtime.Principal{SessionID: sessionID, UserID: userID, ExpiresAt: expires}
	token := "token-" + sessionID
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byToken[token] = p
	return token
}

// extend moves the expiry of the session behind token.
func (s *testSessions) extend(token string, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := *s.byToken[token]
	p.ExpiresAt = expires
	s.byToken[token] = &p
}

// testAuthorizer delegates to its functions; a nil function allows.
type testAuthorizer struct {
	subscribe func(p *realtime.Principal, topic string) error
	receive   func(p *realtime.Principal, topic string, ev realtime.Event) bool
}

func (a *testAuthorizer) CanSubscribe(ctx context.Context, p *realtime.Principal, topic string) error {
	if a.subscribe == nil {
		return nil
	}
	return a.subscribe(p, topic)
}

func (a *testAuthorizer) CanReceive(ctx context.Context, p *realtime.Principal, topic string, ev realtime.Event) bool {
	if a.receive == nil {
		return true
	}
	return a.receive(p, topic, ev)
}

var _ realtime.Sessions = (*testSessions)(nil)
var _ realtime.Authorizer = (*testAuthorizer)(nil)

// env is a hub served by an httptest server.
type env struct {
	hub      *realtime.Hub
	srv      *httptest.Server
	sessions *testSessions
	url      string // ws:// URL of the endpoint
}

// envOption adjusts the test server before it starts.
type envOption func(*httptest.Server)

// newEnv starts a hub with cfg; a nil cfg.Sessions gets a fresh
// testSessions and a nil cfg.Authorizer one that allows everything.
func newEnv(t testing.TB, cfg realtime.Config, opts ...envOption) *env {
	t.Helper()
	sessions := newTestSessions()
	if cfg.Sessions == nil {
		cfg.Sessions = sessions
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = &testAuthorizer{}
	}
	hub, err := realtime.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewUnstartedServer(hub)
	for _, o := range opts {
		o(srv)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return &env{hub: hub, srv: srv, sessions: sessions, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

// msg is any message the server sends.
type msg struct {
	Type     string          `json:"type"`
	Topic    string          `json:"topic"`
	AfterSeq *int64          `json:"after_seq"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	Seq      int64           `json:"seq"`
	Event    json.RawMessage `json:"event"`
}

// client is a real coder/websocket client that splits frames into lines.
type client struct {
	t       testing.TB
	ws      *websocket.Conn
	pending []string
	// readTimeout bounds waiting for one frame; 5 s when zero.
	readTimeout time.Duration
}

type dialOptions struct {
	cookie     string // the cookie's name; realtime.DefaultCookie when empty
	origin     string
	readBuffer int // SO_RCVBUF of the client's socket when > 0
}

// dial connects with the session cookie token (none when empty).
func (e *env) dial(ctx context.Context, token string, o dialOptions) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if token != "" {
		name := cmp.Or(o.cookie, realtime.DefaultCookie)
		h.Set("Cookie", (&http.Cookie{Name: name, Value: token}).String())
	}
	if o.origin != "" {
		h.Set("Origin", o.origin)
	}
	opts := &websocket.DialOptions{HTTPHeader: h}
	if o.readBuffer > 0 {
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if err := c.(*net.TCPConn).SetReadBuffer(o.readBuffer); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}}
		opts.HTTPClient = &http.Client{Transport: tr}
	}
	return websocket.Dial(ctx, e.url, opts)
}

// mustConnect opens a socket for token, closed at cleanup.
func (e *env) mustConnect(t testing.TB, token string, o dialOptions) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := e.dial(ctx, token, o)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { ws.CloseNow() })
	return &client{t: t, ws: ws}
}

// sendLine writes one text frame.
func (c *client) sendLine(line string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
}

// readFrame reads one frame and returns its lines.
func (c *client) readFrame() ([]string, error) {
	timeout := c.readTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("got a %v frame, want text", typ)
	}
	var lines []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// next returns the next message, reading a frame when none is pending.
func (c *client) next() (msg, error) {
	for len(c.pending) == 0 {
		lines, err := c.readFrame()
		if err != nil {
			return msg{}, err
		}
		c.pending = lines
	}
	line := c.pending[0]
	c.pending = c.pending[1:]
	var m msg
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		c.t.Fatalf("server sent a line that is not JSON: %q: %v", line, err)
	}
	return m, nil
}

// mustNext is next failing the test on error.
func (c *client) mustNext() msg {
	c.t.Helper()
	m, err := c.next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// expect reads the next message and compares its type, topic, code and
// (for events) seq with want.
func (c *client) expect(want msg) msg {
	c.t.Helper()
	got := c.mustNext()
	if got.Type != want.Type || got.Topic != want.Topic || got.Code != want.Code || got.Seq != want.Seq {
		c.t.Fatalf("got %+v (event %s), want type=%q topic=%q code=%q seq=%d",
			got, got.Event, want.Type, want.Topic, want.Code, want.Seq)
	}
	return got
}

// subscribe subscribes and waits for the answer.
func (c *client) subscribe(topic string) {
	c.t.Helper()
	c.sendLine(`{"type":"subscribe","topic":"` + topic + `"}`)
	c.expect(msg{Type: "subscribed", Topic: topic})
}

// expectClose reads until the socket ends and checks the close status.
func (c *client) expectClose(code websocket.StatusCode, reason string) {
	c.t.Helper()
	for {
		_, err := c.next()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("read error %v, want close status %d", err, code)
		}
		if ce.Code != code || (reason != "" && ce.Reason != reason) {
			c.t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
		}
		return
	}
}

// event returns an event whose payload carries seq and, when note is set,
// a note.
func event(seq int64, note string) realtime.Event {
	m := map[string]any{"seq": seq}
	if note != "" {
		m["note"] = note
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return realtime.Event{Seq: seq, Payload: b}
}

// mustPublish publishes ev on topic.
func mustPublish(t testing.TB, h *realtime.Hub, topic string, ev realtime.Event) {
	t.Helper()
	if err := h.Publish(topic, ev); err != nil {
		t.Fatalf("Publish(%q, %d): %v", topic, ev.Seq, err)
	}
}

// mustPublishSession publishes ev to a session.
func mustPublishSession(t testing.TB, h *realtime.Hub, sessionID string, ev realtime.Event) {
	t.Helper()
	if err := h.PublishSession(sessionID, ev); err != nil {
		t.Fatalf("PublishSession(%q, %d): %v", sessionID, ev.Seq, err)
	}
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readErrorBody decodes an API error body.
func readErrorBody(t testing.TB, r io.Reader) (code, message string) {
	t.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(r).Decode(&body); err != nil {
		t.Fatalf("error body is not JSON: %v", err)
	}
	return body.Error.Code, body.Error.Message
}
