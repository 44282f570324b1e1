package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server"
	"standin/server/embeddeddb"
	"standin/server/standin"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")

	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"OK", map[string]string{"email": "ada@example.org", "password": "demo"}, 200, ""},
		{"OKEmailCaseAndSpace", map[string]string{"email": "  ADA@example.org", "password": "demo"}, 200, ""},
		{"ErrWrongPassword", map[string]string{"email": "ben@example.org", "password": "nope"}, 401, standin.EUnauthenticated},
		{"ErrUnknownUser", map[string]string{"email": "nobody@example.org", "password": "demo"}, 401, standin.EUnauthenticated},
		{"ErrMissingPassword", map[string]string{"email": "ada@example.org"}, 422, standin.EInvalid},
		{"ErrMalformedJSON", `{"email": "ada@example.org",`, 400, standin.EMalformedJSON},
		{"ErrEmptyBody", ``, 400, standin.EMalformedJSON},
		{"ErrUnknownField", `{"email":"ada@example.org","password":"demo","admin":true}`, 400, standin.EMalformedJSON},
		{"ErrWrongType", `{"email":42,"password":"demo"}`, 400, standin.EMalformedJSON},
		{"ErrTrailingData", `{"email":"ada@example.org","password":"demo"} {}`, 400, standin.EMalformedJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv.URL)
			r := c.do(http.MethodPost, "/api/v1/auth/login", tt.body)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if tt.code != "" {
				if got := r.ErrorCode(t); got != tt.code {
					t.Fatalf("code %q, want %q", got, tt.code)
				}
				if c.cookie(server.SessionCookie) != nil {
					t.Fatal("a refused login set a session cookie")
				}
				return
			}
			cookie := r.Header.Get("Set-Cookie")
			for _, attr := range []string{server.SessionCookie + "=", "HttpOnly", "SameSite=Lax", "path=/"} {
				if !strings.Contains(strings.ToLower(cookie), strings.ToLower(attr)) {
					t.Errorf("session cookie %q lacks %s", cookie, attr)
				}
			}
		})
	}

	t.Run("SameMessageForUnknownAndWrong", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, srv.URL)
		wrong := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "cleo@example.org", "password": "x"}).JSON(t)
		unknown := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "ghost@example.org", "password": "x"}).JSON(t)
		if wrong["error"].(map[string]any)["message"] != unknown["error"].(map[string]any)["message"] {
			t.Fatalf("messages differ: %v vs %v", wrong, unknown)
		}
	})
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	c := newClient(t, srv.URL)
	for i := range 5 {
		r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "support@example.org", "password": "guess"})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i+1, r.Status)
		}
	}
	// The right password is refused too until the window passes.
	r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "support@example.org", "password": "demo"})
	if r.Status != http.StatusTooManyRequests || r.ErrorCode(t) != standin.ETooManyRequests {
		t.Fatalf("after 5 failures: %d %s", r.Status, r.Body)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another account from the same address is not locked by it.
	c.mustLogin("ada@example.org")
}

func TestSession(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")

	t.Run("ErrUnauthenticated", func(t *testing.T) {
		t.Parallel()
		r := newClient(t, srv.URL).do(http.MethodGet, "/api/v1/session", nil)
		if r.Status != http.StatusUnauthorized || r.ErrorCode(t) != standin.EUnauthenticated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("Fields", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, srv.URL)
		login := c.mustLogin("manager@example.org")
		r := c.do(http.MethodGet, "/api/v1/session", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		m := r.JSON(t)
		user, _ := m["user"].(map[string]any)
		actor, _ := m["actor"].(map[string]any)
		if user["email"] != "manager@example.org" || user["role"] != "manager" || user["status"] != "active" || user["name"] == "" {
			t.Errorf("user = %v", user)
		}
		if user["id"] == "" || user["id"] != actor["id"] {
			t.Errorf("actor %v should equal user %v when not impersonating", actor, user)
		}
		if imp, present := m["impersonation"]; !present || imp != nil {
			t.Errorf("impersonation = %v (present %v), want null", imp, present)
		}
		if m["csrf_token"] != login["csrf_token"] || m["csrf_token"] == "" {
			t.Errorf("csrf_token %v differs from login's %v", m["csrf_token"], login["csrf_token"])
		}
		if _, leaked := user["password_hash"]; leaked {
			t.Error("password hash leaked")
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
	})

	t.Run("ErrForgedCookie", func(t *testing.T) {
		t.Parallel()
		r := newClient(t, srv.URL).do(http.MethodGet, "/api/v1/session", nil, "Cookie", server.SessionCookie+"=forged")
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("NewLoginRotatesSession", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, srv.URL)
		c.mustLogin("ada@example.org")
		first := c.cookie(server.SessionCookie).Value
		c.mustLogin("ada@example.org")
		if second := c.cookie(server.SessionCookie).Value; second == first {
			t.Fatal("the session token did not change on a new sign-in")
		}
		old := newClient(t, srv.URL).do(http.MethodGet, "/api/v1/session", nil, "Cookie", server.SessionCookie+"="+first)
		if old.Status != http.StatusUnauthorized {
			t.Fatalf("the replaced session still works: %d", old.Status)
		}
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	c := newClient(t, srv.URL)
	c.mustLogin("cleo@example.org")

	t.Run("ErrNoCSRFHeader", func(t *testing.T) {
		r := c.do(http.MethodPost, "/api/v1/auth/logout", nil)
		if r.Status != http.StatusForbidden || r.ErrorCode(t) != standin.ECSRF {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("ErrWrongCSRFHeader", func(t *testing.T) {
		r := c.do(http.MethodPost, "/api/v1/auth/logout", nil, "X-CSRF-Token", "wrong")
		if r.Status != http.StatusForbidden || r.ErrorCode(t) != standin.ECSRF {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("ErrForeignOrigin", func(t *testing.T) {
		r := c.do(http.MethodPost, "/api/v1/auth/logout", nil, "X-CSRF-Token", c.csrf, "Origin", "https://evil.example")
		if r.Status != http.StatusForbidden || r.ErrorCode(t) != standin.ECSRF {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("OK", func(t *testing.T) {
		token := c.cookie(server.SessionCookie).Value
		r := c.post("/api/v1/auth/logout", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if s := c.do(http.MethodGet, "/api/v1/session", nil); s.Status != http.StatusUnauthorized {
			t.Fatalf("session after logout: %d", s.Status)
		}
		// The token is dead on the server, not only dropped by the client.
		replay := newClient(t, srv.URL).do(http.MethodGet, "/api/v1/session", nil, "Cookie", server.SessionCookie+"="+token)
		if replay.Status != http.StatusUnauthorized {
			t.Fatalf("the old token still works: %d", replay.Status)
		}
	})
}

func TestLoginForeignOrigin(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	r := newClient(t, srv.URL).do(http.MethodPost, "/api/v1/auth/login",
		map[string]string{"email": "ada@example.org", "password": "demo"}, "Origin", "https://evil.example")
	if r.Status != http.StatusForbidden || r.ErrorCode(t) != standin.ECSRF {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}

func TestOperations(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	c := newClient(t, srv.URL)

	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"Healthz", "GET", "/healthz", 200, ""},
		{"Readyz", "GET", "/readyz", 200, ""},
		{"ErrUnknownAPIRoute", "GET", "/api/v1/nope", 404, standin.ENotFound},
		{"ErrUnknownAPIMethod", "DELETE", "/api/v1/session", 404, standin.ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(tt.method, tt.path, nil)
			if r.Status != tt.status {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if tt.code != "" && r.ErrorCode(t) != tt.code {
				t.Fatalf("code %q", r.ErrorCode(t))
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("Content-Type %q", r.Header.Get("Content-Type"))
			}
		})
	}

	t.Run("ErrBodyTooLarge", func(t *testing.T) {
		// Announce a 2 MiB body and send none of it: the server must refuse
		// on the length alone, before reading it.
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			strings.TrimPrefix(srv.URL, "http://"), 2<<20)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		r := &response{Status: res.StatusCode, Header: res.Header, Body: body}
		if r.Status != http.StatusRequestEntityTooLarge || r.ErrorCode(t) != standin.ETooLarge {
			t.Fatalf("%d %.200s", r.Status, r.Body)
		}
	})

	t.Run("UI", func(t *testing.T) {
		r := c.do(http.MethodGet, "/", nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "<html") {
			t.Fatalf("%d %.200s", r.Status, r.Body)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Fatalf("CSP %q", csp)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatal("no nosniff header")
		}
	})
}

func TestRestartKeepsDataAndSeedsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := mustStart(t, dir)
	c := newClient(t, srv.URL)
	c.mustLogin("admin@example.org")
	srv.Stop(t)

	// Remove one demo account behind the server's back: a second seeding
	// would bring it back.
	ctx := context.Background()
	edb, err := embeddeddb.Start(ctx, dir, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := mongo.Connect(options.Client().ApplyURI(edb.URI()).SetMaxPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	users := mc.Database("standin").Collection("users")
	if n, err := users.CountDocuments(ctx, bson.M{}); err != nil || n != 7 {
		t.Fatalf("after first start: %d users, %v; want 7", n, err)
	}
	if _, err := users.DeleteOne(ctx, bson.M{"email": "cleo@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := mc.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	edb.Close()

	srv2 := mustStart(t, dir)
	c.base = srv2.URL
	// The session cookie from before the restart still works (the jar is
	// keyed by host, so it is sent to the new port too).
	if r := c.do(http.MethodGet, "/api/v1/session", nil); r.Status != http.StatusOK {
		t.Fatalf("session after restart: %d %s", r.Status, r.Body)
	}
	other := newClient(t, srv2.URL)
	r := other.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "cleo@example.org", "password": "demo"})
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("deleted account signs in after restart (seeded twice?): %d", r.Status)
	}
	other.mustLogin("ben@example.org")
}

func TestHostAndOriginChecks(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	host := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(host)
	login := map[string]string{"email": "ada@example.org", "password": "demo"}

	tests := []struct {
		name    string
		headers []string
		status  int
	}{
		// A page on another name that resolves to loopback (DNS rebinding)
		// is refused, however consistent its Host and Origin are.
		{"ErrRebindingHost", []string{"Host", "rebind.attacker.example:" + port, "Origin", "http://rebind.attacker.example:" + port}, 403},
		{"ErrRebindingHostNoOrigin", []string{"Host", "rebind.attacker.example:" + port}, 403},
		{"ErrForwardedHostNotTrusted", []string{"Origin", "http://evil.example", "X-Forwarded-Host", "evil.example"}, 403},
		{"OKLocalhostName", []string{"Host", "localhost:" + port, "Origin", "http://localhost:" + port}, 200},
		// Behind a TLS proxy the browser's Origin says https for the same host.
		{"OKSameHostOverTLSProxy", []string{"Origin", "https://" + host}, 200},
		{"OKNoOrigin", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newClient(t, srv.URL).do(http.MethodPost, "/api/v1/auth/login", login, tt.headers...)
			if r.Status != tt.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tt.status)
			}
		})
	}

	t.Run("ErrNotJSON", func(t *testing.T) {
		t.Parallel()
		r := newClient(t, srv.URL).do(http.MethodPost, "/api/v1/auth/login", `{"email":"ada@example.org","password":"demo"}`, "Content-Type", "text/plain")
		if r.Status != http.StatusUnsupportedMediaType || r.ErrorCode(t) != standin.EMediaType {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}

func TestParallelGuessesAreLimited(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	const n = 20
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- newClient(t, srv.URL).do(http.MethodPost, "/api/v1/auth/login",
				map[string]string{"email": "ben@example.org", "password": "guess"}).Status
		}()
	}
	wg.Wait()
	close(statuses)
	unauthorized, limited := 0, 0
	for s := range statuses {
		switch s {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Errorf("status %d", s)
		}
	}
	if unauthorized != 5 || limited != n-5 {
		t.Fatalf("%d judged, %d limited; want 5 judged of %d parallel guesses", unauthorized, limited, n)
	}
}

// TestAnswersWhileStarting: the address answers from the first moment of
// start-up. While the audit log is being read, a browser gets a page
// saying so and API clients a 503 with a code; the same client is served
// by the console once it is ready.
func TestAnswersWhileStarting(t *testing.T) {
	t.Parallel()
	atLog := make(chan net.Addr, 1)
	release := make(chan struct{})
	ready := make(chan net.Addr, 1)
	var mu sync.Mutex
	var steps []string
	// Made before the server's stop is registered, so that it is removed
	// only after the server has stopped writing into it.
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			DataDir: dataDir, Addr: "127.0.0.1:0", PasswordCost: testCost,
			Logger: slog.New(slog.DiscardHandler),
			OnStarting: func(addr net.Addr, step string) {
				mu.Lock()
				steps = append(steps, step)
				mu.Unlock()
				if step == "Reading the audit log" {
					atLog <- addr
					<-release
				}
			},
			OnListen: func(addr net.Addr) { ready <- addr },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server.Run returned %v", err)
		}
	})

	var addr net.Addr
	select {
	case addr = <-atLog:
	case err := <-done:
		t.Fatalf("the server stopped while starting: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("start-up did not reach the audit log within 60 s")
	}
	c := newClient(t, "http://"+addr.String())
	for _, path := range []string{"/readyz", "/api/v1/session"} {
		r := c.do(http.MethodGet, path, nil)
		if r.Status != http.StatusServiceUnavailable || r.ErrorCode(t) != standin.EUnavailable ||
			!strings.Contains(string(r.Body), "reading the audit log") {
			t.Fatalf("%s while starting: %d %s", path, r.Status, r.Body)
		}
	}
	if r := c.do(http.MethodGet, "/healthz", nil); r.Status != http.StatusOK {
		t.Fatalf("/healthz while starting: %d %s", r.Status, r.Body)
	}
	page := c.do(http.MethodGet, "/", nil)
	if page.Status != http.StatusServiceUnavailable || !strings.Contains(string(page.Body), "Standin is starting") ||
		!strings.Contains(string(page.Body), "Reading the audit log") {
		t.Fatalf("the page while starting: %d %.300s", page.Status, page.Body)
	}

	close(release)
	select {
	case got := <-ready:
		if got.String() != addr.String() {
			t.Fatalf("ready on %s, started on %s", got, addr)
		}
	case err := <-done:
		t.Fatalf("the server stopped while starting: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the console was not ready within 60 s of the audit log")
	}
	if r := c.do(http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("/readyz once ready: %d %s", r.Status, r.Body)
	}
	c.mustLogin("admin@example.org")
	if r := c.do(http.MethodGet, "/", nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "<title>Standin</title>") {
		t.Fatalf("the console once ready: %d %.200s", r.Status, r.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if i, j := slices.Index(steps, "Starting the database"), slices.Index(steps, "Loading the access policies"); i != 0 || j <= slices.Index(steps, "Reading the audit log") {
		t.Fatalf("start-up steps %q", steps)
	}
}
