package server_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"standin/server"
	"standin/server/clustertest"
)

// What authentication keeps in memory on one node follows what another
// node changes: Ben's rename on A shows on B, his session ended on A is
// refused on B, and an impersonation ended on B is no longer in force on
// A; on the node that made a change it shows at once. How long each took
// to reach the other node is logged: the bound the caches keep.
func TestAuthMemoryFollowsOtherNodes(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Nodes: 2})
	a, b := c.Node(0).URL(), c.Node(1).URL()
	ben, support, admin := newClient(t, a), newClient(t, a), newClient(t, b)
	ben.mustLogin("ben@example.org")
	support.mustLogin("support@example.org")
	admin.mustLogin("admin@example.org")
	name := func(cl *client) any { return cl.do(http.MethodGet, "/api/v1/profile", nil).JSON(t)["name"] }
	for _, cl := range []*client{ben, ben.on(b)} { // held in memory on both
		if got := name(cl); got != "Ben Okafor" {
			t.Fatalf("profile: %v", got)
		}
	}

	r := ben.do(http.MethodPatch, "/api/v1/profile", map[string]string{"name": "Ben O."}, "X-CSRF-Token", ben.csrf)
	if r.Status != http.StatusOK {
		t.Fatalf("rename on A: %d %s", r.Status, r.Body)
	}
	if got := name(ben); got != "Ben O." {
		t.Fatalf("A right after its own rename: %v", got)
	}
	start := time.Now()
	waitUntil(t, "the rename on A to show on B", func() bool { return name(ben.on(b)) == "Ben O." })
	t.Logf("a rename reached the other node after %v", time.Since(start).Round(time.Millisecond))

	// An impersonation started on A and revoked on B: A, which held it in
	// memory, stops acting as Ben.
	benID := userID(t, support, "ben@example.org")
	started := startImpersonation(support, benID, "Ben cannot book the confocal")
	if started.Status != http.StatusCreated {
		t.Fatalf("start on A: %d %s", started.Status, started.Body)
	}
	session(t, support)
	if got := name(support); got != "Ben O." {
		t.Fatalf("acting as Ben on A: %v", got)
	}
	if r := admin.post("/api/v1/impersonations/"+started.JSON(t)["id"].(string)+"/revoke", map[string]any{"reason": "done"}); r.Status != http.StatusOK {
		t.Fatalf("revoke on B: %d %s", r.Status, r.Body)
	}
	start = time.Now()
	waitUntil(t, "the revoke on B to end the impersonation on A", func() bool {
		return support.do(http.MethodGet, "/api/v1/profile", nil).Status != http.StatusOK || name(support) != "Ben O."
	})
	t.Logf("a revoke reached the other node after %v", time.Since(start).Round(time.Millisecond))

	// Ben's token, sent by hand once his browser has dropped it.
	u, err := url.Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for _, ck := range ben.http.Jar.Cookies(u) {
		if ck.Name == server.SessionCookie {
			token = ck.Name + "=" + ck.Value
		}
	}
	stale := newClient(t, b)
	if r := stale.do(http.MethodGet, "/api/v1/session", nil, "Cookie", token); r.Status != http.StatusOK {
		t.Fatalf("Ben's token on B: %d", r.Status)
	}
	if r := ben.post("/api/v1/auth/logout", nil); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
		t.Fatalf("sign out on A: %d %s", r.Status, r.Body)
	}
	if r := stale.on(a).do(http.MethodGet, "/api/v1/session", nil, "Cookie", token); r.Status != http.StatusUnauthorized {
		t.Fatalf("the token on A right after the sign-out: %d", r.Status)
	}
	start = time.Now()
	waitUntil(t, "the sign-out on A to end the session on B", func() bool {
		return stale.do(http.MethodGet, "/api/v1/session", nil, "Cookie", token).Status == http.StatusUnauthorized
	})
	t.Logf("a sign-out reached the other node after %v", time.Since(start).Round(time.Millisecond))
}
