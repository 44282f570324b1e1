package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// The user an impersonation is about sees it for as long as it runs (who,
// why, until when) and, once it ends, one summary of every change and
// refusal made in their name, linked from the notification: for them and
// staff who may see the session, never for anyone else, and without the
// agent's address or user agent.
func TestUserSeesSessionAndSummary(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	adm, cleo, ben := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	adm.mustLogin("admin@example.org")
	cleo.mustLogin("cleo@example.org")
	ben.mustLogin("ben@example.org")
	ids := mustDemoIDs(t, adm)
	r := startImpersonation(adm, userID(t, adm, "cleo@example.org"), "Cleo's booking fails")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	session(t, adm)

	running := items(t, cleo.do(http.MethodGet, "/api/v1/impersonations?active=true", nil))
	if len(running) != 1 || running[0]["id"] != id || running[0]["reason"] != "Cleo's booking fails" || running[0]["expires_at"] == "" {
		t.Fatalf("Cleo's view of the sessions on her account: %v", running)
	}

	slot := nextMonday().AddDate(0, 0, 14)
	if r := adm.post("/api/v1/bookings", bookingBody(ids.flow, ids.cell, slot, 1)); r.Status != http.StatusCreated {
		t.Fatalf("as Cleo, book: %d %s", r.Status, r.Body)
	}
	if r := adm.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, slot, 1)); r.Status != http.StatusForbidden {
		t.Fatalf("as Cleo, book the confocal: %d %s", r.Status, r.Body)
	}
	adm.do(http.MethodGet, "/api/v1/resources", nil)
	if r := adm.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", adm.csrf); r.Status != http.StatusOK {
		t.Fatalf("exit: %d %s", r.Status, r.Body)
	}

	if running := items(t, cleo.do(http.MethodGet, "/api/v1/impersonations?active=true", nil)); len(running) != 0 {
		t.Errorf("sessions on Cleo's account after the end: %v", running)
	}
	notes := items(t, cleo.do(http.MethodGet, "/api/v1/notifications", nil))
	if len(notes) == 0 || notes[0]["type"] != "impersonation.ended" || notes[0]["impersonation_id"] != id ||
		!strings.Contains(notes[0]["body"].(string), "In your name: 1 change and 1 refusal.") {
		t.Fatalf("Cleo's newest notification: %v", notes)
	}
	sr := cleo.do(http.MethodGet, "/api/v1/impersonations/"+id+"/summary", nil)
	if sr.Status != http.StatusOK {
		t.Fatalf("Cleo's summary: %d %s", sr.Status, sr.Body)
	}
	sum := sr.JSON(t)
	changes, _ := sum["changes"].([]any)
	refusals, _ := sum["refusals"].([]any)
	if len(changes) != 1 || changes[0].(map[string]any)["type"] != "booking.created" ||
		len(refusals) != 1 || !strings.Contains(refusals[0].(map[string]any)["reason"].(string), "member") {
		t.Errorf("the summary: %s", sr.Body)
	}
	if strings.Contains(string(sr.Body), "user_agent") || strings.Contains(string(sr.Body), `"ip"`) {
		t.Errorf("the summary shows the agent's address or user agent: %s", sr.Body)
	}
	if r := ben.do(http.MethodGet, "/api/v1/impersonations/"+id+"/summary", nil); r.Status != http.StatusNotFound {
		t.Errorf("Ben reads Cleo's summary: %d %s", r.Status, r.Body)
	}
	if r := adm.do(http.MethodGet, "/api/v1/impersonations/"+id+"/summary", nil); r.Status != http.StatusOK {
		t.Errorf("the agent reads the summary of their session: %d %s", r.Status, r.Body)
	}
}

// The console learns from the server, before anyone types or opens a
// dialog, which forms impersonation refuses and whom the agent may not
// impersonate, with the reasons.
func TestRefusalsKnownBeforehand(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	sam, ben := newClient(t, srv.URL), newClient(t, srv.URL)
	sam.mustLogin("support@example.org")
	ben.mustLogin("ben@example.org")

	decision := func(m map[string]any, key string) (bool, string) {
		d, _ := m[key].(map[string]any)
		allowed, _ := d["allowed"].(bool)
		reason, _ := d["reason"].(string)
		return allowed, reason
	}
	perms := ben.do(http.MethodGet, "/api/v1/permissions", nil).JSON(t)
	if ok, _ := decision(perms, "edit_profile"); !ok {
		t.Errorf("Ben may not edit his own profile: %v", perms)
	}
	if ok, _ := decision(perms, "change_password"); !ok {
		t.Errorf("Ben may not change his own password: %v", perms)
	}

	owner := sam.do(http.MethodGet, "/api/v1/users/"+userID(t, sam, "owner@example.org"), nil).JSON(t)
	if ok, why := decision(owner, "impersonate"); ok || !strings.Contains(why, "owner") {
		t.Errorf("Sam's view of the owner: impersonate %v %q", ok, why)
	}
	benID := userID(t, sam, "ben@example.org")
	if ok, why := decision(sam.do(http.MethodGet, "/api/v1/users/"+benID, nil).JSON(t), "impersonate"); !ok {
		t.Errorf("Sam may not impersonate Ben: %q", why)
	}

	if r := startImpersonation(sam, benID, "Ben's profile"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	session(t, sam)
	perms = sam.do(http.MethodGet, "/api/v1/permissions", nil).JSON(t)
	if ok, why := decision(perms, "edit_profile"); ok || !strings.Contains(why, "Destructive") {
		t.Errorf("as Ben, the profile form: %v %q", ok, why)
	}
	if ok, why := decision(perms, "change_password"); ok || !strings.Contains(why, "never allowed while impersonating") {
		t.Errorf("as Ben, the password form: %v %q", ok, why)
	}
}

// A support agent's view of a user says what blocks them: each instrument
// of their projects with the reason it is refused, the trainings those
// need, the refusals and sessions on the account; users do not get it.
func TestSupportSeesWhatBlocksAUser(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	sam, ben := newClient(t, srv.URL), newClient(t, srv.URL)
	sam.mustLogin("support@example.org")
	ben.mustLogin("ben@example.org")
	ids := mustDemoIDs(t, sam)
	benID := userID(t, sam, "ben@example.org")
	if r := ben.do(http.MethodGet, "/api/v1/users/"+benID+"/overview", nil); r.Status != http.StatusForbidden {
		t.Errorf("Ben reads the support view of himself: %d", r.Status)
	}
	if r := startImpersonation(sam, benID, "Ben cannot book the confocal"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	session(t, sam)
	sam.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1))
	if r := sam.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", sam.csrf); r.Status != http.StatusOK {
		t.Fatalf("exit: %d %s", r.Status, r.Body)
	}
	session(t, sam)

	r := sam.do(http.MethodGet, "/api/v1/users/"+benID+"/overview", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("overview: %d %s", r.Status, r.Body)
	}
	o := r.JSON(t)
	var confocal map[string]any
	for _, a := range o["access"].([]any) {
		if a := a.(map[string]any); a["resource_id"] == ids.confocal {
			confocal = a
		}
	}
	if confocal == nil || confocal["bookable"] != false || !strings.Contains(confocal["reason"].(string), "Confocal Basics") {
		t.Errorf("the confocal in the overview: %v", confocal)
	}
	missing := false
	for _, tr := range o["trainings"].([]any) {
		if tr := tr.(map[string]any); tr["name"] == "Confocal Basics" && tr["state"] == "missing" {
			missing = true
		}
	}
	if !missing {
		t.Errorf("the overview's trainings do not show Confocal Basics missing: %v", o["trainings"])
	}
	if refusals := o["refusals"].([]any); len(refusals) != 1 {
		t.Errorf("refusals: %v", refusals)
	}
	if sessions := o["sessions"].([]any); len(sessions) != 1 {
		t.Errorf("sessions: %v", sessions)
	}
	if imp, _ := o["user"].(map[string]any)["impersonate"].(map[string]any); imp["allowed"] != true {
		t.Errorf("may Sam impersonate Ben: %v", imp)
	}
}
