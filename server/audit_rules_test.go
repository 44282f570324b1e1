package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// head is the seq of the newest event the owner sees (all of them).
func head(t *testing.T, owner *client) int64 {
	t.Helper()
	got := items(t, owner.do(http.MethodGet, "/api/v1/activity?limit=1", nil))
	if len(got) == 0 {
		return 0
	}
	return int64(got[0]["seq"].(float64))
}

// writtenBy returns the events written while do ran, oldest first, as the
// owner (who acts as themself, so reading writes nothing) sees them.
func writtenBy(t *testing.T, owner *client, do func()) []map[string]any {
	t.Helper()
	from := head(t, owner)
	do()
	return items(t, owner.do(http.MethodGet, fmt.Sprintf("/api/v1/activity?limit=500&after_seq=%d", from), nil))
}

func typesOf(evs []map[string]any) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e["type"].(string)
	}
	return out
}

// While impersonating, each request is one audit event with its final
// outcome, and the console's own bookkeeping is none (PRODUCT §5,
// docs/AUDIT.md): a booking refused by the facility's rules is one
// action.denied naming the slot asked for, not an allowed and a denied
// one; a booking made is its booking.created alone; a conflict is one
// denial; a rename of the user is refused as destructive and changes
// nothing.
func TestOneEventPerRequest(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	sam, owner := newClient(t, srv.URL), newClient(t, srv.URL)
	sam.mustLogin("support@example.org")
	owner.mustLogin("owner@example.org")
	ids := mustDemoIDs(t, owner)
	benID := userID(t, sam, "ben@example.org")
	if r := startImpersonation(sam, benID, "Ben cannot book the confocal"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	session(t, sam)

	for _, bk := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/session"},
		{http.MethodGet, "/api/v1/permissions"},
		{http.MethodGet, "/api/v1/notifications"},
		{http.MethodGet, "/api/v1/impersonations?active=true"},
		{http.MethodPut, "/api/v1/presence"},
	} {
		var status int
		evs := writtenBy(t, owner, func() {
			body := any(nil)
			if bk.method == http.MethodPut {
				body = map[string]any{"view": "v1", "user_id": benID}
			}
			status = sam.do(bk.method, bk.path, body, "X-CSRF-Token", sam.csrf).Status
		})
		if len(evs) != 0 {
			t.Errorf("%s %s (%d), the console's bookkeeping, wrote %v", bk.method, bk.path, status, typesOf(evs))
		}
	}

	for _, view := range []string{"/api/v1/profile", "/api/v1/resources", "/api/v1/bookings"} {
		evs := writtenBy(t, owner, func() {
			if r := sam.do(http.MethodGet, view, nil); r.Status != http.StatusOK {
				t.Fatalf("as Ben, GET %s: %d %s", view, r.Status, r.Body)
			}
		})
		if len(evs) != 1 || evs[0]["type"] != "action.allowed" || evs[0]["outcome"] != "allowed" || evs[0]["object"] != "GET "+view {
			t.Errorf("as Ben, GET %s wrote %v, want one action.allowed", view, evs)
		}
	}

	slot := nextMonday().AddDate(0, 0, 7)
	evs := writtenBy(t, owner, func() {
		r := sam.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, slot, 1))
		if r.Status != http.StatusForbidden || !strings.Contains(reason(t, r), "Confocal Basics") {
			t.Fatalf("as Ben, book the confocal: %d %s", r.Status, r.Body)
		}
	})
	if len(evs) != 1 {
		t.Fatalf("a booking refused by the facility's rules wrote %v, want one event", typesOf(evs))
	}
	wantObject := "resource:" + ids.confocal + " " + slot.Format("2006-01-02T15:04:05Z") + "/" + slot.Add(time.Hour).Format("2006-01-02T15:04:05Z")
	if e := evs[0]; e["type"] != "action.denied" || e["action"] != "booking.create" || e["object"] != wantObject ||
		!strings.Contains(e["reason"].(string), "Confocal Basics") {
		t.Errorf("the refused booking's event: %v, want action.denied booking.create on %q naming Confocal Basics", e, wantObject)
	}

	// A booking the user may make is its commit record alone; the same
	// slot again is one denial, with the reason.
	adm := newClient(t, srv.URL)
	adm.mustLogin("admin@example.org")
	if r := startImpersonation(adm, userID(t, adm, "cleo@example.org"), "Cleo's booking"); r.Status != http.StatusCreated {
		t.Fatalf("start as Cleo: %d %s", r.Status, r.Body)
	}
	session(t, adm)
	var booked *response
	evs = writtenBy(t, owner, func() {
		booked = adm.post("/api/v1/bookings", bookingBody(ids.flow, ids.cell, slot, 1))
	})
	if booked.Status != http.StatusCreated {
		t.Fatalf("as Cleo, book the flow cytometer: %d %s", booked.Status, booked.Body)
	}
	if got := typesOf(evs); !slices.Equal(got, []string{"booking.created"}) {
		t.Errorf("a booking made as Cleo wrote %v, want [booking.created]", got)
	}
	evs = writtenBy(t, owner, func() {
		if r := adm.post("/api/v1/bookings", bookingBody(ids.flow, ids.cell, slot, 1)); r.Status != http.StatusConflict {
			t.Fatalf("as Cleo, book a taken slot: %d %s", r.Status, r.Body)
		}
	})
	if len(evs) != 1 || evs[0]["type"] != "action.denied" || evs[0]["reason"] == "" {
		t.Errorf("a taken slot wrote %v, want one action.denied with its reason", evs)
	}

	// The user's own profile is destructive while impersonating.
	evs = writtenBy(t, owner, func() {
		r := sam.do(http.MethodPatch, "/api/v1/profile", map[string]any{"name": "Ben Hacked"}, "X-CSRF-Token", sam.csrf)
		if r.Status != http.StatusForbidden {
			t.Fatalf("as Ben, rename Ben: %d %s", r.Status, r.Body)
		}
	})
	if got := typesOf(evs); !slices.Equal(got, []string{"action.denied"}) {
		t.Errorf("a refused rename wrote %v, want [action.denied]", got)
	}
	if r := owner.do(http.MethodGet, "/api/v1/users/"+benID, nil); !strings.Contains(string(r.Body), "Ben Okafor") {
		t.Errorf("Ben's name after a refused rename: %s", r.Body)
	}
}

// The seed's support case (sign in, find Ben, check what blocks him,
// impersonate, load his console, try to book, exit) writes what a reader of
// the trail needs and nothing of the console's own: the sign-in, the start,
// the views of Ben's data, one refusal, the end.
func TestSupportCaseTrail(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	sam, owner := newClient(t, srv.URL), newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	ids := mustDemoIDs(t, owner)
	evs := writtenBy(t, owner, func() {
		sam.mustLogin("support@example.org")
		benID := userID(t, sam, "ben@example.org")
		check := sam.do(http.MethodGet, fmt.Sprintf("/api/v1/users/%s/access?resource=%s&project=%s&action=create", benID, ids.confocal, ids.neuro), nil)
		if check.Status != http.StatusOK {
			t.Fatalf("check: %d %s", check.Status, check.Body)
		}
		if r := startImpersonation(sam, benID, "Ben cannot book the confocal"); r.Status != http.StatusCreated {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		// What the console loads as Ben's home, as the page does.
		for _, path := range []string{"/api/v1/session", "/api/v1/permissions", "/api/v1/notifications", "/api/v1/profile", "/api/v1/resources"} {
			if r := sam.do(http.MethodGet, path, nil); r.Status != http.StatusOK {
				t.Fatalf("as Ben, GET %s: %d", path, r.Status)
			}
		}
		session(t, sam)
		if r := sam.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1)); r.Status != http.StatusForbidden {
			t.Fatalf("as Ben, book the confocal: %d", r.Status)
		}
		r := sam.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", sam.csrf)
		if r.Status != http.StatusOK {
			t.Fatalf("exit: %d %s", r.Status, r.Body)
		}
		if ended := r.JSON(t); ended["ended_words"] != "Sam Support (support@example.org) ended it" || ended["csrf_token"] == "" {
			t.Errorf("the exit's answer: %v", ended)
		}
	})
	want := []string{"auth.login", "impersonation.started", "action.allowed", "action.allowed", "action.denied", "impersonation.ended"}
	if got := typesOf(evs); !slices.Equal(got, want) {
		t.Errorf("the support case wrote %v, want %v", got, want)
	}
	t.Logf("the support case wrote %d events", len(evs))
}

// A revoke says who revoked, by name and address: to the agent (the
// impersonation's record), to the user (the notification) and in the
// feed (the end's event).
func TestRevokeSaysWhoEndedIt(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	sam, maya, ben, owner := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	sam.mustLogin("support@example.org")
	maya.mustLogin("manager@example.org")
	ben.mustLogin("ben@example.org")
	owner.mustLogin("owner@example.org")
	r := startImpersonation(sam, userID(t, sam, "ben@example.org"), "Ben cannot book the confocal")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	evs := writtenBy(t, owner, func() {
		if r := maya.post("/api/v1/impersonations/"+id+"/revoke", nil); r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
	})
	const who = "Maya Manager (manager@example.org) ended it"
	mayaID := userID(t, owner, "manager@example.org")
	if len(evs) != 1 || evs[0]["type"] != "impersonation.ended" || evs[0]["object"] != "ended_by:"+mayaID+" Maya Manager (manager@example.org)" ||
		evs[0]["reason"] != "Ben cannot book the confocal" {
		t.Errorf("the revoke wrote %v, want one impersonation.ended naming Maya Manager in its object and the agent's reason", evs)
	}
	rec := owner.do(http.MethodGet, "/api/v1/impersonations/"+id, nil).JSON(t)
	if rec["ended_words"] != who || rec["ended_by_name"] != "Maya Manager" || rec["ended_by_email"] != "manager@example.org" {
		t.Errorf("the ended impersonation's record: %v", rec)
	}
	notes := items(t, ben.do(http.MethodGet, "/api/v1/notifications", nil))
	if len(notes) == 0 || !strings.Contains(fmt.Sprint(notes[0]["body"]), who) {
		t.Errorf("Ben's newest notification does not name who ended the session: %v", notes)
	}
}
