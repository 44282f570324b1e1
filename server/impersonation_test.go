package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server"
	"standin/server/dbtest"
	"standin/server/standin"
)

// clock is a time source a test moves forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// userID finds a demo user's id through the directory.
func userID(t *testing.T, staff *client, email string) string {
	t.Helper()
	for _, u := range items(t, staff.do(http.MethodGet, "/api/v1/users?q="+email, nil)) {
		if u["email"] == email {
			return u["id"].(string)
		}
	}
	t.Fatalf("no user %s", email)
	return ""
}

// session reads GET /session and returns the effective and real emails and
// the impersonation (nil when none).
func session(t *testing.T, c *client) (user, actor string, imp map[string]any) {
	t.Helper()
	r := c.do(http.MethodGet, "/api/v1/session", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("session: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	c.csrf = m["csrf_token"].(string)
	imp, _ = m["impersonation"].(map[string]any)
	return m["user"].(map[string]any)["email"].(string), m["actor"].(map[string]any)["email"].(string), imp
}

func startImpersonation(c *client, target, reason string) *response {
	return c.post("/api/v1/impersonations", map[string]any{"user_id": target, "reason": reason, "ticket": "SUP-42"})
}

// events returns the activity log as an admin sees it, oldest first.
func events(t *testing.T, admin *client, query string) []map[string]any {
	t.Helper()
	got := items(t, admin.do(http.MethodGet, "/api/v1/activity?limit=500&"+query, nil))
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	return got
}

func TestImpersonationLifecycle(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, ben, auditor := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	ben.mustLogin("ben@example.org")
	auditor.mustLogin("owner@example.org")
	benID := userID(t, admin, "ben@example.org")
	ids := mustDemoIDs(t, admin)
	adminToken := admin.cookie(server.SessionCookie).Value

	r := startImpersonation(admin, benID, "Ben cannot book the confocal")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	started := r.JSON(t)
	impID := started["id"].(string)
	for _, field := range []string{"id", "actor", "subject", "reason", "started_at", "expires_at"} {
		if started[field] == nil || started[field] == "" {
			t.Errorf("start reply lacks %s: %v", field, started)
		}
	}

	t.Run("SessionSwitchedWithoutSignIn", func(t *testing.T) {
		user, actor, imp := session(t, admin)
		if user != "ben@example.org" || actor != "admin@example.org" || imp == nil || imp["id"] != impID {
			t.Fatalf("session: user %s actor %s impersonation %v", user, actor, imp)
		}
		if admin.cookie(server.SessionCookie).Value == adminToken {
			t.Fatal("the session token did not rotate on start")
		}
		old := newClient(t, srv.URL).do(http.MethodGet, "/api/v1/session", nil, "Cookie", server.SessionCookie+"="+adminToken)
		if old.Status != http.StatusUnauthorized {
			t.Fatalf("the pre-impersonation token still works: %d", old.Status)
		}
	})

	t.Run("TargetPermissionsOnly", func(t *testing.T) {
		for _, path := range []string{"/api/v1/users", "/api/v1/activity", "/api/v1/policies"} {
			if r := admin.do(http.MethodGet, path, nil); r.Status != http.StatusForbidden {
				t.Errorf("as Ben, GET %s: %d", path, r.Status)
			}
		}
		r := admin.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1))
		if r.Status != http.StatusForbidden || !strings.Contains(reason(t, r), "Confocal Basics") {
			t.Fatalf("as Ben, book the confocal: %d %s", r.Status, r.Body)
		}
		// A view of Ben's data, by the admin as Ben: audited like the rest.
		if r := admin.do(http.MethodGet, "/api/v1/resources", nil); r.Status != http.StatusOK {
			t.Fatalf("as Ben, resources: %d", r.Status)
		}
	})

	t.Run("SensitiveRefused", func(t *testing.T) {
		r := admin.post("/api/v1/profile/password", map[string]string{"current_password": "demo", "new_password": "hijacked-password"})
		if r.Status != http.StatusForbidden || !strings.Contains(reason(t, r), "impersonating") {
			t.Fatalf("password change while impersonating: %d %s", r.Status, r.Body)
		}
	})

	t.Run("NestingRefused", func(t *testing.T) {
		cleoID := userID(t, auditor, "cleo@example.org")
		r := startImpersonation(admin, cleoID, "nested")
		if r.Status != http.StatusConflict {
			t.Fatalf("nested start: %d %s", r.Status, r.Body)
		}
	})

	t.Run("BenIsNotified", func(t *testing.T) {
		notes := items(t, ben.do(http.MethodGet, "/api/v1/notifications", nil))
		if len(notes) == 0 || !strings.Contains(fmt.Sprint(notes[0]["body"]), "Adrian Admin") ||
			notes[0]["reason"] != "Ben cannot book the confocal" {
			t.Fatalf("Ben's notifications: %v", notes)
		}
	})

	t.Run("EndWithoutLosingTheAdminSession", func(t *testing.T) {
		r := admin.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", admin.csrf)
		if r.Status != http.StatusOK || r.JSON(t)["cause"] != standin.CauseEndedByActor {
			t.Fatalf("end: %d %s", r.Status, r.Body)
		}
		user, actor, imp := session(t, admin)
		if user != "admin@example.org" || actor != "admin@example.org" || imp != nil {
			t.Fatalf("after end: user %s actor %s impersonation %v", user, actor, imp)
		}
		if r := admin.do(http.MethodGet, "/api/v1/users", nil); r.Status != http.StatusOK {
			t.Fatalf("admin rights are not back: %d", r.Status)
		}
		notes := items(t, ben.do(http.MethodGet, "/api/v1/notifications", nil))
		if len(notes) < 2 || notes[0]["type"] != standin.EventImpersonationEnded {
			t.Fatalf("Ben was not told it ended: %v", notes)
		}
	})

	t.Run("EveryEventAttributed", func(t *testing.T) {
		evs := events(t, auditor, "impersonation="+impID)
		types := []string{}
		for _, e := range evs {
			types = append(types, e["type"].(string))
			actor, subject := e["actor"].(map[string]any), e["subject"].(map[string]any)
			if actor["name"] != "Adrian Admin" || subject["name"] != "Ben Okafor" || e["impersonation_id"] != impID {
				t.Errorf("event %v is not attributed to the admin acting as Ben", e)
			}
		}
		actions := []string{}
		for _, e := range evs {
			actions = append(actions, fmt.Sprint(e["action"], " ", e["outcome"], " ", e["reason"]))
		}
		all := strings.Join(actions, "\n")
		for _, want := range []string{"resource.list allowed", "booking.create denied", "Confocal Basics"} {
			if !strings.Contains(all, want) {
				t.Errorf("no event for %q among:\n%s", want, all)
			}
		}
		joined := strings.Join(types, ",")
		for _, want := range []string{standin.EventImpersonationStarted, standin.EventActionDenied, standin.EventImpersonationEnded} {
			if !strings.Contains(joined, want) {
				t.Errorf("events %s lack %s", joined, want)
			}
		}
		if evs[0]["type"] != standin.EventImpersonationStarted || evs[0]["reason"] != "Ben cannot book the confocal" {
			t.Errorf("first event %v", evs[0])
		}
		last := evs[len(evs)-1]
		if last["type"] != standin.EventImpersonationEnded || last["outcome"] != standin.CauseEndedByActor {
			t.Errorf("last event %v", last)
		}
	})

	t.Run("ChainVerifiesAndCatchesTampering", func(t *testing.T) {
		v := auditor.verify().JSON(t)
		if v["ok"] != true || v["checked"].(float64) < 5 {
			t.Fatalf("verify: %v", v)
		}
		evs := events(t, auditor, "type="+standin.EventImpersonationStarted)
		seq := int64(evs[0]["seq"].(float64))
		if _, err := dbtest.MustDriver(t, srv.db).Collection(logSegment).UpdateOne(context.Background(),
			bson.M{"_id": seq}, bson.M{"$set": bson.M{"reason": "nothing to see"}}); err != nil {
			t.Fatal(err)
		}
		v = auditor.verify().JSON(t)
		if v["ok"] != false || int64(v["broken_at"].(float64)) != seq {
			t.Fatalf("verify after tampering with seq %d: %v", seq, v)
		}
	})
}

func TestImpersonationRefusals(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, owner, support, support2, ada := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	owner.mustLogin("owner@example.org")
	support.mustLogin("support@example.org")
	ada.mustLogin("ada@example.org")
	id := func(email string) string { return userID(t, owner, email) }

	tests := []struct {
		name   string
		who    *client
		target string
		reason string
		status int
		says   string
	}{
		{"ErrAdminAsAdmin", admin, id("admin@example.org"), "x", 403, "yourself"},
		{"ErrAdminAsOwner", admin, id("owner@example.org"), "x", 403, "owner"},
		{"ErrOwnerAsOwner", owner, id("owner@example.org"), "x", 403, "yourself"},
		{"ErrSupportAsManager", support, id("manager@example.org"), "x", 403, "not lower"},
		{"ErrUserHasNoRight", ada, id("ben@example.org"), "x", 403, "support"},
		{"ErrReasonMissing", admin, id("ben@example.org"), " ", 422, ""},
		{"ErrUnknownUser", admin, "000000000000000000000000", "x", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startImpersonation(tt.who, tt.target, tt.reason)
			if r.Status != tt.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tt.status)
			}
			if tt.says != "" {
				body := strings.ToLower(string(r.Body))
				if !strings.Contains(body, strings.ToLower(tt.says)) {
					t.Fatalf("refusal %s does not say %q", r.Body, tt.says)
				}
			}
		})
	}

	t.Run("ErrSecondAgentNamesTheHolder", func(t *testing.T) {
		if r := startImpersonation(admin, id("ben@example.org"), "first"); r.Status != http.StatusCreated {
			t.Fatalf("first agent: %d %s", r.Status, r.Body)
		}
		r := startImpersonation(support, id("ben@example.org"), "second")
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "Adrian Admin") {
			t.Fatalf("second agent: %d %s", r.Status, r.Body)
		}
	})

	t.Run("ErrChain", func(t *testing.T) {
		// support2 is impersonated by the owner... an owner acting as the
		// support agent who then tries to impersonate: the owner's session
		// is already impersonating, and the support agent, in their own
		// session, is being impersonated: both are refused.
		support2.mustLogin("support@example.org")
		if r := startImpersonation(owner, id("support@example.org"), "chain"); r.Status != http.StatusCreated {
			t.Fatalf("owner as support: %d %s", r.Status, r.Body)
		}
		r := startImpersonation(support2, id("cleo@example.org"), "chain")
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "chain") {
			t.Fatalf("support, being impersonated, starts another: %d %s", r.Status, r.Body)
		}
	})

	t.Run("RefusalsAudited", func(t *testing.T) {
		auditor := newClient(t, srv.URL)
		auditor.mustLogin("owner@example.org")
		evs := events(t, auditor, "type="+standin.EventImpersonationDenied)
		if len(evs) < 5 {
			t.Fatalf("%d impersonation.denied events, want one per refusal", len(evs))
		}
		for _, e := range evs {
			if e["reason"] == "" || e["actor"].(map[string]any)["id"] == "" {
				t.Errorf("denial without reason or actor: %v", e)
			}
		}
	})
}

func TestImpersonationEnds(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	srv := mustStartFacility(t, func(c *server.Config) { c.Clock = clk.Now })
	owner, manager, support := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	manager.mustLogin("manager@example.org")
	id := func(email string) string { return userID(t, owner, email) }

	start := func(c *client, email, target string) string {
		t.Helper()
		c.mustLogin(email)
		r := startImpersonation(c, id(target), "reproduce")
		if r.Status != http.StatusCreated {
			t.Fatalf("start %s as %s: %d %s", email, target, r.Status, r.Body)
		}
		session(t, c)
		return r.JSON(t)["id"].(string)
	}
	// endedCause waits briefly for the ended event: the expiry sweep may
	// be the one ending it, concurrently with the request that noticed.
	endedCause := func(impID string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, e := range events(t, owner, "impersonation="+impID+"&type="+standin.EventImpersonationEnded) {
				return e["outcome"].(string)
			}
			if time.Now().After(deadline) {
				return ""
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// readBack is GET /impersonations/{id} as c: the page that finds
	// itself back as the agent learns from it why the session ended.
	readBack := func(c *client, impID string) (int, map[string]any) {
		t.Helper()
		r := c.do(http.MethodGet, "/api/v1/impersonations/"+impID, nil)
		if r.Status != http.StatusOK {
			return r.Status, nil
		}
		return r.Status, r.JSON(t)
	}

	t.Run("RevokedByTheTargetsManager", func(t *testing.T) {
		impID := start(support, "support@example.org", "ada@example.org")
		active := items(t, manager.do(http.MethodGet, "/api/v1/impersonations?active=true", nil))
		if len(active) != 1 || active[0]["id"] != impID {
			t.Fatalf("the manager sees %v", active)
		}
		impersonatingToken := support.cookie(server.SessionCookie).Value
		if r := manager.post("/api/v1/impersonations/"+impID+"/revoke", nil); r.Status != http.StatusOK || r.JSON(t)["cause"] != standin.CauseRevoked {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if user, _, imp := session(t, support); user != "support@example.org" || imp != nil {
			t.Fatalf("after revoke the agent is %s in %v", user, imp)
		}
		// The identity changed, so the token did: the one used while
		// impersonating no longer works.
		old := newClient(t, srv.URL).do(http.MethodGet, "/api/v1/session", nil, "Cookie", server.SessionCookie+"="+impersonatingToken)
		if old.Status != http.StatusUnauthorized {
			t.Fatalf("the token used while impersonating still works after a revoke: %d", old.Status)
		}
		if got := endedCause(impID); got != standin.CauseRevoked {
			t.Fatalf("cause %q", got)
		}
		// The agent and the manager read it back, ended, with its cause;
		// the impersonated user and an unknown id get 404 alike.
		for _, c := range []*client{support, manager} {
			if status, imp := readBack(c, impID); status != http.StatusOK || imp["cause"] != standin.CauseRevoked ||
				imp["ended_at"] == nil || imp["subject"].(map[string]any)["id"] != id("ada@example.org") {
				t.Fatalf("reading back the revoked impersonation: %d %v", status, imp)
			}
		}
		// The impersonated user reads it too (their console shows it);
		// someone else does not learn it exists.
		subject := newClient(t, srv.URL)
		subject.mustLogin("ada@example.org")
		if status, imp := readBack(subject, impID); status != http.StatusOK || imp["ended_words"] != "Maya Manager (manager@example.org) ended it" {
			t.Fatalf("the impersonated user reads the record: %d %v", status, imp)
		}
		other := newClient(t, srv.URL)
		other.mustLogin("cleo@example.org")
		if status, imp := readBack(other, impID); status != http.StatusNotFound {
			t.Fatalf("another user reads the record: %d %v", status, imp)
		}
		if status, _ := readBack(support, "no-such-impersonation"); status != http.StatusNotFound {
			t.Fatalf("an unknown id: %d", status)
		}
	})

	t.Run("ExpiresWithNoRequestInFlight", func(t *testing.T) {
		impID := start(support, "support@example.org", "ada@example.org")
		clk.Advance(31 * time.Minute)
		if got := endedCause(impID); got != standin.CauseExpired {
			t.Fatalf("after expiry, cause %q", got)
		}
		if status, imp := readBack(support, impID); status != http.StatusOK || imp["cause"] != standin.CauseExpired {
			t.Fatalf("reading back the expired impersonation: %d %v", status, imp)
		}
	})

	t.Run("LosingTheRightEndsIt", func(t *testing.T) {
		impID := start(support, "support@example.org", "ben@example.org")
		grant := map[string]string{"role": "role:support", "domain": "*", "object": "impersonation", "action": "start"}
		if r := owner.do(http.MethodDelete, "/api/v1/policies", grant, "X-CSRF-Token", owner.csrf); r.Status != http.StatusOK {
			t.Fatalf("remove the right: %d %s", r.Status, r.Body)
		}
		defer owner.post("/api/v1/policies", grant)
		if user, _, imp := session(t, support); user != "support@example.org" || imp != nil {
			t.Fatalf("the agent still acts as %s (%v)", user, imp)
		}
		if got := endedCause(impID); got != standin.CauseActorLostRight {
			t.Fatalf("cause %q", got)
		}
	})

	t.Run("LogoutEndsIt", func(t *testing.T) {
		if r := owner.post("/api/v1/policies", map[string]string{"role": "role:support", "domain": "*", "object": "impersonation", "action": "start"}); r.Status != http.StatusCreated && r.Status != http.StatusConflict {
			t.Logf("restore the right: %d %s", r.Status, r.Body)
		}
		impID := start(support, "support@example.org", "cleo@example.org")
		if r := support.post("/api/v1/auth/logout", nil); r.Status != http.StatusOK {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
		if got := endedCause(impID); got != standin.CauseActorLoggedOut {
			t.Fatalf("cause %q", got)
		}
	})

	t.Run("SuspendingTheTargetEndsIt", func(t *testing.T) {
		admin := newClient(t, srv.URL)
		impID := start(admin, "admin@example.org", "cleo@example.org")
		if r := owner.post("/api/v1/users/"+id("cleo@example.org")+"/suspend", nil); r.Status != http.StatusOK {
			t.Fatalf("suspend: %d %s", r.Status, r.Body)
		}
		if got := endedCause(impID); got != standin.CauseTargetSuspended {
			t.Fatalf("cause %q", got)
		}
		if user, _, imp := session(t, admin); user != "admin@example.org" || imp != nil {
			t.Fatalf("the admin still acts as %s", user)
		}
	})
}

func TestDestructiveNeedsTheActorsRight(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	owner, admin, cleo := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	admin.mustLogin("admin@example.org")
	cleo.mustLogin("cleo@example.org")
	ids := mustDemoIDs(t, cleo)
	r := cleo.post("/api/v1/bookings", bookingBody(ids.flow, ids.cell, nextMonday(), 1))
	if r.Status != http.StatusCreated {
		t.Fatalf("Cleo books: %d %s", r.Status, r.Body)
	}
	booking := r.JSON(t)["id"].(string)
	if r := startImpersonation(admin, userID(t, owner, "cleo@example.org"), "cancel for Cleo"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	session(t, admin)

	r = admin.do(http.MethodDelete, "/api/v1/bookings/"+booking, nil, "X-CSRF-Token", admin.csrf)
	if r.Status != http.StatusForbidden || !strings.Contains(reason(t, r), "Destructive") {
		t.Fatalf("cancel as Cleo without the right: %d %s", r.Status, r.Body)
	}
	grant := map[string]string{"role": "role:admin", "domain": "*", "object": "impersonation", "action": "destructive"}
	if r := owner.post("/api/v1/policies", grant); r.Status != http.StatusCreated {
		t.Fatalf("grant: %d %s", r.Status, r.Body)
	}
	r = admin.do(http.MethodDelete, "/api/v1/bookings/"+booking, nil, "X-CSRF-Token", admin.csrf)
	if r.Status != http.StatusOK || r.JSON(t)["status"] != "cancelled" {
		t.Fatalf("cancel as Cleo with the right: %d %s", r.Status, r.Body)
	}
	evs := events(t, owner, "type="+standin.EventBookingCancelled)
	if len(evs) != 1 || evs[0]["subject"].(map[string]any)["name"] != "Cleo Park" || evs[0]["actor"].(map[string]any)["name"] != "Adrian Admin" {
		t.Fatalf("cancellation events: %v", evs)
	}
}

// TestTargetSigningOutDoesNotEndIt: the impersonated user signing out of
// their own session ends nothing of the agent's.
func TestTargetSigningOutDoesNotEndIt(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, ben := newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	ben.mustLogin("ben@example.org")
	if r := startImpersonation(admin, userID(t, admin, "ben@example.org"), "reproduce"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	if r := ben.post("/api/v1/auth/logout", nil); r.Status != http.StatusOK {
		t.Fatalf("Ben signs out: %d", r.Status)
	}
	if user, actor, imp := session(t, admin); user != "ben@example.org" || actor != "admin@example.org" || imp == nil {
		t.Fatalf("the impersonation ended when Ben signed out: %s as %s (%v)", actor, user, imp)
	}
}

// TestUnauditedEndIsRepaired: an end whose audit event was never written
// (the log failed, or the server stopped, in between) is audited by the
// server afterwards.
func TestUnauditedEndIsRepaired(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	srv := mustStartFacility(t, func(c *server.Config) { c.Clock = clk.Now })
	owner := newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	ctx := context.Background()
	admin, err := srv.db.UserByEmail(ctx, "admin@example.org")
	if err != nil {
		t.Fatal(err)
	}
	ben, err := srv.db.UserByEmail(ctx, "ben@example.org")
	if err != nil {
		t.Fatal(err)
	}
	// An impersonation ended behind the audit log's back.
	imp := &standin.Impersonation{ActorID: admin.ID, ActorName: admin.Name, SubjectID: ben.ID, SubjectName: ben.Name,
		Reason: "repair", StartedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := srv.db.CreateImpersonation(ctx, imp); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.db.EndImpersonation(ctx, imp.ID, standin.CauseRevoked, &standin.User{ID: owner.csrf}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Its own request has two minutes to write the event; the repair
	// leaves it alone until then.
	time.Sleep(2 * time.Second)
	if evs := events(t, owner, "impersonation="+imp.ID+"&type="+standin.EventImpersonationEnded); len(evs) != 0 {
		t.Fatalf("an end was repaired %d times within its grace", len(evs))
	}
	clk.Advance(3 * time.Minute)
	ended := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for {
		evs := events(t, owner, "impersonation="+imp.ID+"&type="+standin.EventImpersonationEnded)
		if len(evs) == 1 && evs[0]["outcome"] == standin.CauseRevoked {
			t.Logf("result: end audited after=%v", time.Since(ended).Round(time.Millisecond))
			break
		}
		if len(evs) > 1 {
			t.Fatalf("the end was audited %d times", len(evs))
		}
		if time.Now().After(deadline) {
			t.Fatal("the unaudited end was not repaired")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Once, not on every sweep.
	time.Sleep(1500 * time.Millisecond)
	if evs := events(t, owner, "impersonation="+imp.ID+"&type="+standin.EventImpersonationEnded); len(evs) != 1 {
		t.Fatalf("the end was audited %d times", len(evs))
	}
}

// TestLeftoversOfFailedStartsAreCleared: what a start leaves behind when
// the database fails under it and it cannot undo its work never blocks
// anyone for long. An impersonation no session is in (the start could not
// switch the session, or the session expired unseen) ends within a
// minute, and holds naming an impersonation that was never written are
// freed by the next start that meets them.
func TestLeftoversOfFailedStartsAreCleared(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	srv := mustStartFacility(t, func(c *server.Config) { c.Clock = clk.Now })
	ctx := context.Background()
	owner, admin := newClient(t, srv.URL), newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	admin.mustLogin("admin@example.org")
	benID, adaID := userID(t, owner, "ben@example.org"), userID(t, owner, "ada@example.org")
	adminID := userID(t, owner, "admin@example.org")

	t.Run("ImpersonationWithoutSession", func(t *testing.T) {
		r := startImpersonation(admin, benID, "left behind")
		if r.Status != http.StatusCreated {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		impID := r.JSON(t)["id"].(string)
		if _, err := dbtest.MustDriver(t, srv.db).Collection("sessions").DeleteMany(ctx, bson.M{"impersonation_id": impID}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute)
		deadline := time.Now().Add(20 * time.Second)
		for {
			ended := events(t, owner, "impersonation="+impID+"&type="+standin.EventImpersonationEnded)
			if len(ended) == 1 {
				if ended[0]["outcome"] != standin.CauseActorSessionGone {
					t.Fatalf("ended with %v", ended[0]["outcome"])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the impersonation no session is in did not end")
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Ben is free again.
		if r := startImpersonation(owner, benID, "after the cleanup"); r.Status != http.StatusCreated {
			t.Fatalf("start after the cleanup: %d %s", r.Status, r.Body)
		}
	})

	t.Run("HoldsOfAnUnwrittenStart", func(t *testing.T) {
		admin.mustLogin("admin@example.org")
		ghost := bson.NewObjectID().Hex()
		for _, key := range []string{"actor:" + adminID, "subject:" + adaID} {
			if _, err := dbtest.MustDriver(t, srv.db).Collection("impersonation_holds").InsertOne(ctx,
				bson.M{"_id": key, "impersonation_id": ghost, "at": time.Now().Add(-2 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		if r := startImpersonation(admin, adaID, "despite the leftovers"); r.Status != http.StatusCreated {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
	})
}
