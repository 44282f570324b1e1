package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialWS opens /ws with the client's cookies and the given extra headers.
func (c *client) dialWS(ctx context.Context, headers ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/ws", &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: h,
	})
}

// readMessages reads one frame and splits it into its JSON messages.
func readMessages(ctx context.Context, t *testing.T, conn *websocket.Conn) []map[string]any {
	t.Helper()
	_, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("frame line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	// Each subtest has its own deadline: parallel subtests may wait for a
	// free slot long after this function returns.
	deadline := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("ErrUnauthenticated", func(t *testing.T) {
		t.Parallel()
		ctx := deadline(t)
		_, res, err := newClient(t, srv.URL).dialWS(ctx)
		if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("upgrade without a session: %v, %v", res, err)
		}
	})

	t.Run("ErrForeignOrigin", func(t *testing.T) {
		t.Parallel()
		ctx := deadline(t)
		c := newClient(t, srv.URL)
		c.mustLogin("ada@example.org")
		_, res, err := c.dialWS(ctx, "Origin", "https://evil.example")
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("upgrade from a foreign origin: %v, %v", res, err)
		}
	})

	t.Run("ErrFrameTooBig", func(t *testing.T) {
		// A frame within the 8 KiB limit is answered; one over it closes
		// the socket with 1009 (message too big).
		t.Parallel()
		ctx := deadline(t)
		c := newClient(t, srv.URL)
		c.mustLogin("support@example.org")
		conn, _, err := c.dialWS(ctx, "Origin", srv.URL)
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		defer conn.CloseNow()
		frame := func(size int) []byte {
			head := `{"type":"subscribe","topic":"session","pad":"`
			return []byte(head + strings.Repeat("x", size-len(head)-2) + `"}`)
		}
		if err := conn.Write(ctx, websocket.MessageText, frame(7<<10)); err != nil {
			t.Fatal(err)
		}
		if got := readMessages(ctx, t, conn); got[0]["type"] == nil {
			t.Fatalf("reply to a 7 KiB frame: %v", got)
		}
		if err := conn.Write(ctx, websocket.MessageText, frame(9<<10)); err != nil {
			t.Fatal(err)
		}
		for {
			if _, _, err = conn.Read(ctx); err != nil {
				break
			}
		}
		if status := websocket.CloseStatus(err); status != websocket.StatusMessageTooBig {
			t.Fatalf("socket after a 9 KiB frame ended with %v (status %d), want 1009", err, status)
		}
	})

	t.Run("SubscribeAndLogoutCloses", func(t *testing.T) {
		t.Parallel()
		ctx := deadline(t)
		c := newClient(t, srv.URL)
		c.mustLogin("support@example.org")
		conn, _, err := c.dialWS(ctx, "Origin", srv.URL)
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		defer conn.CloseNow()

		msg, _ := json.Marshal(map[string]any{"type": "subscribe", "topic": "session", "after_seq": 0})
		if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		got := readMessages(ctx, t, conn)
		if got[0]["type"] != "subscribed" || got[0]["topic"] != "session" {
			t.Fatalf("reply %v, want subscribed to session", got)
		}

		if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","topic":"no-such-topic"}`)); err != nil {
			t.Fatal(err)
		}
		got = readMessages(ctx, t, conn)
		if got[0]["type"] != "error" || got[0]["code"] == "" {
			t.Fatalf("reply %v, want an error with a code", got)
		}

		if r := c.post("/api/v1/auth/logout", nil); r.Status != http.StatusOK {
			t.Fatalf("logout: %d", r.Status)
		}
		readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for {
			_, _, err = conn.Read(readCtx)
			if err != nil {
				break
			}
		}
		if status := websocket.CloseStatus(err); status != 4001 {
			t.Fatalf("socket after logout ended with %v (status %d), want close code 4001", err, status)
		}
	})
}

func TestShutdownClosesSockets(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t, srv.URL)
	c.mustLogin("ada@example.org")
	conn, _, err := c.dialWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()

	// Read as a browser does, so the close handshake can complete.
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				closed <- err
				return
			}
		}
	}()
	srv.Stop(t)
	err = <-closed
	if status := websocket.CloseStatus(err); status != websocket.StatusGoingAway {
		t.Fatalf("socket at shutdown ended with %v, want going away", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("socket was left open at shutdown")
	}
}

// TestEveryTabHearsTheSwitch: two sockets of one admin session (two tabs)
// are both told the session changed when impersonation starts, and both
// can reconnect with the new cookie as the impersonated user.
func TestEveryTabHearsTheSwitch(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	var tabs []*websocket.Conn
	for range 2 {
		conn, _, err := admin.dialWS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		tabs = append(tabs, conn)
	}
	closed := make(chan error, len(tabs))
	for _, conn := range tabs {
		go func() {
			for {
				if _, _, err := conn.Read(ctx); err != nil {
					closed <- err
					return
				}
			}
		}()
	}
	if r := startImpersonation(admin, userID(t, admin, "ben@example.org"), "two tabs"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	for range tabs {
		if err := <-closed; websocket.CloseStatus(err) != 4002 {
			t.Fatalf("a tab's socket ended with %v, want 4002 (session changed)", err)
		}
	}
	for range tabs {
		conn, _, err := admin.dialWS(ctx)
		if err != nil {
			t.Fatalf("reconnect with the new cookie: %v", err)
		}
		conn.Close(websocket.StatusNormalClosure, "")
	}
	if user, actor, _ := session(t, admin); user != "ben@example.org" || actor != "admin@example.org" {
		t.Fatalf("session is %s acting for %s", actor, user)
	}
}
