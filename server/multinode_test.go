package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"standin/realtime"
	"standin/server/clustertest"
)

// on returns a client of the same browser (its cookies, its CSRF token)
// that talks to base: another node of the cluster.
func (c *client) on(base string) *client {
	cp := *c
	cp.base = base
	return &cp
}

// closedWith waits for f's socket to close and returns its close code.
func (f *feed) closedWith(ctx context.Context) websocket.StatusCode {
	f.t.Helper()
	for {
		select {
		case _, ok := <-f.msgs:
			if !ok {
				return websocket.CloseStatus(<-f.closed)
			}
		case <-ctx.Done():
			f.t.Fatalf("the socket stayed open: %v", ctx.Err())
		}
	}
}

// TestNodesShareLiveEffects: two consoles, real processes on one database.
// What is done through one reaches the sockets of the other: an admin
// watching on B sees an impersonation run through A, and who looks at
// whom; the user hears of it on B; the agent's tab on B learns its session
// switched and reconnects; a sign-out on A ends the session's socket on B;
// a revoke on B reaches the agent's tab on A and B's presence; a policy
// removed on A stops applying on B.
func TestNodesShareLiveEffects(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Nodes: 2})
	a, b := c.Node(0).URL(), c.Node(1).URL()
	ctx := liveDeadline(t)

	admin, support, ben := newClient(t, b), newClient(t, a), newClient(t, b)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")
	ben.mustLogin("ben@example.org")

	watcher := admin.mustFeed(ctx, t)
	watcher.mustSubscribe(ctx, realtime.TopicActivity, -1)
	inbox := ben.mustFeed(ctx, t)
	inbox.mustSubscribe(ctx, realtime.TopicNotifications, -1)
	supportTab := support.on(b).mustFeed(ctx, t)
	supportTab.mustSubscribe(ctx, realtime.TopicSession, -1)
	room := admin.mustFeed(ctx, t)
	room.mustSubscribe(ctx, realtime.TopicPresence, 0)

	// Support opens Ben's page through A: the admin on B sees it.
	benID := userID(t, support, "ben@example.org")
	if r := support.do(http.MethodPut, "/api/v1/presence", map[string]any{"view_id": "tab-1", "user_id": benID},
		"X-CSRF-Token", support.csrf); r.Status != http.StatusNoContent {
		t.Fatalf("view on A: %d %s", r.Status, r.Body)
	}
	presenceChange(ctx, room, "join")

	r := startImpersonation(support, benID, "Ben cannot book the confocal")
	if r.Status != http.StatusCreated {
		t.Fatalf("start on A: %d %s", r.Status, r.Body)
	}
	imp := r.JSON(t)
	impID, _ := imp["id"].(string)
	watcher.next(ctx, eventOf(realtime.TopicActivity, "impersonation.started"))
	inbox.next(ctx, eventOf(realtime.TopicNotifications, "impersonation.started"))
	supportTab.next(ctx, eventOf(realtime.TopicSession, "impersonation.started"))
	if code := supportTab.closedWith(ctx); code != realtime.StatusSessionChanged {
		t.Fatalf("the agent's tab on B closed with %d, want %d", code, realtime.StatusSessionChanged)
	}

	if held := presenceChange(ctx, room, "hold"); len(held["holds"].([]any)) != 1 {
		t.Fatalf("presence on B after the start on A: %v", held)
	}

	// The agent's tab on A, now acting as Ben, hears of a revoke on B.
	actingTab := support.mustFeed(ctx, t)
	actingTab.mustSubscribe(ctx, realtime.TopicSession, -1)
	if r := admin.post("/api/v1/impersonations/"+impID+"/revoke", map[string]any{"reason": "done"}); r.Status != http.StatusOK {
		t.Fatalf("revoke on B: %d %s", r.Status, r.Body)
	}
	actingTab.next(ctx, eventOf(realtime.TopicSession, "impersonation.ended"))
	if released := presenceChange(ctx, room, "release"); len(released["holds"].([]any)) != 0 {
		t.Fatalf("presence on B after the revoke: %v", released)
	}
	if code := actingTab.closedWith(ctx); code != realtime.StatusSessionChanged {
		t.Fatalf("the agent's tab on A closed with %d after the revoke on B, want %d", code, realtime.StatusSessionChanged)
	}

	// Ben signs out through A: his socket on B ends.
	if r := ben.on(a).post("/api/v1/auth/logout", nil); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
		t.Fatalf("sign out on A: %d %s", r.Status, r.Body)
	}
	if code := inbox.closedWith(ctx); code != realtime.StatusSessionEnded {
		t.Fatalf("Ben's socket on B closed with %d after signing out on A, want %d", code, realtime.StatusSessionEnded)
	}

	mustFollowPolicies(t, admin.on(a), support.on(b))
}

// presenceChange waits for the presence event on f whose change is of
// kind, and returns it.
func presenceChange(ctx context.Context, f *feed, kind string) map[string]any {
	f.t.Helper()
	return event(f.next(ctx, func(m map[string]any) bool {
		c, _ := event(m, realtime.TopicPresence)["change"].(map[string]any)
		return c != nil && c["kind"] == kind
	}), realtime.TopicPresence)
}

// mustFollowPolicies grants support the activity log through one node and
// withdraws it again, and checks each step on another node.
func mustFollowPolicies(t *testing.T, admin, support *client) {
	t.Helper()
	grant := map[string]string{"role": "role:support", "domain": "*", "object": "activity", "action": "list"}
	if r := admin.post("/api/v1/policies", grant); r.Status != http.StatusCreated {
		t.Fatalf("add policy on A: %d %s", r.Status, r.Body)
	}
	waitUntil(t, "the grant made on A to apply on B", func() bool {
		return support.do(http.MethodGet, "/api/v1/activity?limit=1", nil).Status == http.StatusOK
	})
	if r := admin.do(http.MethodDelete, "/api/v1/policies", grant, "X-CSRF-Token", admin.csrf); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
		t.Fatalf("remove policy on A: %d %s", r.Status, r.Body)
	}
	waitUntil(t, "the policy removed on A to stop applying on B", func() bool {
		return support.do(http.MethodGet, "/api/v1/activity?limit=1", nil).Status == http.StatusForbidden
	})
}
