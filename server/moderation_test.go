package server_test

import (
	"net/http"
	"testing"
	"time"
)

// TestModeratedOverHTTP: a session on a user whose mode is moderated
// starts paused and refuses its actor's requests (423, audited) until a
// moderator watches it; it pauses again the moment the moderator leaves,
// each pause and resumption is one audit event, only those who may
// moderate the target (not the actor, not the target, not a lead of
// another project) may watch, and a pause longer than the grace period
// ends the session as moderator_absent.
func TestModeratedOverHTTP(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, support, manager, ben, cleo := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")
	manager.mustLogin("manager@example.org")
	ben.mustLogin("ben@example.org")
	cleo.mustLogin("cleo@example.org")
	benID := userID(t, admin, "ben@example.org")
	cleoID := userID(t, admin, "cleo@example.org")

	s := mustModes(t, admin, map[string]any{"scope": "role:user", "mode": "moderated"})
	s["grace_seconds"] = 10
	delete(s, "changed_at")
	delete(s, "changed_by")
	if r := admin.put("/api/v1/settings/impersonation", s); r.Status != http.StatusOK {
		t.Fatalf("grace: %d %s", r.Status, r.Body)
	}

	r := startImpersonation(support, benID, "Ben's bookings vanish")
	if r.Status != http.StatusCreated {
		t.Fatalf("a moderated start: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	moderation := func(c *client) map[string]any {
		t.Helper()
		_, _, imp := session(t, c)
		if imp == nil || imp["moderated"] != true {
			t.Fatalf("the session is not moderated: %v", imp)
		}
		m, _ := imp["moderation"].(map[string]any)
		if m == nil {
			t.Fatalf("no moderation in the session: %v", imp)
		}
		return m
	}
	if m := moderation(support); m["paused"] != true {
		t.Fatalf("a moderated session started running: %v", m)
	}
	paused := func(what string) {
		t.Helper()
		r := support.do(http.MethodGet, "/api/v1/bookings", nil)
		if r.Status != http.StatusLocked || r.JSON(t)["error"].(map[string]any)["code"] != "session_paused" {
			t.Fatalf("%s: the actor's request answered %d %s", what, r.Status, r.Body)
		}
	}
	running := func(what string) {
		t.Helper()
		if r := support.do(http.MethodGet, "/api/v1/bookings", nil); r.Status != http.StatusOK {
			t.Fatalf("%s: the actor's request answered %d %s", what, r.Status, r.Body)
		}
	}
	paused("before any moderator")
	if r := support.post("/api/v1/bookings", map[string]any{"project_id": "x"}); r.Status != http.StatusLocked {
		t.Fatalf("a booking in a paused session: %d %s", r.Status, r.Body)
	}
	denied := events(t, admin, "type=action.denied&impersonation="+id)
	if len(denied) != 2 || denied[0]["reason"] == "" {
		t.Fatalf("refusals while paused are not audited once each: %v", denied)
	}

	watch := func(c *client, view string) *response {
		return c.put("/api/v1/impersonations/"+id+"/moderator", map[string]any{"view_id": view})
	}
	if r := watch(support, "p1"); r.Status != http.StatusForbidden {
		t.Fatalf("the actor moderates their own session: %d %s", r.Status, r.Body)
	}
	if r := watch(ben, "p1"); r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
		t.Fatalf("the target moderates: %d %s", r.Status, r.Body)
	}
	if r := watch(cleo, "p1"); r.Status != http.StatusNotFound {
		t.Fatalf("a user of another project sees the session: %d %s", r.Status, r.Body)
	}
	if r := watch(admin, "not a view!"); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a bad view id: %d %s", r.Status, r.Body)
	}
	paused("after refused watches")

	// Maya leads Ben's project: she may moderate.
	r = watch(manager, "maya-1")
	if r.Status != http.StatusOK {
		t.Fatalf("the lead's watch: %d %s", r.Status, r.Body)
	}
	if m := r.JSON(t)["moderation"].(map[string]any); m["paused"] != false || len(m["moderators"].([]any)) != 1 {
		t.Fatalf("moderation after the watch: %v", m)
	}
	running("while Maya watches")
	waitEvents(t, admin, "type=impersonation.resumed&impersonation="+id, 1)

	// She leaves: paused at once, then one paused event.
	if r := manager.do(http.MethodDelete, "/api/v1/impersonations/"+id+"/moderator/maya-1", nil, "X-CSRF-Token", manager.csrf); r.Status != http.StatusNoContent {
		t.Fatalf("leaving: %d %s", r.Status, r.Body)
	}
	paused("after Maya left")
	waitEvents(t, admin, "type=impersonation.paused&impersonation="+id, 1)
	if m := moderation(support); m["paused"] != true || m["ends_at"] == nil || m["ends_at"] == "" {
		t.Fatalf("a pause without its end: %v", m)
	}
	// The admin comes and goes on two pages: it runs while either is open.
	for _, view := range []string{"a1", "a2"} {
		if r := watch(admin, view); r.Status != http.StatusOK {
			t.Fatalf("the admin's watch %s: %d %s", view, r.Status, r.Body)
		}
	}
	admin.do(http.MethodDelete, "/api/v1/impersonations/"+id+"/moderator/a1", nil, "X-CSRF-Token", admin.csrf)
	running("while one of the admin's pages watches")
	waitEvents(t, admin, "type=impersonation.resumed&impersonation="+id, 2)
	admin.do(http.MethodDelete, "/api/v1/impersonations/"+id+"/moderator/a2", nil, "X-CSRF-Token", admin.csrf)
	paused("after the admin left")
	waitEvents(t, admin, "type=impersonation.paused&impersonation="+id, 2)

	// Nobody comes back within the grace: the session ends.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, imp := session(t, support); imp == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a paused session outlived its grace")
		}
		time.Sleep(250 * time.Millisecond)
	}
	ended := events(t, admin, "type=impersonation.ended&impersonation="+id)
	if len(ended) != 1 || ended[0]["outcome"] != "moderator_absent" {
		t.Fatalf("the end: %v", ended)
	}
	if n := len(events(t, admin, "type=impersonation.paused&impersonation="+id)); n != 2 {
		t.Fatalf("%d paused events, not 2", n)
	}
	if r := watch(manager, "maya-2"); r.Status != http.StatusConflict {
		t.Fatalf("watching an ended session: %d %s", r.Status, r.Body)
	}

	// The end took Sam's session out of the impersonation: it switches
	// back (a new token, a new CSRF token) on its next request after the
	// end is done; read it until it has.
	for prev := ""; prev != support.csrf; {
		prev = support.csrf
		time.Sleep(100 * time.Millisecond)
		session(t, support)
	}

	// Cleo's project has no lead: only admins may moderate her sessions,
	// and Maya (lead of another project) may not.
	r = startImpersonation(support, cleoID, "Cleo cannot sign in to the cytometer")
	if r.Status != http.StatusCreated {
		t.Fatalf("start on Cleo: %d %s", r.Status, r.Body)
	}
	cleoSession := r.JSON(t)["id"].(string)
	if r := manager.put("/api/v1/impersonations/"+cleoSession+"/moderator", map[string]any{"view_id": "m"}); r.Status != http.StatusNotFound {
		t.Fatalf("a lead of another project moderates: %d %s", r.Status, r.Body)
	}
	notes := items(t, admin.do(http.MethodGet, "/api/v1/notifications", nil))
	found := false
	for _, n := range notes {
		found = found || (n["type"] == "moderation.needed" && n["impersonation_id"] == cleoSession)
	}
	if !found {
		t.Fatalf("the admin was not asked to moderate: %v", notes)
	}
}

// waitEvents waits until the activity matching query holds n events.
func waitEvents(t *testing.T, admin *client, query string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := events(t, admin, query)
		if len(got) == n {
			return got
		}
		if len(got) > n || time.Now().After(deadline) {
			t.Fatalf("%s: %d events, want %d: %v", query, len(got), n, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
