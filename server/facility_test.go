package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"standin/server"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

// facilityConsole is a server over a database the test can also reach, to
// arrange cases (an expired training) the API rightly does not offer.
type facilityConsole struct {
	*console
	db *mongostore.DB
}

func mustStartFacility(t *testing.T, options ...func(*server.Config)) *facilityConsole {
	t.Helper()
	db := dbtest.MustOpen(t)
	cfg := server.Config{MongoURI: dbtest.MustServer(t).URI, Database: db.Name(), Demo: server.DemoOn}
	for _, o := range options {
		o(&cfg)
	}
	return &facilityConsole{console: mustRun(t, cfg), db: db}
}

// ids of the demo facility, read through the API.
type demoIDs struct {
	neuro, cell, confocal, flow string
}

func mustDemoIDs(t *testing.T, c *client) demoIDs {
	t.Helper()
	var ids demoIDs
	for _, p := range items(t, c.do(http.MethodGet, "/api/v1/projects", nil)) {
		switch p["code"] {
		case "NEURO":
			ids.neuro = p["id"].(string)
		case "CELL":
			ids.cell = p["id"].(string)
		}
	}
	for _, r := range items(t, c.do(http.MethodGet, "/api/v1/resources?project="+ids.neuro, nil)) {
		switch r["name"] {
		case "Confocal LSM 900":
			ids.confocal = r["id"].(string)
		case "Flow Cytometer":
			ids.flow = r["id"].(string)
		}
	}
	if ids.neuro == "" || ids.cell == "" || ids.confocal == "" || ids.flow == "" {
		t.Fatalf("demo ids incomplete: %+v", ids)
	}
	return ids
}

func items(t *testing.T, r *response) []map[string]any {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if _, ok := m["next_cursor"]; !ok {
		t.Fatalf("list without next_cursor: %s", r.Body)
	}
	raw, ok := m["items"].([]any)
	if !ok {
		t.Fatalf("list without items: %s", r.Body)
	}
	out := make([]map[string]any, 0, len(raw))
	for _, it := range raw {
		out = append(out, it.(map[string]any))
	}
	return out
}

// nextMonday is 09:00 UTC on a Monday at least a day ahead.
func nextMonday() time.Time {
	d := time.Now().UTC().Add(24 * time.Hour)
	for d.Weekday() != time.Monday {
		d = d.Add(24 * time.Hour)
	}
	return time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, time.UTC)
}

func bookingBody(resource, project string, start time.Time, hours float64) map[string]string {
	return map[string]string{
		"resource_id": resource, "project_id": project,
		"start": start.Format(time.RFC3339), "end": start.Add(time.Duration(hours * float64(time.Hour))).Format(time.RFC3339),
	}
}

// reason returns error.reason of a denial.
func reason(t *testing.T, r *response) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	s, _ := e["reason"].(string)
	return s
}

func TestBookingDecisions(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	ada := newClient(t, srv.URL)
	ada.mustLogin("ada@example.org")
	ids := mustDemoIDs(t, ada)
	mon := nextMonday()

	// Ben's Laser Safety expired: arranged in the database.
	benExpired := newClient(t, srv.URL)
	benExpired.mustLogin("ben@example.org")

	tests := []struct {
		name   string
		who    string
		body   map[string]string
		status int
		reason []string
	}{
		{"OKAdaConfocalNEURO", "ada", bookingBody(ids.confocal, ids.neuro, mon, 2), 201, nil},
		{"ErrBenMissingConfocalBasics", "ben", bookingBody(ids.confocal, ids.neuro, mon.Add(4*time.Hour), 1), 403, []string{"Confocal Basics"}},
		{"ErrCleoNotNEUROMember", "cleo", bookingBody(ids.confocal, ids.neuro, mon.Add(5*time.Hour), 1), 403, []string{"member"}},
		{"ErrAdaFiveHours", "ada", bookingBody(ids.confocal, ids.neuro, mon.Add(24*time.Hour), 5), 403, []string{"at most 4 hours"}},
		{"ErrAdaSunday", "ada", bookingBody(ids.confocal, ids.neuro, mon.Add(-24*time.Hour), 1), 403, []string{"Monday to Friday"}},
		{"ErrAdaAt21", "ada", bookingBody(ids.confocal, ids.neuro, mon.Add(12*time.Hour), 1), 403, []string{"08:00–20:00"}},
		{"ErrAdaFlowCytometerInNEURO", "ada", bookingBody(ids.flow, ids.neuro, mon, 1), 403, []string{"CELL"}},
		{"OKCleoFlowCytometerInCELL", "cleo", bookingBody(ids.flow, ids.cell, mon, 1), 201, nil},
		{"ErrAdaInCELL", "ada", bookingBody(ids.flow, ids.cell, mon.Add(2*time.Hour), 1), 403, []string{"member"}},
		{"ErrOverlap", "ada", bookingBody(ids.confocal, ids.neuro, mon.Add(time.Hour), 1), 409, nil},
	}
	clients := map[string]*client{"ada": ada}
	for _, who := range []string{"ben", "cleo"} {
		clients[who] = newClient(t, srv.URL)
		clients[who].mustLogin(who + "@example.org")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := clients[tt.who].post("/api/v1/bookings", tt.body)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			for _, want := range tt.reason {
				if got := reason(t, r); !strings.Contains(got, want) {
					t.Errorf("reason %q does not name %q", got, want)
				}
			}
		})
	}

	t.Run("ErrBenExpiredTraining", func(t *testing.T) {
		ctx := context.Background()
		ben, err := srv.db.UserByEmail(ctx, "ben@example.org")
		if err != nil {
			t.Fatal(err)
		}
		recs := ben.Trainings
		recs[0].ExpiresAt = time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
		recs[0].CompletedAt = recs[0].ExpiresAt.AddDate(-2, 0, 0)
		if _, err := srv.db.SetTrainings(ctx, ben.ID, recs, time.Now()); err != nil {
			t.Fatal(err)
		}
		// Written to the database behind the console's back: the console
		// reads it once what it keeps of Ben in memory is due again
		// (authcache.DefaultTTL).
		var got string
		waitUntil(t, "the refusal to name the expired training", func() bool {
			r := benExpired.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, mon.Add(48*time.Hour), 1))
			if r.Status != http.StatusForbidden {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			got = reason(t, r)
			return strings.Contains(got, "expired 3 Jan 2026")
		})
		if !strings.Contains(got, "Laser Safety") {
			t.Fatalf("reason %q does not name the expired training", got)
		}
	})

	t.Run("ResourcesSayWhy", func(t *testing.T) {
		ben := clients["ben"]
		for _, r := range items(t, ben.do(http.MethodGet, "/api/v1/resources?project="+ids.neuro, nil)) {
			switch r["name"] {
			case "Confocal LSM 900":
				if r["bookable"] != false || !strings.Contains(fmt.Sprint(r["reason"]), "Confocal Basics") {
					t.Errorf("Ben's confocal: %v", r)
				}
			case "Flow Cytometer":
				if r["bookable"] != false || !strings.Contains(fmt.Sprint(r["reason"]), "CELL") {
					t.Errorf("Ben's flow cytometer in NEURO: %v", r)
				}
			}
		}
		for _, r := range items(t, ada.do(http.MethodGet, "/api/v1/resources?project="+ids.neuro, nil)) {
			if r["name"] == "Confocal LSM 900" && (r["bookable"] != true || r["reason"] != nil) {
				t.Errorf("Ada's confocal: %v", r)
			}
		}
	})
}

func TestBookingScopes(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	ada, cleo, ben, manager := newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL), newClient(t, srv.URL)
	ada.mustLogin("ada@example.org")
	cleo.mustLogin("cleo@example.org")
	ben.mustLogin("ben@example.org")
	manager.mustLogin("manager@example.org")
	ids := mustDemoIDs(t, ada)
	mon := nextMonday()

	r := ada.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, mon, 1))
	if r.Status != http.StatusCreated {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	adaBooking := r.JSON(t)["id"].(string)
	if r := cleo.post("/api/v1/bookings", bookingBody(ids.flow, ids.cell, mon, 1)); r.Status != http.StatusCreated {
		t.Fatalf("%d %s", r.Status, r.Body)
	}

	t.Run("ManagerListsNEURONotCELL", func(t *testing.T) {
		got := items(t, manager.do(http.MethodGet, "/api/v1/bookings?project="+ids.neuro, nil))
		if len(got) != 1 || got[0]["id"] != adaBooking || got[0]["resource_name"] != "Confocal LSM 900" {
			t.Fatalf("NEURO bookings: %v", got)
		}
		r := manager.do(http.MethodGet, "/api/v1/bookings?project="+ids.cell, nil)
		if r.Status != http.StatusForbidden || r.ErrorCode(t) != standin.EForbidden || !strings.Contains(reason(t, r), "lead") {
			t.Fatalf("CELL bookings as NEURO's lead: %d %s", r.Status, r.Body)
		}
	})
	t.Run("MembersListOnlyTheirOwn", func(t *testing.T) {
		if got := items(t, ben.do(http.MethodGet, "/api/v1/bookings", nil)); len(got) != 0 {
			t.Fatalf("Ben sees %v", got)
		}
		if got := items(t, ada.do(http.MethodGet, "/api/v1/bookings", nil)); len(got) != 1 {
			t.Fatalf("Ada sees %v", got)
		}
		if r := ben.do(http.MethodGet, "/api/v1/bookings?project="+ids.neuro, nil); r.Status != http.StatusForbidden {
			t.Fatalf("Ben lists NEURO's bookings: %d", r.Status)
		}
	})
	t.Run("ErrCancelSomeoneElses", func(t *testing.T) {
		// Ben may not see Ada's bookings: hers answers as no booking does.
		r := ben.do(http.MethodDelete, "/api/v1/bookings/"+adaBooking, nil, "X-CSRF-Token", ben.csrf)
		if r.Status != http.StatusNotFound || r.ErrorCode(t) != standin.ENotFound {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		got, err := srv.db.BookingByID(context.Background(), adaBooking)
		if err != nil || got.Status != standin.BookingConfirmed {
			t.Fatalf("the booking changed: %+v, %v", got, err)
		}
	})
	t.Run("CancelOwn", func(t *testing.T) {
		r := ada.do(http.MethodDelete, "/api/v1/bookings/"+adaBooking, nil, "X-CSRF-Token", ada.csrf)
		if r.Status != http.StatusOK || r.JSON(t)["status"] != "cancelled" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r = ada.do(http.MethodDelete, "/api/v1/bookings/"+adaBooking, nil, "X-CSRF-Token", ada.csrf)
		if r.Status != http.StatusConflict {
			t.Fatalf("second cancel: %d %s", r.Status, r.Body)
		}
	})
}

func TestConcurrentDoubleBookingOverHTTP(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	ada := newClient(t, srv.URL)
	ada.mustLogin("ada@example.org")
	ids := mustDemoIDs(t, ada)
	body := bookingBody(ids.confocal, ids.neuro, nextMonday(), 2)

	const n = 10
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- ada.post("/api/v1/bookings", body).Status
		}()
	}
	wg.Wait()
	close(statuses)
	created, conflicts := 0, 0
	for s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflicts++
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if created != 1 || conflicts != n-1 {
		t.Fatalf("%d created, %d conflicts; want exactly one booking", created, conflicts)
	}
}

func TestBookingBadInput(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	ada := newClient(t, srv.URL)
	ada.mustLogin("ada@example.org")
	ids := mustDemoIDs(t, ada)
	mon := nextMonday()
	ok := bookingBody(ids.confocal, ids.neuro, mon, 1)
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for key, val := range ok {
			m[key] = val
		}
		m[k] = v
		return m
	}
	// A good booking, padded with whitespace (still valid JSON) past the
	// 1 MiB limit, and sent whole.
	okJSON, err := json.Marshal(ok)
	if err != nil {
		t.Fatal(err)
	}
	oversized := "{" + strings.Repeat(" ", 1<<20) + string(okJSON[1:])

	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"ErrUnknownResource", with("resource_id", "000000000000000000000000"), 404, standin.ENotFound},
		{"ErrMalformedResourceID", with("resource_id", "not-an-id"), 404, standin.ENotFound},
		{"ErrUnknownProject", with("project_id", "000000000000000000000000"), 404, standin.ENotFound},
		{"ErrMissingProject", with("project_id", ""), 422, standin.EInvalid},
		{"ErrEndBeforeStart", with("end", mon.Add(-time.Hour).Format(time.RFC3339)), 422, standin.EInvalid},
		{"ErrNotRFC3339", with("start", "next monday 9am"), 422, standin.EInvalid},
		{"ErrAbsurdDuration", with("end", mon.AddDate(1, 0, 0).Format(time.RFC3339)), 422, standin.EInvalid},
		{"ErrInThePast", bookingBody(ids.confocal, ids.neuro, time.Date(2020, 3, 2, 9, 0, 0, 0, time.UTC), 1), 422, standin.EInvalid},
		{"ErrOffQuarterHour", with("start", mon.Add(-7*time.Minute).Format(time.RFC3339)), 422, standin.EInvalid},
		{"ErrUnknownField", `{"resource_id":"x","project_id":"` + ids.neuro + `","start":"","end":"","colour":"red"}`, 400, standin.EMalformedJSON},
		{"ErrMalformedJSON", `{"resource_id":`, 400, standin.EMalformedJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ada.post("/api/v1/bookings", tt.body)
			if r.Status != tt.status || r.ErrorCode(t) != tt.code {
				t.Fatalf("%d %s; want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
		})
	}
	t.Run("ErrBodyTooLarge", func(t *testing.T) {
		// The server answers 413 as soon as the body passes the limit and
		// closes the connection; the client may still be writing then, and
		// the reset can overtake the answer. Either is a refusal; what
		// matters is that nothing is written (checked below).
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/bookings", strings.NewReader(oversized))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", ada.csrf)
		res, err := ada.http.Do(req)
		if err != nil {
			t.Logf("refused by closing the connection: %v", err)
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		r := &response{Status: res.StatusCode, Header: res.Header, Body: body}
		if r.Status != http.StatusRequestEntityTooLarge || r.ErrorCode(t) != standin.ETooLarge {
			t.Fatalf("%d %.200s; want 413 %s", r.Status, r.Body, standin.ETooLarge)
		}
	})
	if got := items(t, ada.do(http.MethodGet, "/api/v1/bookings", nil)); len(got) != 0 {
		t.Fatalf("refused requests wrote bookings: %v", got)
	}
	for _, path := range []string{"/api/v1/bookings/000000000000000000000000", "/api/v1/bookings/zzz"} {
		if r := ada.do(http.MethodDelete, path, nil, "X-CSRF-Token", ada.csrf); r.Status != http.StatusNotFound {
			t.Errorf("DELETE %s: %d", path, r.Status)
		}
	}
	for _, q := range []string{"limit=0", "limit=abc", "limit=500", "cursor=nope", "status=maybe"} {
		if r := ada.do(http.MethodGet, "/api/v1/bookings?"+q, nil); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("GET bookings?%s: %d", q, r.Status)
		}
	}
}

func TestUserDirectoryAndAccessCheck(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	support, ada := newClient(t, srv.URL), newClient(t, srv.URL)
	support.mustLogin("support@example.org")
	ada.mustLogin("ada@example.org")
	ids := mustDemoIDs(t, ada)

	found := items(t, support.do(http.MethodGet, "/api/v1/users?q=ben", nil))
	if len(found) != 1 || found[0]["email"] != "ben@example.org" {
		t.Fatalf("search ben: %v", found)
	}
	benID := found[0]["id"].(string)
	if len(items(t, support.do(http.MethodGet, "/api/v1/users", nil))) != 7 {
		t.Fatal("the directory does not list the 7 demo accounts")
	}

	r := ada.do(http.MethodGet, "/api/v1/users", nil)
	if r.Status != http.StatusForbidden || !strings.Contains(reason(t, r), "support") {
		t.Fatalf("Ada opens the directory: %d %s", r.Status, r.Body)
	}

	detail := support.do(http.MethodGet, "/api/v1/users/"+benID, nil).JSON(t)
	trainings, _ := detail["trainings"].([]any)
	projects, _ := detail["projects"].([]any)
	if len(trainings) != 1 || trainings[0].(map[string]any)["name"] != "Laser Safety" || len(projects) != 1 ||
		projects[0].(map[string]any)["code"] != "NEURO" {
		t.Fatalf("Ben's page: %v", detail)
	}

	check := support.do(http.MethodGet, fmt.Sprintf("/api/v1/users/%s/access?resource=%s&project=%s&action=create", benID, ids.confocal, ids.neuro), nil)
	if check.Status != http.StatusOK {
		t.Fatalf("%d %s", check.Status, check.Body)
	}
	m := check.JSON(t)
	if m["allowed"] != false || !strings.Contains(fmt.Sprint(m["reason"]), "Confocal Basics") {
		t.Fatalf("access check for Ben: %v", m)
	}
	if r := ada.do(http.MethodGet, fmt.Sprintf("/api/v1/users/%s/access?resource=%s&project=%s", benID, ids.confocal, ids.neuro), nil); r.Status != http.StatusForbidden {
		t.Fatalf("Ada checks Ben's access: %d", r.Status)
	}
	if r := support.do(http.MethodGet, "/api/v1/users/000000000000000000000000", nil); r.Status != http.StatusNotFound {
		t.Fatalf("unknown user: %d", r.Status)
	}
}

func TestPolicyChangeAtRunTime(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, ada := newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	ada.mustLogin("ada@example.org")

	grant := map[string]string{"role": "role:user", "domain": "*", "object": "profile", "action": "read"}
	if r := ada.do(http.MethodGet, "/api/v1/profile", nil); r.Status != http.StatusOK {
		t.Fatalf("profile before: %d %s", r.Status, r.Body)
	}
	if r := admin.do(http.MethodDelete, "/api/v1/policies", grant, "X-CSRF-Token", admin.csrf); r.Status != http.StatusOK {
		t.Fatalf("remove policy: %d %s", r.Status, r.Body)
	}
	if r := ada.do(http.MethodGet, "/api/v1/profile", nil); r.Status != http.StatusForbidden {
		t.Fatalf("profile after the grant was removed: %d %s", r.Status, r.Body)
	}
	if r := admin.post("/api/v1/policies", grant); r.Status != http.StatusCreated {
		t.Fatalf("add policy: %d %s", r.Status, r.Body)
	}
	if r := ada.do(http.MethodGet, "/api/v1/profile", nil); r.Status != http.StatusOK {
		t.Fatalf("profile after the grant was restored: %d %s", r.Status, r.Body)
	}
	// Granting it again changes nothing and says so: no event, and no
	// undo that could withdraw the grant that stands.
	changes := len(events(t, admin, "type="+standin.EventPolicyChanged))
	if r := admin.post("/api/v1/policies", grant); r.Status != http.StatusConflict || r.ErrorCode(t) != standin.EConflict {
		t.Fatalf("add an existing policy: %d %s", r.Status, r.Body)
	}
	if n := len(events(t, admin, "type="+standin.EventPolicyChanged)); n != changes {
		t.Fatalf("adding an existing policy wrote %d events", n-changes)
	}
	if r := ada.do(http.MethodGet, "/api/v1/profile", nil); r.Status != http.StatusOK {
		t.Fatalf("profile after the grant was added again: %d %s", r.Status, r.Body)
	}
	if r := ada.post("/api/v1/policies", grant); r.Status != http.StatusForbidden {
		t.Fatalf("a user changes policy: %d", r.Status)
	}
	if r := admin.post("/api/v1/policies", map[string]string{"role": "wizard", "domain": "*", "object": "profile", "action": "read"}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown role accepted: %d %s", r.Status, r.Body)
	}
}

func TestProfile(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	ada := newClient(t, srv.URL)
	ada.mustLogin("ada@example.org")

	if r := ada.do(http.MethodPatch, "/api/v1/profile", map[string]string{"name": "Ada King"}, "X-CSRF-Token", ada.csrf); r.Status != http.StatusOK || r.JSON(t)["name"] != "Ada King" {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	if r := ada.do(http.MethodPatch, "/api/v1/profile", map[string]string{"name": "  "}, "X-CSRF-Token", ada.csrf); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("blank name: %d", r.Status)
	}
	if r := ada.post("/api/v1/profile/password", map[string]string{"current_password": "wrong", "new_password": "a-long-password"}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("wrong current password: %d %s", r.Status, r.Body)
	}
	if r := ada.post("/api/v1/profile/password", map[string]string{"current_password": "demo", "new_password": "short"}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("short password: %d", r.Status)
	}
	if r := ada.post("/api/v1/profile/password", map[string]string{"current_password": "demo", "new_password": "a-long-password"}); r.Status != http.StatusOK {
		t.Fatalf("change password: %d %s", r.Status, r.Body)
	}
	fresh := newClient(t, srv.URL)
	if r := fresh.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "ada@example.org", "password": "demo"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("old password still works: %d", r.Status)
	}
	if r := fresh.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "ada@example.org", "password": "a-long-password"}); r.Status != http.StatusOK {
		t.Fatalf("new password: %d", r.Status)
	}
}
