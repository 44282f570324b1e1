//go:build linux

package server_test

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"standin/server/standin"
)

// TestStorageRefusesWrites makes the embedded database's files unwritable
// under a running server: every change fails with 503 unavailable and a
// sentence, /readyz answers 503 until writes succeed again (it does not
// stop at a ping, which a database that cannot write still answers), and
// once they do the server carries on by itself.
//
// The files are made unwritable by the server process's RLIMIT_FSIZE, set
// to 0 from outside with prlimit: every write(2) to a regular file then
// fails with EFBIG, whatever its offset, and SQLite reports "disk I/O
// error", as it does for a disk that fails. Permissions cannot do it: the
// tests run as root, and the server holds its files open already.
func TestStorageRefusesWrites(t *testing.T) {
	t.Parallel()
	srv := spawn(t, t.TempDir())
	if srv.URL == "" {
		t.Fatalf("the server process exited: %v", srv.err)
	}
	ada, admin := newClient(t, srv.URL), newClient(t, srv.URL)
	ada.mustLogin("ada@example.org")
	admin.mustLogin("admin@example.org")
	ids := mustDemoIDs(t, ada)
	if r := startImpersonation(admin, userID(t, admin, "cleo@example.org"), "writes refused"); r.Status != http.StatusCreated {
		t.Fatalf("start impersonation: %d %s", r.Status, r.Body)
	}
	owner := newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	if r := ada.do(http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz before: %d %s", r.Status, r.Body)
	}

	srv.setLimit(t, syscall.RLIMIT_FSIZE, 0)
	unavailable := func(what string, r *response) {
		t.Helper()
		if r.Status != http.StatusServiceUnavailable || r.ErrorCode(t) != standin.EUnavailable {
			t.Errorf("%s with unwritable storage: %d %s, want 503 unavailable", what, r.Status, r.Body)
		}
	}
	// The booking's first write is the booking itself (the stores).
	unavailable("a booking", ada.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1)))
	// Signing in writes the session first (the stores).
	unavailable("a sign-in", newClient(t, srv.URL).do(http.MethodPost, "/api/v1/auth/login",
		map[string]string{"email": "ben@example.org", "password": "demo"}))
	// A page viewed while impersonating writes only its audit event.
	unavailable("an audited view", admin.do(http.MethodGet, "/api/v1/resources", nil))
	// A new policy is written to the policy store first.
	unavailable("a policy change", owner.post("/api/v1/policies",
		map[string]string{"role": "role:user", "domain": "*", "object": "profile", "action": "export"}))
	if r := ada.do(http.MethodGet, "/healthz", nil); r.Status != http.StatusOK {
		t.Errorf("healthz is about the process: %d %s", r.Status, r.Body)
	}
	// /readyz keeps an answer for a second: it turns within that.
	refused := time.Now()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := ada.do(http.MethodGet, "/readyz", nil)
		if r.Status == http.StatusServiceUnavailable {
			unavailable("readyz", r)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz with unwritable storage: %d %s, want 503 unavailable", r.Status, r.Body)
		}
	}
	t.Logf("result: not ready after writes fail=%v", time.Since(refused).Round(time.Millisecond))
	// And it stays so while writes fail.
	time.Sleep(1500 * time.Millisecond)
	unavailable("readyz a moment later", ada.do(http.MethodGet, "/readyz", nil))

	srv.setLimit(t, syscall.RLIMIT_FSIZE, unlimited)
	recovered := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := ada.do(http.MethodGet, "/readyz", nil)
		if r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after writes work again: %d %s", r.Status, r.Body)
		}
	}
	t.Logf("result: ready again after writes work=%v", time.Since(recovered).Round(time.Millisecond))
	if got := items(t, ada.do(http.MethodGet, "/api/v1/bookings", nil)); len(got) != 0 {
		t.Fatalf("the refused booking exists: %v", got)
	}
	if r := ada.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1)); r.Status != http.StatusCreated {
		t.Fatalf("booking once writes work: %d %s", r.Status, r.Body)
	}
	newClient(t, srv.URL).mustLogin("ben@example.org")
}
