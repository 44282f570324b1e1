package server_test

import (
	"net/http"
	"testing"
	"time"

	"standin/server/clustertest"
)

// TestNodesShareModeration: two consoles, real processes on one database.
// A moderator watching through one node lets the agent's session run on
// the other; when the moderator leaves, the other node refuses the agent
// too; and whichever node holds the moderation lease, each resumption and
// pause is audited once.
func TestNodesShareModeration(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Nodes: 2})
	a, b := c.Node(0).URL(), c.Node(1).URL()
	admin, support, maya := newClient(t, a), newClient(t, a), newClient(t, b)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")
	maya.mustLogin("manager@example.org")
	mustModes(t, admin, map[string]any{"scope": "role:user", "mode": "moderated"})

	r := startImpersonation(support, userID(t, admin, "ben@example.org"), "Ben's bookings vanish")
	if r.Status != http.StatusCreated {
		t.Fatalf("start on A: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	// answers waits until the agent's requests on A answer status.
	answers := func(step string, status int) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			got := support.do(http.MethodGet, "/api/v1/bookings", nil).Status
			if got == status {
				return time.Since(start)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: the agent's request on A answers %d, not %d", step, got, status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	answers("before any moderator", http.StatusLocked)

	if r := maya.put("/api/v1/impersonations/"+id+"/moderator", map[string]any{"view_id": "maya-b"}); r.Status != http.StatusOK {
		t.Fatalf("Maya's watch on B: %d %s", r.Status, r.Body)
	}
	t.Logf("a watch on B lets the agent's requests on A run after %v", answers("while Maya watches on B", http.StatusOK))
	if r := maya.do(http.MethodDelete, "/api/v1/impersonations/"+id+"/moderator/maya-b", nil, "X-CSRF-Token", maya.csrf); r.Status != http.StatusNoContent {
		t.Fatalf("Maya leaves on B: %d %s", r.Status, r.Body)
	}
	t.Logf("leaving on B pauses the agent's requests on A after %v", answers("after Maya left on B", http.StatusLocked))
	waitEvents(t, admin, "type=impersonation.resumed&impersonation="+id, 1)
	waitEvents(t, admin, "type=impersonation.paused&impersonation="+id, 1)
}
