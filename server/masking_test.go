package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// personalField returns the personal data field named field of a user
// detail.
func personalField(t *testing.T, detail map[string]any, field string) map[string]any {
	t.Helper()
	for _, f := range detail["personal"].([]any) {
		if m := f.(map[string]any); m["field"] == field {
			return m
		}
	}
	t.Fatalf("no personal field %s in %v", field, detail)
	return nil
}

// TestMaskedFieldsOverHTTP: personal data is masked in every staff view
// of a user and while impersonating, shown to the user alone; a reveal
// needs a reason, is audited without the value, is part of the session's
// summary (or told to the user outside one), and reaches only what the
// revealer may see. The settings can leave a field unmasked.
func TestMaskedFieldsOverHTTP(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, support, ben := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")
	ben.mustLogin("ben@example.org")
	benID, adaID := userID(t, admin, "ben@example.org"), userID(t, admin, "ada@example.org")
	const phone = "+44 20 7946 0742"

	if f := personalField(t, ben.do(http.MethodGet, "/api/v1/profile", nil).JSON(t), "phone"); f["value"] != phone || f["masked"] != false {
		t.Fatalf("Ben's own phone: %v", f)
	}
	for _, path := range []string{"/api/v1/users/" + benID, "/api/v1/users/" + benID + "/overview"} {
		body := admin.do(http.MethodGet, path, nil).JSON(t)
		if u, ok := body["user"].(map[string]any); ok {
			body = u
		}
		for _, field := range []string{"phone", "emergency_contact", "date_of_birth"} {
			if f := personalField(t, body, field); f["value"] != nil || f["masked"] != true {
				t.Fatalf("%s shows Ben's %s to the admin: %v", path, field, f)
			}
		}
	}

	r := startImpersonation(support, benID, "Ben's safety record")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	impID := r.JSON(t)["id"].(string)
	session(t, support)
	if f := personalField(t, support.do(http.MethodGet, "/api/v1/profile", nil).JSON(t), "phone"); f["value"] != nil || f["masked"] != true {
		t.Fatalf("Ben's phone while impersonating him: %v", f)
	}
	for _, bad := range []map[string]any{{"field": "phone", "reason": " "}, {"field": "salary", "reason": "x"}} {
		if r := support.post("/api/v1/users/"+benID+"/reveal", bad); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("reveal %v: %d %s", bad, r.Status, r.Body)
		}
	}
	if r := support.post("/api/v1/users/"+adaID+"/reveal", map[string]any{"field": "phone", "reason": "curious"}); r.Status != http.StatusForbidden {
		t.Fatalf("Ada's phone while acting as Ben: %d %s", r.Status, r.Body)
	}
	r = support.post("/api/v1/users/"+benID+"/reveal", map[string]any{"field": "phone", "reason": "Call Ben about his booking"})
	if r.Status != http.StatusOK || r.JSON(t)["value"] != phone {
		t.Fatalf("reveal: %d %s", r.Status, r.Body)
	}
	var revealed, denied int
	for _, e := range events(t, admin, "impersonation="+impID) {
		switch {
		case e["type"] == "field.revealed" && e["object"] == "field:phone" && e["reason"] == "Call Ben about his booking":
			revealed++
		case e["type"] == "action.denied" && e["action"] == "personal.reveal":
			denied++
		}
	}
	if revealed != 1 || denied != 1 {
		t.Fatalf("the session's events: %d reveals and %d refused reveals, want 1 and 1", revealed, denied)
	}
	if r := support.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", support.csrf); r.Status != http.StatusOK {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	sum := ben.do(http.MethodGet, "/api/v1/impersonations/"+impID+"/summary", nil).JSON(t)
	found := false
	for _, c := range sum["changes"].([]any) {
		if c.(map[string]any)["type"] == "field.revealed" {
			found = true
		}
	}
	if !found {
		t.Fatalf("Ben's summary does not show the reveal: %v", sum)
	}

	// Outside a session: the admin reveals, Ben is told; support may not
	// reveal an admin's.
	r = admin.post("/api/v1/users/"+benID+"/reveal", map[string]any{"field": "date_of_birth", "reason": "Safety training record"})
	if r.Status != http.StatusOK || r.JSON(t)["value"] != "1994-03-17" {
		t.Fatalf("admin reveal: %d %s", r.Status, r.Body)
	}
	notes := items(t, ben.do(http.MethodGet, "/api/v1/notifications", nil))
	if len(notes) == 0 || notes[0]["type"] != "field.revealed" || !strings.Contains(notes[0]["body"].(string), "date of birth") {
		t.Fatalf("Ben's newest notification: %v", notes)
	}
	if r := support.post("/api/v1/users/"+userID(t, admin, "admin@example.org")+"/reveal",
		map[string]any{"field": "phone", "reason": "x"}); r.Status != http.StatusForbidden {
		t.Fatalf("support reveals an admin's: %d %s", r.Status, r.Body)
	}

	// No event anywhere holds a revealed value.
	export := admin.do(http.MethodGet, "/api/v1/activity/export?format=jsonl", nil)
	if export.Status != http.StatusOK || strings.Contains(string(export.Body), phone) || strings.Contains(string(export.Body), "1994-03-17") {
		t.Fatalf("the export holds a revealed value (status %d)", export.Status)
	}

	// Left unmasked by the settings, the phone shows to staff.
	s := admin.do(http.MethodGet, "/api/v1/settings/impersonation", nil).JSON(t)
	s["unmasked"] = []string{"phone"}
	delete(s, "changed_at")
	delete(s, "changed_by")
	delete(s, "modes")
	delete(s, "fields")
	if r := admin.put("/api/v1/settings/impersonation", s); r.Status != http.StatusOK {
		t.Fatalf("unmask the phone: %d %s", r.Status, r.Body)
	}
	if f := personalField(t, admin.do(http.MethodGet, "/api/v1/users/"+benID, nil).JSON(t), "phone"); f["value"] != phone {
		t.Fatalf("an unmasked phone: %v", f)
	}
	if f := personalField(t, admin.do(http.MethodGet, "/api/v1/users/"+benID, nil).JSON(t), "date_of_birth"); f["masked"] != true {
		t.Fatalf("the date of birth after unmasking the phone: %v", f)
	}
}
