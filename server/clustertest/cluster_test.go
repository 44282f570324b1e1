package clustertest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"standin/server/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// browser is an HTTP client that acts as the console's page: a cookie
// jar, the session's CSRF token, and the Origin of the address it opened.
type browser struct {
	t      *testing.T
	origin string
	http   *http.Client
	csrf   string
}

func newBrowser(t *testing.T, origin string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, origin: origin, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// do sends a request to base+path (the cookies of 127.0.0.1 go to every
// node and the balancer alike) and returns the status and body.
func (b *browser) do(method, base, path string, body any) (int, []byte) {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Origin", b.origin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	res, err := b.http.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return res.StatusCode, raw
}

// mustGet checks that GET base+path answers 200.
func (b *browser) mustGet(base, path string) {
	b.t.Helper()
	if status, body := b.do(http.MethodGet, base, path, nil); status != http.StatusOK {
		b.t.Fatalf("GET %s%s: %d %s", base, path, status, body)
	}
}

// Three nodes come up behind the balancer; a demo user signs in through it
// and every node knows the session; GETs keep succeeding through the
// balancer while a node is killed and after it starts again, and the
// restarted node serves the balancer's requests alone once the other two
// are gone. Signing out through the balancer passes the CSRF and Origin
// checks.
func TestCluster(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3})
	b := newBrowser(t, c.URL())
	status, body := b.do(http.MethodPost, c.URL(), "/api/v1/auth/login", map[string]string{"email": "support@example.org", "password": "demo"})
	if status != http.StatusOK {
		t.Fatalf("sign-in through the balancer: %d %s", status, body)
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal(body, &login); err != nil || login.CSRF == "" {
		t.Fatalf("sign-in reply %s: %v", body, err)
	}
	b.csrf = login.CSRF
	for i := range 3 {
		b.mustGet(c.Node(i).URL(), "/api/v1/session")
	}
	for range 6 {
		b.mustGet(c.URL(), "/api/v1/session")
	}

	c.Kill(1)
	for range 12 {
		b.mustGet(c.URL(), "/api/v1/users")
	}
	c.Start(1)
	b.mustGet(c.Node(1).URL(), "/api/v1/session")
	c.Kill(0)
	c.Kill(2)
	for range 6 {
		b.mustGet(c.URL(), "/api/v1/session")
	}

	if status, body := b.do(http.MethodPost, c.URL(), "/api/v1/auth/logout", nil); status/100 != 2 {
		t.Fatalf("sign-out through the balancer: %d %s", status, body)
	}
	if status, _ := b.do(http.MethodGet, c.URL(), "/api/v1/session", nil); status != http.StatusUnauthorized {
		t.Fatalf("after sign-out: %d, want 401", status)
	}
}
