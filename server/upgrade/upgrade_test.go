package upgrade_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gofiber/fiber/v2"

	"standin/server/upgrade"
)

// echoHandler refuses plain requests with a JSON 401, as an authenticated
// endpoint does before upgrading, and echoes every message of a WebSocket.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Deny") != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthenticated","message":"Sign in first."}}`)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	// r.Context() is never cancelled behind Fiber, so the connection's life
	// is bounded by the peer instead.
	ctx := context.Background()
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, b); err != nil {
			return
		}
	}
}

// streamHandler flushes between two writes.
func streamHandler(w http.ResponseWriter, r *http.Request) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no flusher", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "first,")
	f.Flush()
	io.WriteString(w, "second")
}

// startFiber serves the handlers through Handler on a Fiber app listening
// on a loopback port and returns the base URL.
func startFiber(tb testing.TB) string {
	tb.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/ws", upgrade.Handler(http.HandlerFunc(echoHandler)))
	app.Get("/stream", upgrade.Handler(http.HandlerFunc(streamHandler)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	tb.Cleanup(func() {
		if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("listener: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// mustDial opens a WebSocket and closes it at cleanup.
func mustDial(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	tb.Cleanup(func() { c.Close(websocket.StatusNormalClosure, "") })
	return c
}

func TestHandlerUpgrade(t *testing.T) {
	t.Parallel()
	base := startFiber(t)
	c := mustDial(t, "ws"+strings.TrimPrefix(base, "http")+"/ws")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 10 {
		want := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(want)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if typ != websocket.MessageText || string(got) != want {
			t.Fatalf("echo %d = %v %q, want text %q", i, typ, got, want)
		}
	}
	// A binary message larger than the bufio buffers crosses several reads.
	big := []byte(strings.Repeat("0123456789", 10_000))
	if err := c.Write(ctx, websocket.MessageBinary, big); err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(-1)
	typ, got, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if typ != websocket.MessageBinary || string(got) != string(big) {
		t.Fatalf("big echo: type %v, %d bytes, want binary %d bytes", typ, len(got), len(big))
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestHandlerPassThrough(t *testing.T) {
	t.Parallel()
	base := startFiber(t)
	tests := []struct {
		name       string
		path       string
		header     http.Header
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{
			name:       "ErrorBeforeUpgrade",
			path:       "/ws",
			header:     http.Header{"X-Deny": {"1"}},
			wantStatus: http.StatusUnauthorized,
			wantType:   "application/json",
			wantBody:   `{"error":{"code":"unauthenticated","message":"Sign in first."}}`,
		},
		{
			name:       "NotWebSocket",
			path:       "/ws",
			wantStatus: http.StatusUpgradeRequired,
			wantBody:   "WebSocket protocol violation",
		},
		{
			name: "ForeignOrigin",
			path: "/ws",
			header: http.Header{
				"Connection":            {"Upgrade"},
				"Upgrade":               {"websocket"},
				"Sec-Websocket-Version": {"13"},
				"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
				"Origin":                {"https://elsewhere.example"},
			},
			wantStatus: http.StatusForbidden,
			wantBody:   "not authorized",
		},
		{
			name:       "Flushed",
			path:       "/stream",
			wantStatus: http.StatusOK,
			wantType:   "text/plain",
			wantBody:   "first,second",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodGet, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantType != "" && resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tt.wantType)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", body, tt.wantBody)
			}
		})
	}
}

// BenchmarkRoundTrip measures one message echoed over an upgraded
// connection, through Fiber and, for comparison, through net/http alone.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(echoHandler))
	b.Cleanup(srv.Close)
	targets := []struct {
		name string
		url  string
	}{
		{"Fiber", "ws" + strings.TrimPrefix(startFiber(b), "http") + "/ws"},
		{"NetHTTP", "ws" + strings.TrimPrefix(srv.URL, "http")},
	}
	msg := []byte(`{"type":"event","topic":"activity","event":{"seq":1}}`)
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			c := mustDial(b, target.url)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
