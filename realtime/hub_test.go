package realtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
)

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  realtime.Config
		code string
	}{
		{"OK", realtime.Config{Sessions: newTestSessions()}, ""},
		{"ErrSessionsMissing", realtime.Config{}, realtime.EInvalid},
		{"ErrBadOriginPattern", realtime.Config{Sessions: newTestSessions(), OriginPatterns: []string{"["}}, realtime.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := realtime.New(context.Background(), tt.cfg)
			if got := realtime.ErrorCode(err); got != tt.code {
				t.Fatalf("New error code = %q (%v), want %q", got, err, tt.code)
			}
		})
	}
}

func TestValidTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		topic string
		want  bool
	}{
		{"session", true},
		{"activity", true},
		{"notifications", true},
		{"presence", true},
		{realtime.ImpersonationTopic("65f0c2a1-9b1e.x_y"), true},
		{"impersonation:", false},
		{"impersonation:a/b", false},
		{"impersonation:" + strings.Repeat("a", 65), false},
		{"Activity", false},
		{"weather", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := realtime.ValidTopic(tt.topic); got != tt.want {
			t.Errorf("ValidTopic(%q) = %v, want %v", tt.topic, got, tt.want)
		}
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{})
	tests := []struct {
		name    string
		publish func() error
		code    string
	}{
		{"OKNoSubscribers", func() error { return e.hub.Publish("activity", event(1, "")) }, ""},
		{"OKEmptyPayload", func() error { return e.hub.Publish("activity", realtime.Event{Seq: 1}) }, ""},
		{"ErrSessionTopic", func() error { return e.hub.Publish("session", event(1, "")) }, realtime.EInvalid},
		{"ErrUnknownTopic", func() error { return e.hub.Publish("weather", event(1, "")) }, realtime.EInvalid},
		{"ErrBadPayload", func() error {
			return e.hub.Publish("activity", realtime.Event{Seq: 1, Payload: json.RawMessage(`{"seq":`)})
		}, realtime.EInvalid},
		{"ErrNoSessionID", func() error { return e.hub.PublishSession("", event(1, "")) }, realtime.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := realtime.ErrorCode(tt.publish()); got != tt.code {
				t.Fatalf("error code = %q, want %q", got, tt.code)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{OriginPatterns: []string{"console.example"}})
	token := e.sessions.add("s1", "ada", time.Time{})
	expired := e.sessions.add("s2", "ada", time.Now().Add(-time.Minute))
	tests := []struct {
		name       string
		token      string
		origin     string
		wantStatus int    // 0: the upgrade succeeds
		wantCode   string // API error code of a JSON refusal
	}{
		{name: "OK", token: token},
		{name: "OKSameHostOrigin", token: token, origin: e.srv.URL},
		{name: "OKAllowedOrigin", token: token, origin: "https://console.example"},
		{name: "ErrNoCookie", wantStatus: http.StatusUnauthorized, wantCode: realtime.EUnauthenticated},
		{name: "ErrUnknownToken", token: "nonsense", wantStatus: http.StatusUnauthorized, wantCode: realtime.EUnauthenticated},
		{name: "ErrExpiredSession", token: expired, wantStatus: http.StatusUnauthorized, wantCode: realtime.EUnauthenticated},
		{name: "ErrForeignOrigin", token: token, origin: "https://evil.example", wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ws, resp, err := e.dial(ctx, tt.token, dialOptions{origin: tt.origin})
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				ws.Close(websocket.StatusNormalClosure, "")
				return
			}
			if err == nil {
				ws.CloseNow()
				t.Fatal("the upgrade succeeded, want a refusal")
			}
			if resp == nil || resp.StatusCode != tt.wantStatus {
				t.Fatalf("dial error %v, response %+v; want status %d", err, resp, tt.wantStatus)
			}
			if tt.wantCode != "" {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				code, message := readErrorBody(t, resp.Body)
				if code != tt.wantCode || message == "" {
					t.Errorf("error body code=%q message=%q, want code %q and a message", code, message, tt.wantCode)
				}
			}
		})
	}
}

func TestSessionTopic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{})
	tokenA := e.sessions.add("sa", "ada", time.Time{})
	tokenB := e.sessions.add("sb", "ben", time.Time{})
	a1 := e.mustConnect(t, tokenA, dialOptions{})
	a2 := e.mustConnect(t, tokenA, dialOptions{})
	b := e.mustConnect(t, tokenB, dialOptions{})
	a1.subscribe("session")
	// after_seq is accepted and echoed even where nothing is replayed.
	a2.sendLine(`{"type":"subscribe","topic":"session","after_seq":7}`)
	if m := a2.expect(msg{Type: "subscribed", Topic: "session"}); m.AfterSeq == nil || *m.AfterSeq != 7 {
		t.Fatalf("after_seq echoed as %v, want 7", m.AfterSeq)
	}
	b.subscribe("session")

	mustPublishSession(t, e.hub, "sa", event(8, "for a"))
	for _, c := range []*client{a1, a2} {
		if m := c.expect(msg{Type: "event", Topic: "session", Seq: 8}); !strings.Contains(string(m.Event), `"note":"for a"`) {
			t.Fatalf("event = %s, want the published payload", m.Event)
		}
	}
	// Events are ordered per socket, so b's first event being its own shows
	// that a's never reached it.
	mustPublishSession(t, e.hub, "sb", event(9, "for b"))
	b.expect(msg{Type: "event", Topic: "session", Seq: 9})
	mustPublishSession(t, e.hub, "sa", event(10, ""))
	a1.expect(msg{Type: "event", Topic: "session", Seq: 10})
	a2.expect(msg{Type: "event", Topic: "session", Seq: 10})
}

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	authz := &testAuthorizer{subscribe: func(p *realtime.Principal, topic string) error {
		switch topic {
		case "notifications":
			return realtime.Errorf(realtime.EForbidden, "You may only read your own notifications.")
		case "presence":
			return realtime.Errorf(realtime.EUnavailable, "The policy store is down.")
		}
		return nil
	}}
	e := newEnv(t, realtime.Config{Authorizer: authz})
	tests := []struct {
		name   string
		frames []string
		binary bool
		want   []msg
	}{
		{"UnknownTopic", []string{`{"type":"subscribe","topic":"weather"}`},
			false, []msg{{Type: "error", Topic: "weather", Code: "unknown_topic"}}},
		{"EmptyImpersonationID", []string{`{"type":"subscribe","topic":"impersonation:"}`},
			false, []msg{{Type: "error", Topic: "impersonation:", Code: "unknown_topic"}}},
		{"MalformedJSON", []string{`{"type":"subscribe",`},
			false, []msg{{Type: "error", Code: "bad_message"}}},
		{"NotAnObject", []string{`["subscribe","session"]`},
			false, []msg{{Type: "error", Code: "bad_message"}}},
		{"WrongFieldType", []string{`{"type":"subscribe","topic":"activity","after_seq":"5"}`},
			false, []msg{{Type: "error", Code: "bad_message"}}},
		{"NoType", []string{`{"topic":"session"}`},
			false, []msg{{Type: "error", Topic: "session", Code: "bad_message"}}},
		{"UnknownType", []string{`{"type":"publish","topic":"session"}`},
			false, []msg{{Type: "error", Topic: "session", Code: "bad_message"}}},
		{"NoTopic", []string{`{"type":"subscribe"}`},
			false, []msg{{Type: "error", Code: "bad_message"}}},
		{"NegativeAfterSeq", []string{`{"type":"subscribe","topic":"activity","after_seq":-1}`},
			false, []msg{{Type: "error", Topic: "activity", Code: "bad_message"}}},
		{"BinaryFrame", []string{`{"type":"subscribe","topic":"session"}`},
			true, []msg{{Type: "error", Code: "bad_message"}}},
		{"Forbidden", []string{`{"type":"subscribe","topic":"notifications"}`},
			false, []msg{{Type: "error", Topic: "notifications", Code: "forbidden"}}},
		{"AuthorizerFault", []string{`{"type":"subscribe","topic":"presence"}`},
			false, []msg{{Type: "error", Topic: "presence", Code: "unavailable"}}},
		{"AlreadySubscribed", []string{`{"type":"subscribe","topic":"activity"}`, `{"type":"subscribe","topic":"activity"}`},
			false, []msg{{Type: "subscribed", Topic: "activity"}, {Type: "error", Topic: "activity", Code: "already_subscribed"}}},
		{"SeveralMessagesInOneFrame", []string{"{\"type\":\"subscribe\",\"topic\":\"activity\"}\n\n{\"type\":\"unsubscribe\",\"topic\":\"activity\"}\r\n{\"type\":\"unsubscribe\",\"topic\":\"presence\"}"},
			false, []msg{{Type: "subscribed", Topic: "activity"}, {Type: "unsubscribed", Topic: "activity"}, {Type: "unsubscribed", Topic: "presence"}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := e.mustConnect(t, e.sessions.add(fmt.Sprint("s", i), "ada", time.Time{}), dialOptions{})
			for _, f := range tt.frames {
				if tt.binary {
					if err := c.ws.Write(context.Background(), websocket.MessageBinary, []byte(f)); err != nil {
						t.Fatal(err)
					}
					continue
				}
				c.sendLine(f)
			}
			for _, w := range tt.want {
				if m := c.expect(w); m.Type == "error" && m.Message == "" {
					t.Errorf("error %q has no message", m.Code)
				}
			}
			// The socket still works.
			c.subscribe("session")
			mustPublishSession(t, e.hub, fmt.Sprint("s", i), event(1, ""))
			c.expect(msg{Type: "event", Topic: "session", Seq: 1})
		})
	}
}

func TestNoAuthorizerRefusesSharedTopics(t *testing.T) {
	t.Parallel()
	sessions := newTestSessions()
	hub, err := realtime.New(context.Background(), realtime.Config{Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	t.Cleanup(func() {
		hub.Shutdown(context.Background())
		srv.Close()
	})
	e := &env{hub: hub, srv: srv, sessions: sessions, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
	c := e.mustConnect(t, sessions.add("s", "ada", time.Time{}), dialOptions{})
	c.sendLine(`{"type":"subscribe","topic":"activity"}`)
	c.expect(msg{Type: "error", Topic: "activity", Code: "forbidden"})
	c.subscribe("session")
}

func TestCanReceive(t *testing.T) {
	t.Parallel()
	// ben receives only even events; ada receives everything.
	authz := &testAuthorizer{receive: func(p *realtime.Principal, topic string, ev realtime.Event) bool {
		return p.UserID == "ada" || ev.Seq%2 == 0
	}}
	e := newEnv(t, realtime.Config{Authorizer: authz})
	ada := e.mustConnect(t, e.sessions.add("sa", "ada", time.Time{}), dialOptions{})
	ben := e.mustConnect(t, e.sessions.add("sb", "ben", time.Time{}), dialOptions{})
	ada.subscribe("activity")
	ben.subscribe("activity")
	for seq := int64(1); seq <= 4; seq++ {
		mustPublish(t, e.hub, "activity", event(seq, ""))
	}
	for _, seq := range []int64{1, 2, 3, 4} {
		ada.expect(msg{Type: "event", Topic: "activity", Seq: seq})
	}
	for _, seq := range []int64{2, 4} {
		ben.expect(msg{Type: "event", Topic: "activity", Seq: seq})
	}
}

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{})
	c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
	c.subscribe("session")
	c.subscribe("activity")
	mustPublish(t, e.hub, "activity", event(1, ""))
	c.expect(msg{Type: "event", Topic: "activity", Seq: 1})
	c.sendLine(`{"type":"unsubscribe","topic":"activity"}`)
	c.expect(msg{Type: "unsubscribed", Topic: "activity"})
	mustPublish(t, e.hub, "activity", event(2, ""))
	mustPublishSession(t, e.hub, "s", event(3, "marker"))
	c.expect(msg{Type: "event", Topic: "session", Seq: 3})
	// Subscribing again works.
	c.subscribe("activity")
	mustPublish(t, e.hub, "activity", event(4, ""))
	c.expect(msg{Type: "event", Topic: "activity", Seq: 4})
}

func TestMergedFrame(t *testing.T) {
	t.Parallel()
	// Holding the first delivery in CanReceive lets the next events queue
	// up, so the writer must merge them into one frame.
	first := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	authz := &testAuthorizer{receive: func(p *realtime.Principal, topic string, ev realtime.Event) bool {
		if ev.Seq == 1 {
			once.Do(func() { close(first) })
			<-release
		}
		return true
	}}
	e := newEnv(t, realtime.Config{Authorizer: authz})
	c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
	c.subscribe("activity")

	mustPublish(t, e.hub, "activity", event(1, ""))
	<-first
	mustPublish(t, e.hub, "activity", event(2, ""))
	// An indented payload with a newline inside a string stays one line.
	mustPublish(t, e.hub, "activity", realtime.Event{Seq: 3, Payload: json.RawMessage("{\n  \"seq\": 3,\n  \"note\": \"two\\nlines\"\n}")})
	mustPublish(t, e.hub, "activity", event(4, ""))
	mustPublish(t, e.hub, "activity", event(5, ""))
	close(release)

	frames := [][]int64{{1}, {2, 3, 4, 5}}
	for i, want := range frames {
		lines, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != len(want) {
			t.Fatalf("frame %d has %d lines %q, want %d", i, len(lines), lines, len(want))
		}
		for j, line := range lines {
			var m msg
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if m.Type != "event" || m.Seq != want[j] {
				t.Fatalf("frame %d line %d = %s, want event %d", i, j, line, want[j])
			}
			if m.Seq == 3 {
				var ev struct{ Note string }
				if err := json.Unmarshal(m.Event, &ev); err != nil || ev.Note != "two\nlines" {
					t.Fatalf("event 3 = %s, want note %q", m.Event, "two\nlines")
				}
			}
		}
	}
}

func TestReadLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{ReadLimit: 1024})
	c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
	c.subscribe("session")
	c.sendLine(`{"type":"subscribe","topic":"activity","pad":"` + strings.Repeat("x", 2000) + `"}`)
	c.expectClose(websocket.StatusMessageTooBig, "")
	waitFor(t, "the socket to be dropped", func() bool { return e.hub.Connections() == 0 })
}

// smallWriteBuffers shrinks the server side send buffer of every accepted
// connection, so a client that stops reading fills it quickly.
type smallWriteBuffers struct{ net.Listener }

func (l smallWriteBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		c.(*net.TCPConn).SetWriteBuffer(4096)
	}
	return c, err
}

func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	// The write timeout is long, so that the stalled socket is cut off by
	// its queue overflowing (with a close code), not by a write timing out.
	e := newEnv(t, realtime.Config{QueueSize: 4, WriteTimeout: time.Minute}, func(s *httptest.Server) {
		s.Listener = smallWriteBuffers{s.Listener}
	})
	stalled := e.mustConnect(t, e.sessions.add("s1", "ada", time.Time{}), dialOptions{readBuffer: 4096})
	stalled.subscribe("activity")
	// A hundred others keep reading.
	const others = 100
	fast := make([]*client, others)
	for i := range fast {
		fast[i] = e.mustConnect(t, e.sessions.add(fmt.Sprint("f", i), fmt.Sprint("user", i), time.Time{}), dialOptions{})
		fast[i].subscribe("activity")
	}
	// Each event is published only once every other socket has read the
	// one before: the stalled socket never holds them up, or this loop
	// would stop.
	allRead := func(seq int64) {
		t.Helper()
		for _, c := range fast {
			c.expect(msg{Type: "event", Topic: "activity", Seq: seq})
		}
	}

	note := strings.Repeat("z", 16<<10)
	var seq int64
	for e.hub.Connections() == others+1 {
		seq++
		if seq > 2000 {
			t.Fatal("the stalled socket was never closed")
		}
		mustPublish(t, e.hub, "activity", event(seq, note))
		allRead(seq)
	}
	for range 10 {
		seq++
		mustPublish(t, e.hub, "activity", event(seq, note))
		allRead(seq)
	}
	if n := e.hub.Connections(); n != others {
		t.Fatalf("%d sockets open, want the %d others", n, others)
	}

	// Reading again, stalled finds an unbroken prefix, then the close.
	// The server learns that the stalled socket's receive window opened
	// again from its zero-window probes, whose interval doubles while the
	// window stays shut (seconds after a long stall on a busy machine), so
	// the first frames may take that long to arrive.
	stalled.readTimeout = time.Minute
	var got int64
	for {
		m, err := stalled.next()
		if err != nil {
			if code := websocket.CloseStatus(err); code != realtime.StatusSlowConsumer {
				t.Fatalf("stalled socket ended with %v, want close %d", err, realtime.StatusSlowConsumer)
			}
			if !strings.Contains(err.Error(), realtime.ReasonSlowConsumer) {
				t.Fatalf("close reason in %v, want %q", err, realtime.ReasonSlowConsumer)
			}
			break
		}
		got++
		if m.Seq != got {
			t.Fatalf("stalled socket got event %d, want %d", m.Seq, got)
		}
	}
	if got >= seq {
		t.Fatalf("stalled socket got all %d events; it should have been cut off", got)
	}
	t.Logf("result: events published=%d", seq)
	t.Logf("result: events the stalled socket received before its close=%d", got)
}

func TestCloseSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{})
	tokenA := e.sessions.add("sa", "ada", time.Time{})
	a1 := e.mustConnect(t, tokenA, dialOptions{})
	a2 := e.mustConnect(t, tokenA, dialOptions{})
	b := e.mustConnect(t, e.sessions.add("sb", "ben", time.Time{}), dialOptions{})
	a1.subscribe("session")
	a2.subscribe("session")
	b.subscribe("session")

	// What was published before the close is written before it.
	mustPublishSession(t, e.hub, "sa", event(1, "signed out"))
	e.hub.CloseSession("sa", realtime.StatusSessionEnded, realtime.ReasonSessionEnded)
	for _, c := range []*client{a1, a2} {
		c.expect(msg{Type: "event", Topic: "session", Seq: 1})
		c.expectClose(realtime.StatusSessionEnded, realtime.ReasonSessionEnded)
	}
	waitFor(t, "the session's sockets to be dropped", func() bool { return e.hub.Connections() == 1 })
	mustPublishSession(t, e.hub, "sb", event(2, ""))
	b.expect(msg{Type: "event", Topic: "session", Seq: 2})
}

// CloseAll closes every socket, of every session, with the code given.
func TestCloseAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{})
	a := e.mustConnect(t, e.sessions.add("sa", "ada", time.Time{}), dialOptions{})
	b := e.mustConnect(t, e.sessions.add("sb", "ben", time.Time{}), dialOptions{})
	e.hub.CloseAll(realtime.StatusSessionChanged, realtime.ReasonSessionChanged)
	for _, c := range []*client{a, b} {
		c.expectClose(realtime.StatusSessionChanged, realtime.ReasonSessionChanged)
	}
	waitFor(t, "every socket to be dropped", func() bool { return e.hub.Connections() == 0 })
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ping      time.Duration // Config.PingInterval; pings share the expiry's timer
		extend    bool
		wantClose bool
	}{
		{"Expired", 0, false, true},
		{"Extended", 0, true, false},
		{"ExpiredWhilePinging", 30 * time.Millisecond, false, true},
		{"ExtendedWhilePinging", 30 * time.Millisecond, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, realtime.Config{PingInterval: tt.ping})
			token := e.sessions.add("s", "ada", time.Now().Add(200*time.Millisecond))
			c := e.mustConnect(t, token, dialOptions{})
			c.subscribe("session")
			if tt.extend {
				e.sessions.extend(token, time.Now().Add(time.Hour))
			}
			if tt.wantClose {
				c.expectClose(realtime.StatusSessionEnded, realtime.ReasonSessionEnded)
				return
			}
			time.Sleep(400 * time.Millisecond)
			mustPublishSession(t, e.hub, "s", event(1, ""))
			c.expect(msg{Type: "event", Topic: "session", Seq: 1})
		})
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reading  bool
		wantOpen bool
	}{
		{"Responsive", true, true},
		{"Unresponsive", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, realtime.Config{PingInterval: 20 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
			c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
			if tt.reading {
				// Reading is what answers pings on the client side.
				ctx := c.ws.CloseRead(context.Background())
				time.Sleep(400 * time.Millisecond)
				if ctx.Err() != nil || e.hub.Connections() != 1 {
					t.Fatal("a responsive socket was closed")
				}
				return
			}
			waitFor(t, "the socket to be registered", func() bool { return e.hub.Connections() == 1 })
			waitFor(t, "the unresponsive socket to be dropped", func() bool { return e.hub.Connections() == 0 })
			c.expectClose(websocket.StatusPolicyViolation, realtime.ReasonPingTimeout)
		})
	}
}

func TestMaxSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{MaxSubscriptions: 2})
	c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
	c.subscribe("session")
	c.subscribe("activity")
	c.sendLine(`{"type":"subscribe","topic":"presence"}`)
	c.expect(msg{Type: "error", Topic: "presence", Code: "too_many_subscriptions"})
	// Room made by unsubscribing can be used again.
	c.sendLine(`{"type":"unsubscribe","topic":"activity"}`)
	c.expect(msg{Type: "unsubscribed", Topic: "activity"})
	c.subscribe("presence")
}

func TestTooManyInFlight(t *testing.T) {
	t.Parallel()
	// The first subscription waits in the Authorizer while the client
	// keeps sending.
	release := make(chan struct{})
	defer close(release) // before the hub shuts down, which waits for the Authorizer
	authz := &testAuthorizer{subscribe: func(p *realtime.Principal, topic string) error {
		<-release
		return nil
	}}
	e := newEnv(t, realtime.Config{Authorizer: authz})
	c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
	lines := make([]string, 40)
	for i := range lines {
		lines[i] = `{"type":"subscribe","topic":"impersonation:` + fmt.Sprint(i) + `"}`
	}
	c.sendLine(strings.Join(lines, "\n"))
	c.expectClose(websocket.StatusPolicyViolation, realtime.ReasonTooManyInFlight)
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{})
	token := e.sessions.add("s", "ada", time.Time{})
	c := e.mustConnect(t, token, dialOptions{})
	c.subscribe("session")
	mustPublishSession(t, e.hub, "s", event(1, ""))

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.hub.Shutdown(ctx)
	}()
	c.expect(msg{Type: "event", Topic: "session", Seq: 1})
	c.expectClose(websocket.StatusGoingAway, realtime.ReasonShutdown)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := e.dial(ctx, token, dialOptions{})
	if err == nil {
		ws.CloseNow()
		t.Fatal("a socket opened after Shutdown")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Shutdown: %v, want 503", err)
	}
	if code, _ := readErrorBody(t, resp.Body); code != realtime.EUnavailable {
		t.Fatalf("error code %q, want %q", code, realtime.EUnavailable)
	}
}

func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{})
	c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
	c.subscribe("session")
	// The client never reads, so it never answers the close handshake.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.hub.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown = %v, want %v", err, context.DeadlineExceeded)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Shutdown took %v past its deadline", d)
	}
	waitFor(t, "the socket to be dropped", func() bool { return e.hub.Connections() == 0 })
}

// BenchmarkFanOut measures publishing one event and its arrival at every
// one of 100 subscribed sockets.
func BenchmarkFanOut(b *testing.B) {
	const sockets = 100
	e := newEnv(b, realtime.Config{QueueSize: 4096})
	var remaining atomic.Int64
	arrived := make(chan struct{}, 1)
	for i := range sockets {
		c := e.mustConnect(b, e.sessions.add(fmt.Sprint("s", i), "ada", time.Time{}), dialOptions{})
		c.subscribe("activity")
		go func() {
			for {
				lines, err := c.readFrame()
				if err != nil {
					return
				}
				if remaining.Add(-int64(len(lines))) == 0 {
					arrived <- struct{}{}
				}
			}
		}()
	}
	ev := event(1, strings.Repeat("n", 200))
	b.ReportAllocs()
	for b.Loop() {
		remaining.Store(sockets)
		if err := e.hub.Publish("activity", ev); err != nil {
			b.Fatal(err)
		}
		<-arrived
	}
}

func TestPanicClosesOnlyThatSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{Authorizer: &testAuthorizer{subscribe: func(p *realtime.Principal, topic string) error {
		if topic == realtime.TopicPresence {
			panic("authorizer bug")
		}
		return nil
	}}})
	bad := e.mustConnect(t, e.sessions.add("s1", "ada", time.Time{}), dialOptions{})
	good := e.mustConnect(t, e.sessions.add("s2", "ben", time.Time{}), dialOptions{})
	bad.sendLine(`{"type":"subscribe","topic":"presence"}`)
	bad.expectClose(websocket.StatusInternalError, "")
	good.subscribe("session")
}
