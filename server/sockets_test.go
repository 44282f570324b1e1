package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
	"standin/server"
	"standin/server/standin"
)

// mustOpenSocket opens /ws for c and checks it works: it subscribes to the
// session topic and reads the answer. The socket is closed at cleanup.
func mustOpenSocket(ctx context.Context, t *testing.T, c *client) *websocket.Conn {
	t.Helper()
	conn, _, err := c.dialWS(ctx)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	msg, _ := json.Marshal(map[string]any{"type": "subscribe", "topic": "session"})
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if got := readMessages(ctx, t, conn); got[0]["type"] != "subscribed" {
		t.Fatalf("reply %v, want subscribed", got)
	}
	return conn
}

// expectRefusedSocket opens /ws for c and checks that the server closes it
// at once with 4029 and reason.
func expectRefusedSocket(ctx context.Context, t *testing.T, c *client, reason string) {
	t.Helper()
	conn, _, err := c.dialWS(ctx)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer conn.CloseNow()
	for {
		if _, _, err = conn.Read(ctx); err != nil {
			break
		}
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != realtime.StatusTooManySockets || ce.Reason != reason {
		t.Fatalf("socket past the cap ended with %v, want close code %d %q", err, realtime.StatusTooManySockets, reason)
	}
}

// TestSocketCapsThroughServer: the server's caps on live connections per
// session and per person, with real sign-ins and sockets.
func TestSocketCapsThroughServer(t *testing.T) {
	t.Parallel()
	srv := mustRun(t, server.Config{DataDir: t.TempDir(), MaxSocketsPerSession: 2, MaxSocketsPerUser: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tabs := newClient(t, srv.URL)
	tabs.mustLogin("ada@example.org")
	for range 2 {
		mustOpenSocket(ctx, t, tabs)
	}
	expectRefusedSocket(ctx, t, tabs, realtime.ReasonTooManyForSession)

	// Ada's second browser: its session is within its cap, but Ada holds
	// as many sockets as one person may.
	laptop := newClient(t, srv.URL)
	laptop.mustLogin("ada@example.org")
	mustOpenSocket(ctx, t, laptop)
	expectRefusedSocket(ctx, t, laptop, realtime.ReasonTooManyForUser)

	ben := newClient(t, srv.URL)
	ben.mustLogin("ben@example.org")
	mustOpenSocket(ctx, t, ben)
}

// TestHTTPAnswersWithSocketsAtLimit: with the server holding all the
// sockets it may, another upgrade is refused with 503 before upgrading,
// while health checks and sign-in answer as ever.
func TestHTTPAnswersWithSocketsAtLimit(t *testing.T) {
	t.Parallel()
	srv := mustRun(t, server.Config{DataDir: t.TempDir(), MaxSockets: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ada, ben := newClient(t, srv.URL), newClient(t, srv.URL)
	ada.mustLogin("ada@example.org")
	ben.mustLogin("ben@example.org")
	for _, c := range []*client{ada, ada, ben, ben} {
		mustOpenSocket(ctx, t, c)
	}

	conn, res, err := ben.dialWS(ctx)
	if err == nil {
		conn.CloseNow()
		t.Fatal("a socket past the server's limit was upgraded")
	}
	if res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upgrade past the limit: %v, want 503", err)
	}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Error.Code != standin.EUnavailable || body.Error.Message == "" {
		t.Fatalf("refusal body %+v (%v), want code %s and a message", body, err, standin.EUnavailable)
	}

	if r := ada.do(http.MethodGet, "/healthz", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz: %d", r.Status)
	}
	if r := ada.do(http.MethodGet, "/api/v1/session", nil); r.Status != http.StatusOK {
		t.Fatalf("session: %d %s", r.Status, r.Body)
	}
	newClient(t, srv.URL).mustLogin("cleo@example.org")
}
