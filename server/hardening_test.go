package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"standin/server/standin"
)

// headSeq is the seq of the newest audit event.
func headSeq(t *testing.T, owner *client) float64 {
	t.Helper()
	evs := items(t, owner.do(http.MethodGet, "/api/v1/activity?limit=1", nil))
	if len(evs) == 0 {
		return 0
	}
	return evs[0]["seq"].(float64)
}

// TestOversizedInputChangesNothing: ids are checked before anything is
// written, so a request naming a huge id is refused with 422 and leaves
// the audit log as it was; the log still verifies and exports.
func TestOversizedInputChangesNothing(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	owner, ada, admin := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	ada.mustLogin("ada@example.org")
	admin.mustLogin("admin@example.org")
	huge := strings.Repeat("u", 900_000)
	before := headSeq(t, owner)

	for _, who := range []*client{ada, admin} {
		for range 3 {
			r := who.post("/api/v1/impersonations", map[string]any{"user_id": huge, "reason": "x"})
			if r.Status != http.StatusUnprocessableEntity || r.ErrorCode(t) != standin.EInvalid {
				t.Fatalf("start with a 900 KB user_id: %d %.200s", r.Status, r.Body)
			}
			if len(r.Body) > 4096 {
				t.Fatalf("the refusal repeats the input back: %d bytes", len(r.Body))
			}
		}
	}
	long := strings.Repeat("a", 3000) // as long as an address may be
	for _, path := range []string{"/api/v1/impersonations/" + long + "/revoke"} {
		r := admin.post(path, map[string]any{})
		if r.Status != http.StatusNotFound || len(r.Body) > 4096 {
			t.Fatalf("POST %.60s…: %d %.200s", path, r.Status, r.Body)
		}
	}
	if after := headSeq(t, owner); after != before {
		t.Fatalf("refused input wrote %v audit events", after-before)
	}
	v := owner.verify()
	if v.Status != http.StatusOK || v.JSON(t)["ok"] != true {
		t.Fatalf("verify: %d %s", v.Status, v.Body)
	}
}

// TestImpersonationInputBounds: the duration is bounded before any
// arithmetic, and reasons, tickets and names must be text a person can
// read: something visible, no control characters, no direction overrides.
func TestImpersonationInputBounds(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	owner, admin := newClient(t, srv.URL), newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	admin.mustLogin("admin@example.org")
	benID := userID(t, admin, "ben@example.org")
	before := headSeq(t, owner)

	starts := []struct {
		name string
		body map[string]any
	}{
		{"ErrMinutesNearInt64Max", map[string]any{"user_id": benID, "reason": "r", "minutes": int64(9223372036854775807)}},
		{"ErrMinutesOverflowToPast", map[string]any{"user_id": benID, "reason": "r", "minutes": int64(153722867280912931)}},
		{"ErrMinutesOverPolicy", map[string]any{"user_id": benID, "reason": "r", "minutes": 100_000}},
		{"ErrReasonZeroWidthOnly", map[string]any{"user_id": benID, "reason": "\u200b\u200b\u200b"}},
		{"ErrReasonBidiOverride", map[string]any{"user_id": benID, "reason": "refund \u202egnp.exe"}},
		{"ErrReasonNUL", map[string]any{"user_id": benID, "reason": "ticket\x00"}},
		{"ErrTicketZeroWidthOnly", map[string]any{"user_id": benID, "reason": "r", "ticket": "\u200b"}},
	}
	for _, tt := range starts {
		t.Run(tt.name, func(t *testing.T) {
			r := admin.post("/api/v1/impersonations", tt.body)
			if r.Status != http.StatusUnprocessableEntity || r.ErrorCode(t) != standin.EInvalid {
				t.Fatalf("%d %s, want 422", r.Status, r.Body)
			}
		})
	}
	names := []struct {
		name, value string
		status      int
	}{
		{"ErrNameZeroWidthOnly", "\u200b\u200c", 422},
		{"ErrNameNUL", "Ada\x00", 422},
		{"ErrNameBidiOverride", "\u202eAda", 422},
		{"ErrNameLineBreak", "Ada\nOwner", 422},
		{"OKAccentsAndScripts", "Zoë Ångström 山田", 200},
	}
	for _, tt := range names {
		t.Run(tt.name, func(t *testing.T) {
			r := admin.do(http.MethodPatch, "/api/v1/profile", map[string]string{"name": tt.value}, "X-CSRF-Token", admin.csrf)
			if r.Status != tt.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tt.status)
			}
		})
	}
	// The one accepted rename is the only event: refusals wrote nothing.
	if after := headSeq(t, owner); after != before+1 {
		t.Fatalf("%v events written, want only the rename's", after-before)
	}
}

// TestNoOnePassesForAnother: a name change is audited, and what the
// impersonated user reads names the agent by an address no one else has.
func TestNoOnePassesForAnother(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	owner, support, ben := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	support.mustLogin("support@example.org")
	ben.mustLogin("ben@example.org")
	supportID := userID(t, owner, "support@example.org")

	if r := support.do(http.MethodPatch, "/api/v1/profile", map[string]string{"name": "Olivia Owner"}, "X-CSRF-Token", support.csrf); r.Status != http.StatusOK {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	renames := events(t, owner, "type="+standin.EventUserRenamed)
	if len(renames) != 1 {
		t.Fatalf("%d user.renamed events, want 1", len(renames))
	}
	if e := renames[0]; e["subject"].(map[string]any)["id"] != supportID || !strings.Contains(e["reason"].(string), "Olivia Owner") {
		t.Fatalf("rename event %v", e)
	}

	if r := startImpersonation(support, userID(t, owner, "ben@example.org"), "Ben's booking"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	notes := items(t, ben.do(http.MethodGet, "/api/v1/notifications", nil))
	if len(notes) == 0 {
		t.Fatal("Ben was not notified")
	}
	n := notes[0]
	if n["actor_email"] != "support@example.org" || !strings.Contains(n["body"].(string), "(support@example.org)") {
		t.Fatalf("Ben's notification does not name the agent's address: %v", n)
	}
}

// TestSuspensionIsAboutTheSuspended: the subject of user.suspended is the
// suspended user; the actor is who suspended them.
func TestSuspensionIsAboutTheSuspended(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin := newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	cleoID, adminID := userID(t, admin, "cleo@example.org"), userID(t, admin, "admin@example.org")
	if r := admin.post("/api/v1/users/"+cleoID+"/suspend", map[string]any{}); r.Status != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.Status, r.Body)
	}
	evs := events(t, admin, "type="+standin.EventUserSuspended)
	if len(evs) != 1 {
		t.Fatalf("%d user.suspended events", len(evs))
	}
	if s, a := evs[0]["subject"].(map[string]any), evs[0]["actor"].(map[string]any); s["id"] != cleoID || a["id"] != adminID {
		t.Fatalf("user.suspended subject %v actor %v, want Cleo by the admin", s, a)
	}
}

// TestRefusalsRevealNothing: what a caller may not see answers exactly as
// what does not exist.
func TestRefusalsRevealNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := mustStartFacility(t)
	admin, ada, cleo := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	ada.mustLogin("ada@example.org")
	cleo.mustLogin("cleo@example.org")
	ids := mustDemoIDs(t, ada)
	booking := ada.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1))
	if booking.Status != http.StatusCreated {
		t.Fatalf("book: %d %s", booking.Status, booking.Body)
	}
	bookingID := booking.JSON(t)["id"].(string)
	r := startImpersonation(admin, userID(t, admin, "ben@example.org"), "oracle")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	impID := r.JSON(t)["id"].(string)
	const unknown = "0123456789abcdef01234567"

	same := func(t *testing.T, what string, real, none *response, realID string) {
		t.Helper()
		if real.Status != none.Status || strings.ReplaceAll(string(real.Body), realID, unknown) != string(none.Body) {
			t.Fatalf("%s: hidden %d %s, unknown %d %s", what, real.Status, real.Body, none.Status, none.Body)
		}
		if none.Status != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", what, none.Status)
		}
	}
	t.Run("Revoke", func(t *testing.T) {
		same(t, "revoke", cleo.post("/api/v1/impersonations/"+impID+"/revoke", map[string]any{}),
			cleo.post("/api/v1/impersonations/"+unknown+"/revoke", map[string]any{}), impID)
	})
	t.Run("CancelBooking", func(t *testing.T) {
		same(t, "cancel", cleo.do(http.MethodDelete, "/api/v1/bookings/"+bookingID, nil, "X-CSRF-Token", cleo.csrf),
			cleo.do(http.MethodDelete, "/api/v1/bookings/"+unknown, nil, "X-CSRF-Token", cleo.csrf), bookingID)
	})
	t.Run("Subscribe", func(t *testing.T) {
		f := ada.mustFeed(ctx, t)
		real, none := f.subscribe(ctx, "impersonation:"+impID, 0), f.subscribe(ctx, "impersonation:"+unknown, 0)
		if real["type"] != "error" || real["code"] != none["code"] || real["message"] != none["message"] {
			t.Fatalf("subscribe: hidden %v, unknown %v", real, none)
		}
	})
}

// TestAgentEndsOwnImpersonationFromAnotherSession: after a crash or from
// another tab's session, the agent ends what they hold without signing
// out, by the exit and by revoking it.
func TestAgentEndsOwnImpersonationFromAnotherSession(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	first, second := newClient(t, srv.URL), newClient(t, srv.URL)
	first.mustLogin("admin@example.org")
	second.mustLogin("admin@example.org")
	benID := userID(t, second, "ben@example.org")

	for _, how := range []string{"exit", "revoke"} {
		t.Run(how, func(t *testing.T) {
			r := startImpersonation(first, benID, "stuck tab")
			if r.Status != http.StatusCreated {
				t.Fatalf("start: %d %s", r.Status, r.Body)
			}
			impID := r.JSON(t)["id"].(string)
			var end *response
			if how == "exit" {
				end = second.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", second.csrf)
			} else {
				end = second.post("/api/v1/impersonations/"+impID+"/revoke", map[string]any{})
			}
			if end.Status != http.StatusOK {
				t.Fatalf("%s from another session: %d %s", how, end.Status, end.Body)
			}
			if m := end.JSON(t); m["id"] != impID || m["cause"] != standin.CauseEndedByActor {
				t.Fatalf("%s answered %v", how, m)
			}
			if user, _, imp := session(t, first); user != "admin@example.org" || imp != nil {
				t.Fatalf("the impersonating session still acts as %s (%v)", user, imp)
			}
			if user, _, _ := session(t, second); user != "admin@example.org" {
				t.Fatalf("the other session became %s", user)
			}
		})
	}
	if r := second.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", second.csrf); r.Status != http.StatusConflict {
		t.Fatalf("exit with nothing held: %d %s", r.Status, r.Body)
	}
}
