package server_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestAlertsOverHTTP: refusals in an agent's session beyond the threshold
// set in the settings raise one alert, live on the Activity of those in
// scope; admins and the user's project lead list it, others may not; it
// is acknowledged once, with a note.
func TestAlertsOverHTTP(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, support, manager, cleo := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")
	manager.mustLogin("manager@example.org")
	cleo.mustLogin("cleo@example.org")

	s := mustModes(t, admin)
	rules := s["alerts"].(map[string]any)
	if rules["refusals"] != 5.0 || rules["day_start_minute"] != 480.0 {
		t.Fatalf("default alert rules: %v", rules)
	}
	rules["refusals"] = 2
	delete(s, "changed_at")
	delete(s, "changed_by")
	if r := admin.put("/api/v1/settings/impersonation", s); r.Status != http.StatusOK {
		t.Fatalf("alert rules: %d %s", r.Status, r.Body)
	}
	if got := events(t, admin, "type=settings.changed"); got[len(got)-1]["reason"] != "alert: refusals 5 → 2" {
		t.Fatalf("the change in words: %v", got[len(got)-1]["reason"])
	}

	r := startImpersonation(support, userID(t, admin, "ben@example.org"), "Ben's bookings vanish")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	session := r.JSON(t)["id"].(string)
	for range 3 {
		if r := support.do(http.MethodGet, "/api/v1/users", nil); r.Status != http.StatusForbidden {
			t.Fatalf("Ben lists users: %d", r.Status)
		}
	}
	var alert map[string]any
	for deadline := time.Now().Add(15 * time.Second); alert == nil; time.Sleep(100 * time.Millisecond) {
		for _, a := range items(t, manager.do(http.MethodGet, "/api/v1/alerts", nil)) {
			if a["rule"] == "refusals" && a["impersonation_id"] == session {
				alert = a
			}
		}
		if alert == nil && time.Now().After(deadline) {
			t.Fatal("no refusals alert for the manager")
		}
	}
	if n := len(events(t, admin, "type=alert.raised&impersonation="+session)); n < 1 {
		t.Fatalf("%d alert events", n)
	}
	for _, c := range []*client{support, cleo} {
		if r := c.do(http.MethodGet, "/api/v1/alerts", nil); r.Status != http.StatusForbidden {
			t.Fatalf("someone out of scope lists alerts: %d %s", r.Status, r.Body)
		}
	}
	id := alert["id"].(string)
	if r := cleo.post("/api/v1/alerts/"+id+"/acknowledge", map[string]any{"note": "x"}); r.Status != http.StatusNotFound {
		t.Fatalf("cleo acknowledges: %d %s", r.Status, r.Body)
	}
	// The id, escaped as a client may send it.
	if r := manager.post("/api/v1/alerts/"+url.PathEscape(id)+"/acknowledge", map[string]any{"note": "Talked to Sam: Ben asked for it"}); r.Status != http.StatusOK {
		t.Fatalf("acknowledge: %d %s", r.Status, r.Body)
	}
	if r := admin.post("/api/v1/alerts/"+id+"/acknowledge", map[string]any{"note": "again"}); r.Status != http.StatusConflict {
		t.Fatalf("a second acknowledgment: %d %s", r.Status, r.Body)
	}
	acked := events(t, admin, "type=alert.acknowledged")
	if len(acked) != 1 || acked[0]["reason"] != "Talked to Sam: Ben asked for it" {
		t.Fatalf("acknowledgments: %v", acked)
	}
	// More refusals in the same session raise nothing more.
	support.do(http.MethodGet, "/api/v1/users", nil)
	time.Sleep(2 * time.Second)
	n := 0
	for _, e := range events(t, admin, "type=alert.raised&impersonation="+session) {
		if e["outcome"] == "refusals" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d refusals alerts for one session", n)
	}
}
