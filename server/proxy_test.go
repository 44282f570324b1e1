package server_test

import (
	"net/http"
	"testing"

	"standin/server"
)

// TestForwardedForFromTrustedProxies: behind a trusted load balancer, the
// client is the address X-Forwarded-For names, in audit events (and so
// in sign-in limits, which count by the same address); from anyone else
// the header is ignored, so a client cannot pass for another address.
func TestForwardedForFromTrustedProxies(t *testing.T) {
	t.Parallel()
	loginIP := func(srv *facilityConsole) string {
		t.Helper()
		c := newClient(t, srv.URL)
		r := c.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "support@example.org", "password": "demo"},
			"X-Forwarded-For", "203.0.113.7")
		if r.Status != http.StatusOK {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		admin := newClient(t, srv.URL)
		admin.mustLogin("admin@example.org")
		supportID := userID(t, admin, "support@example.org")
		for _, e := range events(t, admin, "type=auth.login") {
			if actor, _ := e["actor"].(map[string]any); actor["id"] == supportID {
				ip, _ := e["ip"].(string)
				return ip
			}
		}
		t.Fatal("no sign-in of support in the log")
		return ""
	}
	behind := mustStartFacility(t, func(c *server.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	if ip := loginIP(behind); ip != "203.0.113.7" {
		t.Errorf("behind a trusted proxy the sign-in came from %q, want the forwarded 203.0.113.7", ip)
	}
	direct := mustStartFacility(t)
	if ip := loginIP(direct); ip != "127.0.0.1" {
		t.Errorf("without trusted proxies the sign-in came from %q, want the connection's 127.0.0.1", ip)
	}
}
