package balancer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/balancer"
)

// testBackend is a console stand-in: /readyz answers its status, /ws
// echoes WebSocket messages prefixed with its name, /drop reads the request
// and drops the connection without answering, and anything else describes
// the request it received.
type testBackend struct {
	name  string
	srv   *httptest.Server
	ready atomic.Int32 // the status /readyz answers
	hits  atomic.Int64 // requests but health checks
	drops atomic.Int64

	mu      sync.Mutex
	sockets []*websocket.Conn
}

// seen is what a backend tells of the request it received.
type seen struct {
	Backend, Method, Host, Body, XFF, XFP string
}

func newBackend(t *testing.T, name string) *testBackend {
	t.Helper()
	b := &testBackend{name: name}
	b.ready.Store(http.StatusOK)
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.kill)
	return b
}

func (b *testBackend) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/readyz":
		w.WriteHeader(int(b.ready.Load()))
		return
	case "/ws":
		b.echo(w, r)
		return
	case "/drop":
		b.drops.Add(1)
		_, _ = io.ReadAll(r.Body)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	b.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(seen{
		Backend: b.name, Method: r.Method, Host: r.Host, Body: string(body),
		XFF: r.Header.Get("X-Forwarded-For"), XFP: r.Header.Get("X-Forwarded-Proto"),
	})
}

// echo accepts a WebSocket with coder/websocket's default Origin check
// (the Origin's host must be the Host the request names) and echoes.
func (b *testBackend) echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	b.mu.Lock()
	b.sockets = append(b.sockets, c)
	b.mu.Unlock()
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, append([]byte(b.name+":"), msg...)); err != nil {
			return
		}
	}
}

// kill stops the backend as a crash would: its port refuses connections
// and every connection it had, WebSockets included, is cut.
func (b *testBackend) kill() {
	b.srv.CloseClientConnections()
	b.srv.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.sockets {
		_ = c.CloseNow()
	}
	b.sockets = nil
}

// mustBalance serves a balancer over the backends on a free port until the
// test ends, and waits until every backend is up.
func mustBalance(t *testing.T, every time.Duration, backends ...*testBackend) (*balancer.Balancer, string) {
	t.Helper()
	urls := make([]string, len(backends))
	for i, b := range backends {
		urls[i] = b.srv.URL
	}
	bal, err := balancer.New(balancer.Config{
		Backends: urls, HealthEvery: every,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bal.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	waitFor(t, "every backend up", func() bool { return countUp(bal) == len(backends) })
	return bal, "http://" + ln.Addr().String()
}

func countUp(bal *balancer.Balancer) int {
	n := 0
	for _, b := range bal.Backends() {
		if b.Up {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// send sends a request through the balancer and decodes what the backend
// saw; headers come as key, value pairs.
func send(t *testing.T, method, url, body string, headers ...string) (int, seen) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var s seen
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
	return res.StatusCode, s
}

func TestNew(t *testing.T) {
	t.Parallel()
	for name, backends := range map[string][]string{
		"ErrNoBackends": nil,
		"ErrNotURL":     {"localhost:8081"},
		"ErrScheme":     {"ftp://localhost:8081"},
		"ErrPath":       {"http://localhost:8081/console"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := balancer.New(balancer.Config{Backends: backends}); err == nil {
				t.Fatalf("%q accepted", backends)
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		bal, err := balancer.New(balancer.Config{Backends: []string{"http://127.0.0.1:8081/", "https://node2:8443"}})
		if err != nil {
			t.Fatal(err)
		}
		got := bal.Backends()
		if len(got) != 2 || got[0].URL != "http://127.0.0.1:8081" || got[1].URL != "https://node2:8443" || got[0].Up || got[1].Up {
			t.Fatalf("%+v: want both listed and down before a health check", got)
		}
	})
}

// Requests go round-robin over the backends, keep the Host the client
// sent, and say whom and how the balancer served; forwarding headers the
// client made up are dropped.
func TestRoundRobin(t *testing.T) {
	t.Parallel()
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	_, url := mustBalance(t, 0, a, b, c)
	count := map[string]int{}
	for range 9 {
		status, s := send(t, http.MethodGet, url+"/api/v1/session", "", "X-Forwarded-For", "10.9.9.9", "X-Forwarded-Proto", "https")
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		if s.Host != strings.TrimPrefix(url, "http://") || s.XFF != "127.0.0.1" || s.XFP != "http" {
			t.Fatalf("backend saw %+v; want Host %s, X-Forwarded-For 127.0.0.1, X-Forwarded-Proto http", s, url)
		}
		count[s.Backend]++
	}
	if count["a"] != 3 || count["b"] != 3 || count["c"] != 3 {
		t.Fatalf("requests per backend: %v", count)
	}
}

// A backend whose health check fails gets no requests, and gets them again
// once it passes.
func TestHealthCheck(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	bal, url := mustBalance(t, 20*time.Millisecond, a, b)
	b.ready.Store(http.StatusServiceUnavailable)
	waitFor(t, "b taken out", func() bool { return !bal.Backends()[1].Up })
	before := b.hits.Load()
	for range 6 {
		if status, s := send(t, http.MethodGet, url+"/", ""); status != http.StatusOK || s.Backend != "a" {
			t.Fatalf("%d from %q, want 200 from a", status, s.Backend)
		}
	}
	if b.hits.Load() != before {
		t.Fatal("a backend that is not ready got requests")
	}
	b.ready.Store(http.StatusOK)
	waitFor(t, "b back", func() bool {
		_, s := send(t, http.MethodGet, url+"/", "")
		return s.Backend == "b"
	})
}

// dialEcho opens a WebSocket through the balancer, as a browser on its
// page would (Origin: the balancer), and returns the name of the backend
// that echoed.
func dialEcho(t *testing.T, url string) (*websocket.Conn, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {url}},
	})
	if err != nil {
		t.Fatalf("dial through the balancer: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name, rest, _ := strings.Cut(string(msg), ":")
	if rest != "hello" {
		t.Fatalf("echo %q", msg)
	}
	return c, name
}

// A WebSocket upgrade passes through with its Host and Origin intact; when
// its backend dies the socket ends, and the next one reaches a live
// backend.
func TestWebSocket(t *testing.T) {
	t.Parallel()
	backends := map[string]*testBackend{"a": newBackend(t, "a"), "b": newBackend(t, "b")}
	_, url := mustBalance(t, time.Hour, backends["a"], backends["b"])
	c, first := dialEcho(t, url)
	backends[first].kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the socket outlived its backend: %v", err)
	}
	for range 4 {
		if _, again := dialEcho(t, url); again == first {
			t.Fatalf("a socket reached the dead backend %s", first)
		}
	}
}

// A backend killed mid-test is taken out on the first connection refused,
// without waiting for a health check, and the request that met it, even a
// POST, is sent to another backend with its body.
func TestBackendKilled(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	bal, url := mustBalance(t, time.Hour, a, b) // no health check after the first
	if status, _ := send(t, http.MethodGet, url+"/", ""); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	a.kill()
	// Round-robin starts the two requests on different backends: one of
	// them meets the dead one first.
	for _, body := range []string{`{"n":1}`, `{"n":2}`} {
		status, s := send(t, http.MethodPost, url+"/api/v1/bookings", body)
		if status != http.StatusOK || s.Backend != "b" || s.Body != body || s.Method != http.MethodPost {
			t.Fatalf("%d %+v, want b to get the POST with %s", status, s, body)
		}
	}
	if up := bal.Backends(); up[0].Up || !up[1].Up {
		t.Fatalf("%+v: want a down, b up", up)
	}
	for range 6 {
		if status, s := send(t, http.MethodGet, url+"/", ""); status != http.StatusOK || s.Backend != "b" {
			t.Fatalf("%d from %q", status, s.Backend)
		}
	}
}

// A request that reached a backend which then failed is tried on another
// only when sending it twice is harmless: a POST is not, a GET is. With no
// backend left the balancer answers 503.
func TestRetryOnlyIdempotent(t *testing.T) {
	t.Parallel()
	t.Run("POST", func(t *testing.T) {
		t.Parallel()
		a, b := newBackend(t, "a"), newBackend(t, "b")
		bal, url := mustBalance(t, time.Hour, a, b)
		if status, _ := send(t, http.MethodPost, url+"/drop", `{"once":true}`); status != http.StatusBadGateway {
			t.Fatalf("POST that reached a failing backend: %d, want 502", status)
		}
		if n := a.drops.Load() + b.drops.Load(); n != 1 {
			t.Fatalf("the POST reached backends %d times, want once", n)
		}
		if countUp(bal) != 1 {
			t.Fatalf("%+v: want the failed backend down", bal.Backends())
		}
	})
	t.Run("GET", func(t *testing.T) {
		t.Parallel()
		a, b := newBackend(t, "a"), newBackend(t, "b")
		bal, url := mustBalance(t, time.Hour, a, b)
		if status, _ := send(t, http.MethodGet, url+"/drop", ""); status != http.StatusBadGateway {
			t.Fatalf("GET: %d, want 502", status)
		}
		if a.drops.Load() == 0 || b.drops.Load() == 0 {
			t.Fatalf("the GET reached a %d and b %d times, want both tried", a.drops.Load(), b.drops.Load())
		}
		if countUp(bal) != 0 {
			t.Fatalf("%+v: want both down", bal.Backends())
		}
		if status, _ := send(t, http.MethodGet, url+"/", ""); status != http.StatusServiceUnavailable {
			t.Fatalf("no backend up: %d, want 503", status)
		}
	})
}

// Stopping the balancer ends the WebSockets it carries too.
func TestServeStopsSockets(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a")
	bal, err := balancer.New(balancer.Config{Backends: []string{a.srv.URL}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- bal.Serve(ctx, ln) }()
	waitFor(t, "a up", func() bool { return countUp(bal) == 1 })
	c, _ := dialEcho(t, "http://"+ln.Addr().String())
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	read, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if _, _, err := c.Read(read); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the socket outlived the balancer: %v", err)
	}
}
