package realtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
)

// FuzzClientFrame sends arbitrary text frames to a socket of a running hub
// and checks how it answers: only JSON lines of the protocol's kinds, or a
// close with a documented code (a frame over the read limit, too many
// requests in flight), and never an internal error. A sentinel subscribe
// after each frame shows the socket still serving.
func FuzzClientFrame(f *testing.F) {
	stored := []realtime.Event{event(1, ""), event(2, ""), event(3, "")}
	// Every input opens a socket of one session, and the one before may
	// not have left the hub yet: the caps on sockets are not what this
	// target explores (TestSocketCaps is).
	e := newEnv(f, realtime.Config{ReadLimit: 1 << 10, Backlog: &testBacklog{events: map[string][]realtime.Event{"activity": stored}},
		MaxSocketsPerSession: 1 << 20, MaxSocketsPerUser: 1 << 20})
	for _, seed := range []string{
		`{"type":"subscribe","topic":"activity","after_seq":3}`,
		`{"type":"subscribe","topic":"impersonation:abc","after_seq":0}`,
		`{"type":"unsubscribe","topic":"activity"}`,
		`{"type":"subscribe","topic":"session"}` + "\n" + `{"type":"subscribe","topic":"presence"}`,
		`{"type":"subscribe","topic":"activity","after_seq":-1}`,
		`{"type":"subscribe","topic":"activity","after_seq":1e400}`,
		`{"type":"subscribe","topic":"impersonation:` + string(make([]byte, 80)) + `"}`,
		`{"type":"wat"}`, `{}`, `[]`, `null`, `"x"`, "\n\n", `{"type":"subscribe"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frame string) {
		if len(frame) > 4<<10 {
			// Frames over the read limit are refused unread; TestReadLimit
			// covers them. Larger ones would only fill socket buffers.
			return
		}
		c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
		// Writes are bounded: a frame over the read limit makes the server
		// close rather than read it, which can leave a long write waiting.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		for _, line := range []string{frame, `{"type":"subscribe","topic":"no such topic"}`} {
			if err := c.ws.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
				break // closed: the reads below say how
			}
		}
		for {
			m, err := c.next()
			if err != nil {
				closedAsDocumented(t, err)
				return
			}
			switch m.Type {
			case "subscribed", "event", "unsubscribed":
			case "error":
				if m.Code == "" || m.Message == "" {
					t.Fatalf("error without code or message: %+v", m)
				}
				if m.Topic == "no such topic" {
					return // the sentinel's answer: the socket serves on
				}
			default:
				t.Fatalf("unknown message type %q: %+v", m.Type, m)
			}
		}
	})
}

// closedAsDocumented accepts a socket closed for a frame over the read
// limit or for too many requests in flight, and nothing else.
func closedAsDocumented(t *testing.T, err error) {
	t.Helper()
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("socket failed without a close frame: %v", err)
	}
	switch ce.Code {
	case websocket.StatusMessageTooBig, websocket.StatusPolicyViolation:
	default:
		t.Fatalf("socket closed with %d %q", ce.Code, ce.Reason)
	}
}
