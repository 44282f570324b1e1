package server_test

import (
	"net/http"
	"testing"
)

// put sends a PUT with the session's CSRF token.
func (c *client) put(path string, body any) *response {
	c.t.Helper()
	return c.do(http.MethodPut, path, body, "X-CSRF-Token", c.csrf)
}

// mustModes sets the impersonation settings' rules as admin.
func mustModes(t *testing.T, admin *client, rules ...map[string]any) map[string]any {
	t.Helper()
	cur := admin.do(http.MethodGet, "/api/v1/settings/impersonation", nil)
	if cur.Status != http.StatusOK {
		t.Fatalf("settings: %d %s", cur.Status, cur.Body)
	}
	s := cur.JSON(t)
	if rules == nil {
		rules = []map[string]any{}
	}
	s["rules"] = rules
	delete(s, "changed_at")
	delete(s, "changed_by")
	delete(s, "modes")
	r := admin.put("/api/v1/settings/impersonation", s)
	if r.Status != http.StatusOK {
		t.Fatalf("change settings: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

// TestModesOverHTTP: the settings API, a consent request answered by its
// target and started on its id, a grant that starts at once and whose
// withdrawal ends the session, and what an impersonating agent may not
// do in the target's name; each step audited.
func TestModesOverHTTP(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, support, ben := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")
	ben.mustLogin("ben@example.org")
	benID := userID(t, admin, "ben@example.org")

	t.Run("Settings", func(t *testing.T) {
		if r := support.do(http.MethodGet, "/api/v1/settings/impersonation", nil); r.Status != http.StatusForbidden {
			t.Fatalf("support reads the settings: %d", r.Status)
		}
		s := mustModes(t, admin, map[string]any{"scope": "role:user", "mode": "consent"})
		if s["version"].(float64) != 1 || s["changed_by"].(map[string]any)["name"] == "" {
			t.Fatalf("settings after a change: %v", s)
		}
		stale := map[string]any{"version": 0, "rules": []any{}, "request_minutes": 10, "grace_seconds": 60}
		if r := admin.put("/api/v1/settings/impersonation", stale); r.Status != http.StatusConflict {
			t.Fatalf("a change from an old version: %d %s", r.Status, r.Body)
		}
		for _, bad := range []map[string]any{
			{"version": 1, "rules": []any{map[string]any{"scope": "role:user", "mode": "ask"}}},
			{"version": 1, "rules": []any{map[string]any{"scope": "project:nope", "mode": "consent"}}},
			{"version": 1, "rules": []any{map[string]any{"scope": "role:user", "mode": "moderated", "approvals": 2}}},
			{"version": 1, "rules": []any{}, "request_minutes": -1},
			{"version": 1},
		} {
			if r := admin.put("/api/v1/settings/impersonation", bad); r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("settings %v: %d %s", bad, r.Status, r.Body)
			}
		}
		if r := admin.put("/api/v1/settings/impersonation", `{"version":1,"rules":[],"extra":1}`); r.Status != http.StatusBadRequest {
			t.Fatalf("an unknown field: %d %s", r.Status, r.Body)
		}
		changes := events(t, admin, "type=settings.changed")
		if len(changes) != 1 || changes[0]["reason"] != "role:user direct → consent" {
			t.Fatalf("settings events: %v", changes)
		}
	})

	var reqID string
	t.Run("ConsentRequest", func(t *testing.T) {
		r := startImpersonation(support, benID, "Ben cannot book the confocal")
		if r.Status != http.StatusAccepted {
			t.Fatalf("start in consent mode: %d %s", r.Status, r.Body)
		}
		req := r.JSON(t)["request"].(map[string]any)
		reqID = req["id"].(string)
		if req["status"] != "pending" || req["mode"] != "consent" || req["expires_at"] == "" {
			t.Fatalf("request: %v", req)
		}
		if _, _, imp := session(t, support); imp != nil {
			t.Fatalf("a session started before Ben's answer: %v", imp)
		}
		inbox := items(t, ben.do(http.MethodGet, "/api/v1/impersonations/requests", nil))
		if len(inbox) != 1 || inbox[0]["id"] != reqID || inbox[0]["reason"] != "Ben cannot book the confocal" {
			t.Fatalf("Ben's requests: %v", inbox)
		}
		if r := support.post("/api/v1/impersonations/"+reqID+"/start", nil); r.Status != http.StatusConflict {
			t.Fatalf("start before the answer: %d %s", r.Status, r.Body)
		}
		if r := admin.post("/api/v1/impersonations/requests/"+reqID+"/approve", nil); r.Status != http.StatusNotFound {
			t.Fatalf("the admin answers Ben's consent: %d %s", r.Status, r.Body)
		}
		r = ben.post("/api/v1/impersonations/requests/"+reqID+"/approve", map[string]any{"note": "fine"})
		if r.Status != http.StatusOK || r.JSON(t)["status"] != "approved" {
			t.Fatalf("Ben approves: %d %s", r.Status, r.Body)
		}
		r = support.post("/api/v1/impersonations/"+reqID+"/start", nil)
		if r.Status != http.StatusCreated || r.JSON(t)["id"] != reqID {
			t.Fatalf("start after the approval: %d %s", r.Status, r.Body)
		}
		if user, _, imp := session(t, support); user != "ben@example.org" || imp["id"] != reqID {
			t.Fatalf("session after the start: %s %v", user, imp)
		}
		if r := support.post("/api/v1/impersonations/"+reqID+"/start", nil); r.Status != http.StatusNotFound && r.Status != http.StatusConflict {
			t.Fatalf("the approval used again: %d %s", r.Status, r.Body)
		}
		// In Ben's name, nobody grants consent: refused and audited.
		if r := support.put("/api/v1/consent", map[string]any{"hours": 2}); r.Status != http.StatusForbidden {
			t.Fatalf("a grant while impersonating: %d %s", r.Status, r.Body)
		}
		var types []string
		for _, e := range events(t, admin, "impersonation="+reqID) {
			types = append(types, e["type"].(string))
		}
		want := []string{"request.created", "request.approved", "impersonation.started", "action.denied"}
		if len(types) < len(want) {
			t.Fatalf("events of the session: %v, want %v first", types, want)
		}
		for i, w := range want {
			if types[i] != w {
				t.Fatalf("events of the session: %v, want %v first", types, want)
			}
		}
		if r := support.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", support.csrf); r.Status != http.StatusOK {
			t.Fatalf("stop: %d %s", r.Status, r.Body)
		}
		session(t, support)
	})

	t.Run("GrantAndWithdraw", func(t *testing.T) {
		if g := ben.do(http.MethodGet, "/api/v1/consent", nil).JSON(t); g["grant"] != nil {
			t.Fatalf("a grant before any: %v", g)
		}
		if r := ben.put("/api/v1/consent", map[string]any{"hours": 0}); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("a grant of 0 hours: %d %s", r.Status, r.Body)
		}
		if r := ben.put("/api/v1/consent", map[string]any{"hours": 2}); r.Status != http.StatusCreated {
			t.Fatalf("grant: %d %s", r.Status, r.Body)
		}
		r := startImpersonation(support, benID, "under Ben's grant")
		if r.Status != http.StatusCreated {
			t.Fatalf("start under the grant: %d %s", r.Status, r.Body)
		}
		impID := r.JSON(t)["id"].(string)
		if r := ben.do(http.MethodDelete, "/api/v1/consent", nil, "X-CSRF-Token", ben.csrf); r.Status != http.StatusOK {
			t.Fatalf("withdraw: %d %s", r.Status, r.Body)
		}
		imp := admin.do(http.MethodGet, "/api/v1/impersonations/"+impID, nil).JSON(t)
		if imp["cause"] != "consent_withdrawn" {
			t.Fatalf("the session under the withdrawn grant: %v", imp)
		}
		if _, _, cur := session(t, support); cur != nil {
			t.Fatalf("the agent still impersonates after the withdrawal: %v", cur)
		}
		if n := len(events(t, admin, "type=consent.granted")); n != 1 {
			t.Fatalf("%d consent.granted events", n)
		}
		if n := len(events(t, admin, "type=consent.withdrawn")); n != 1 {
			t.Fatalf("%d consent.withdrawn events", n)
		}
		// Without a grant, a start asks again.
		if r := startImpersonation(support, benID, "after the withdrawal"); r.Status != http.StatusAccepted {
			t.Fatalf("start after the withdrawal: %d %s", r.Status, r.Body)
		}
	})
}
