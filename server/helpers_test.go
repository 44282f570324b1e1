package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"standin/server"
	"standin/server/audit"
	"standin/server/password"
)

// testCost keeps password hashing cheap in tests; production uses
// password.Default.
var testCost = password.Params{Time: 1, Memory: 1024, Threads: 1}

// logSegment is the collection a test console's audit log is stored in on
// its embedded database: the first segment, which holds seqs 1 to 1,024,
// more than any test writes.
const logSegment = "events_000000000000"

// console is one running server started through server.Run.
type console struct {
	URL     string
	DataDir string
	stop    context.CancelFunc
	done    chan error
}

// mustStart runs the server on a free port over the embedded database in
// dataDir (a new temporary directory when empty) and stops it at cleanup.
func mustStart(t testing.TB, dataDir string) *console {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	c := mustRun(t, server.Config{DataDir: dataDir})
	c.DataDir = dataDir
	return c
}

// mustRun runs the server with cfg on a free port, with cheap password
// hashing and quiet logs unless set, and stops it at cleanup.
func mustRun(t testing.TB, cfg server.Config) *console {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	c := &console{stop: cancel, done: make(chan error, 1)}
	logLevel := slog.LevelError
	if os.Getenv("STANDIN_TEST_LOG") != "" {
		logLevel = slog.LevelDebug
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.PasswordCost == (password.Params{}) {
		cfg.PasswordCost = testCost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	}
	if cfg.FollowEvery == 0 {
		// Each test's console is alone on a database of its own in the
		// shared test database server, where probing twenty times a
		// second for other nodes, in every console of a parallel run,
		// would slow the whole suite. Tests of several nodes run real
		// processes with the default (package clustertest).
		cfg.FollowEvery = time.Second
	}
	if cfg.MongoURI != "" && cfg.DataDir == "" {
		// A server on a shared database keeps its audit anchor in a data
		// directory of its own.
		cfg.DataDir = t.TempDir()
	}
	if cfg.MongoURI != "" && cfg.AuditKeyFile == "" {
		cfg.AuditKeyFile = mustAuditKey(t)
	}
	cfg.OnListen = func(a net.Addr) { addr <- a }
	go func() { c.done <- server.Run(ctx, cfg) }()
	select {
	case a := <-addr:
		c.URL = "http://" + a.String()
	case err := <-c.done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("server did not start within 60s")
	}
	t.Cleanup(func() { c.Stop(t) })
	return c
}

// mustAuditKey creates an audit key file, as an operator gives every
// server sharing a database (MONGODB_URI), and returns its path.
func mustAuditKey(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.key")
	if _, err := audit.CreateKey(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Stop shuts the server down and checks that Run returned cleanly. Calling
// it twice is harmless.
func (c *console) Stop(t testing.TB) {
	t.Helper()
	if c.stop == nil {
		return
	}
	c.stop()
	c.stop = nil
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("server.Run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("server did not stop within 30s")
	}
}

// client is a browser-like HTTP client: a cookie jar and the CSRF token of
// its session.
type client struct {
	t    testing.TB
	base string
	http *http.Client
	csrf string
}

func newClient(t testing.TB, base string) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r *response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// ErrorCode returns error.code of an error body.
func (r *response) ErrorCode(t testing.TB) string {
	t.Helper()
	e, ok := r.JSON(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.Body)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("error without a message: %s", r.Body)
	}
	code, _ := e["code"].(string)
	return code
}

// try sends a request like do, with the session's CSRF token on anything
// but GET, and returns transport errors instead of failing the test: for
// goroutines and for servers that may be gone.
func (c *client) try(method, path string, body any) (*response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: raw}, nil
}

// verify asks GET /activity/verify and, while the shared verification
// still runs (202 with its run), asks for that run again until it answers
// with the report. A loaded machine can take longer than the server's wait.
func (c *client) verify() *response {
	c.t.Helper()
	r := c.do(http.MethodGet, "/api/v1/activity/verify", nil)
	for deadline := time.Now().Add(2 * time.Minute); r.Status == http.StatusAccepted; {
		if time.Now().After(deadline) {
			c.t.Fatalf("verify still running after 2 minutes: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
		run, ok := r.JSON(c.t)["run"].(float64)
		if !ok {
			c.t.Fatalf("verify running without a run: %s", r.Body)
		}
		r = c.do(http.MethodGet, fmt.Sprintf("/api/v1/activity/verify?run=%.0f", run), nil)
	}
	return r
}

// do sends a request; body may be nil, a string (sent raw) or a value
// (sent as JSON). Headers are given as key, value pairs.
func (c *client) do(method, path string, body any, headers ...string) *response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Host" {
			req.Host = headers[i+1] // net/http sends req.Host, not a Host header
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: raw}
}

// mustLogin signs in and keeps the session's CSRF token.
func (c *client) mustLogin(email string) map[string]any {
	c.t.Helper()
	r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": "demo"})
	if r.Status != http.StatusOK {
		c.t.Fatalf("login %s: %d %s", email, r.Status, r.Body)
	}
	m := r.JSON(c.t)
	c.csrf, _ = m["csrf_token"].(string)
	if c.csrf == "" {
		c.t.Fatalf("login reply has no csrf_token: %s", r.Body)
	}
	return m
}

// post sends a state-changing request with the session's CSRF token.
func (c *client) post(path string, body any) *response {
	c.t.Helper()
	return c.do(http.MethodPost, path, body, "X-CSRF-Token", c.csrf)
}

// cookie returns the session cookie the jar holds for the server.
func (c *client) cookie(name string) *http.Cookie {
	req, _ := http.NewRequest(http.MethodGet, c.base, nil)
	for _, ck := range c.http.Jar.Cookies(req.URL) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}
