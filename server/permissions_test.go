package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestPermissionsFollowPolicies: GET /api/v1/permissions answers what the
// effective user may do, from the policies in force, so the console
// follows a change of policy without knowing role names.
func TestPermissionsFollowPolicies(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	admin, support := newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")

	perms := func(c *client) map[string]any {
		t.Helper()
		r := c.do(http.MethodGet, "/api/v1/permissions", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("permissions: %d %s", r.Status, r.Body)
		}
		return r.JSON(t)
	}
	expect := func(who string, got map[string]any, want map[string]any) {
		t.Helper()
		for k, v := range want {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want %v (all: %v)", who, k, got[k], v, got)
			}
		}
	}

	expect("support", perms(support), map[string]any{"directory": true, "impersonate": true,
		"check_access": true, "suspend": false, "activity": "none", "revoke": "none", "policies": false})
	expect("admin", perms(admin), map[string]any{"directory": true, "impersonate": true, "suspend": true,
		"activity": "all", "revoke": "all", "policies": true, "edit_policies": true})

	// Granting support the activity log shows in their permissions at once.
	grant := map[string]string{"role": "role:support", "domain": "*", "object": "activity", "action": "list"}
	if r := admin.post("/api/v1/policies", grant); r.Status != http.StatusCreated {
		t.Fatalf("add policy: %d %s", r.Status, r.Body)
	}
	expect("support after the grant", perms(support), map[string]any{"activity": "all"})

	// Acting as Ben, the agent has Ben's permissions and nothing more.
	if r := startImpersonation(support, userID(t, support, "ben@example.org"), "Ben cannot book the confocal"); r.Status != http.StatusCreated {
		t.Fatalf("impersonate: %d %s", r.Status, r.Body)
	}
	expect("support as Ben", perms(support), map[string]any{"directory": false, "impersonate": false,
		"check_access": false, "activity": "none", "revoke": "none", "policies": false})

	anonymous := newClient(t, srv.URL)
	if r := anonymous.do(http.MethodGet, "/api/v1/permissions", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("permissions without a session: %d %s", r.Status, r.Body)
	}
}
