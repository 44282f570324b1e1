package realtime_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
)

// TestSocketCaps opens sockets past a session's cap and then past its
// person's cap: each is upgraded, then closed at once with 4029 and a
// reason; the sockets within the caps keep working, another person is not
// affected, and a closed socket frees its place.
func TestSocketCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{MaxSocketsPerSession: 3, MaxSocketsPerUser: 5})
	first := e.sessions.add("ada-1", "ada", time.Time{})
	second := e.sessions.add("ada-2", "ada", time.Time{})
	ben := e.sessions.add("ben-1", "ben", time.Time{})

	var open []*client
	for range 3 {
		c := e.mustConnect(t, first, dialOptions{})
		c.subscribe("session")
		open = append(open, c)
	}
	e.mustConnect(t, first, dialOptions{}).expectClose(realtime.StatusTooManySockets, realtime.ReasonTooManyForSession)

	for range 2 {
		c := e.mustConnect(t, second, dialOptions{})
		c.subscribe("session")
		open = append(open, c)
	}
	// Ada holds 5 sockets across her two sessions: the sixth is one too
	// many for her, though her second session holds only 2.
	e.mustConnect(t, second, dialOptions{}).expectClose(realtime.StatusTooManySockets, realtime.ReasonTooManyForUser)
	e.mustConnect(t, ben, dialOptions{}).subscribe("session")

	// Every socket within the caps still works.
	mustPublishSession(t, e.hub, "ada-1", event(1, ""))
	mustPublishSession(t, e.hub, "ada-2", event(2, ""))
	for i, c := range open {
		c.expect(msg{Type: "event", Topic: "session", Seq: int64(1 + i/3)})
	}

	// A socket closed by its client frees its place, once its connection
	// is closed, a moment after it leaves the hub.
	open[0].ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the closed socket to leave", func() bool { return e.hub.Connections() == 5 })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c := e.mustConnect(t, first, dialOptions{})
		// A refused socket may be closed before this write: next says.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","topic":"session"}`))
		cancel()
		m, err := c.next()
		if err == nil {
			if m.Type != "subscribed" {
				t.Fatalf("got %+v, want subscribed", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a socket closed: %v", err)
		}
	}
}

// TestDefaultSocketCaps: one session holds 32 sockets and no more unless
// configured otherwise.
func TestDefaultSocketCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{})
	token := e.sessions.add("s", "ada", time.Time{})
	for range realtime.DefaultMaxSocketsPerSession {
		e.mustConnect(t, token, dialOptions{}).subscribe("session")
	}
	e.mustConnect(t, token, dialOptions{}).expectClose(realtime.StatusTooManySockets, realtime.ReasonTooManyForSession)
	if got := e.hub.Connections(); got != realtime.DefaultMaxSocketsPerSession {
		t.Fatalf("%d sockets open, want %d", got, realtime.DefaultMaxSocketsPerSession)
	}
}

// TestSocketLimit: past MaxSockets an upgrade is refused with 503 and a
// JSON error before upgrading, and a closed socket makes room again.
func TestSocketLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Config{MaxSockets: 3})
	if got := e.hub.SocketLimit(); got != 3 {
		t.Fatalf("SocketLimit = %d, want 3", got)
	}
	var open []*client
	for i := range 3 {
		c := e.mustConnect(t, e.sessions.add("s"+strconv.Itoa(i), "user"+strconv.Itoa(i), time.Time{}), dialOptions{})
		c.subscribe("session")
		open = append(open, c)
	}
	late := e.sessions.add("late", "late", time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := e.dial(ctx, late, dialOptions{})
	if err == nil {
		ws.CloseNow()
		t.Fatal("a socket past MaxSockets was upgraded")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial past MaxSockets: %v, want 503", err)
	}
	if code, message := readErrorBody(t, resp.Body); code != realtime.EUnavailable || message == "" {
		t.Fatalf("error %q %q, want %q and a message", code, message, realtime.EUnavailable)
	}

	open[0].ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the closed socket to leave", func() bool { return e.hub.Connections() == 2 })
	// Its place is given back once its connection is closed, a moment
	// after it leaves the hub.
	var c *client
	for deadline := time.Now().Add(10 * time.Second); c == nil; time.Sleep(10 * time.Millisecond) {
		ws, _, err := e.dial(ctx, late, dialOptions{})
		if err == nil {
			t.Cleanup(func() { ws.CloseNow() })
			c = &client{t: t, ws: ws}
		} else if time.Now().After(deadline) {
			t.Fatalf("no room after a socket closed: %v", err)
		}
	}
	c.subscribe("session")
}

// TestSocketsWithin: sockets keep 1024 file descriptors, or half the
// limit when that is less, for the rest of the process.
func TestSocketsWithin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ files, reserve, want int }{
		{20000, 0, 18976},
		{1 << 20, 0, 1<<20 - 1024},
		{2048, 0, 1024},
		{1024, 0, 512},
		{256, 0, 128},
		{10000, 100, 9900},
		{100, 200, 0},
	} {
		if got := realtime.SocketsWithin(tc.files, tc.reserve); got != tc.want {
			t.Errorf("SocketsWithin(%d, %d) = %d, want %d", tc.files, tc.reserve, got, tc.want)
		}
	}
}
