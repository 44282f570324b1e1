package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"standin/server"
	"standin/server/embeddeddb"
	"standin/server/standin"
)

// silent drops the logs of tests that make the database fail on purpose.
var silent = slog.New(slog.DiscardHandler)

// TestDatabaseDown runs the server on an external database (through
// MONGODB_URI, as with a real MongoDB), stops that database, and checks that
// requests fail with 503 and a code instead of hanging or leaking internals,
// and that the server still shuts down cleanly.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	edb, err := embeddeddb.Start(ctx, t.TempDir(), "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer edb.Close()

	srv := mustRun(t, server.Config{MongoURI: edb.URI(), Demo: server.DemoOn, Logger: silent})
	base := srv.URL

	c := newClient(t, base)
	c.mustLogin("ada@example.org")
	if r := c.do(http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz with the database up: %d", r.Status)
	}

	edb.Close()

	if r := c.do(http.MethodGet, "/readyz", nil); r.Status != http.StatusServiceUnavailable || r.ErrorCode(t) != standin.EUnavailable {
		t.Fatalf("readyz with the database down: %d %s", r.Status, r.Body)
	}
	if r := c.do(http.MethodGet, "/api/v1/session", nil); r.Status != http.StatusServiceUnavailable || r.ErrorCode(t) != standin.EUnavailable {
		t.Fatalf("session with the database down: %d %s", r.Status, r.Body)
	}
	if r := c.do(http.MethodGet, "/healthz", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz is about the process, not the database: %d", r.Status)
	}

	// Stop checks that Run returns cleanly, within its bound, with the
	// database still down.
	srv.Stop(t)
}

// TestDatabaseFailureDuringBooking stops the database under a booking
// request: the request fails with 503, and once the database is back
// neither the booking nor its audit event exists.
func TestDatabaseFailureDuringBooking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	edb, err := embeddeddb.Start(ctx, dir, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(edb.URI(), "mongodb://"), "/")

	srv := mustRun(t, server.Config{MongoURI: edb.URI(), Demo: server.DemoOn, Logger: silent})
	base := srv.URL
	defer srv.Stop(t)

	ada, owner := newClient(t, base), newClient(t, base)
	ada.mustLogin("ada@example.org")
	owner.mustLogin("owner@example.org")
	ids := mustDemoIDs(t, ada)

	edb.Close()
	r := ada.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1))
	if r.Status != http.StatusServiceUnavailable || r.ErrorCode(t) != standin.EUnavailable {
		t.Fatalf("booking with the database down: %d %s", r.Status, r.Body)
	}

	edb, err = embeddeddb.Start(ctx, dir, addr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("restart the database on %s: %v", addr, err)
	}
	defer edb.Close()
	restarted := time.Now()
	// The server reconnects by itself.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := ada.do(http.MethodGet, "/api/v1/bookings", nil)
		if r.Status == http.StatusOK {
			if got := items(t, r); len(got) != 0 {
				t.Fatalf("a booking exists after the failed request: %v", got)
			}
			t.Logf("result: answering again after the database returned=%v", time.Since(restarted).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not recover: %d %s", r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if evs := events(t, owner, "type="+standin.EventBookingCreated); len(evs) != 0 {
		t.Fatalf("a booking event exists after the failed request: %v", evs)
	}
	// And the service works again.
	if r := ada.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1)); r.Status != http.StatusCreated {
		t.Fatalf("booking after recovery: %d %s", r.Status, r.Body)
	}
}

// TestDatabaseOutageUnderLoad stops the database while users book and an
// admin impersonates, keeps the load going against the outage, and brings
// the database back: the server recovers by itself, and nothing was done
// without its event or recorded without being done.
func TestDatabaseOutageUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	edb, err := embeddeddb.Start(ctx, dir, "", silent)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(edb.URI(), "mongodb://"), "/")
	// The server's errors are shown if the test fails: a 500 names its cause.
	srv := mustRun(t, server.Config{MongoURI: edb.URI(), Demo: server.DemoOn,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))})

	l := startLoad(t, srv.URL)
	l.waitFor(t, 10, 2)
	stopped := time.Now()
	edb.Close()
	// Requests wait out a short blip (server selection takes up to 5s);
	// the database stays away until they fail with 503.
	for deadline := time.Now().Add(30 * time.Second); l.unavailable.Load() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no request failed with 503 while the database was down")
		}
	}
	t.Logf("result: first 503 after the database stopped=%v", time.Since(stopped).Round(time.Millisecond))
	edb, err = embeddeddb.Start(ctx, dir, addr, silent)
	if err != nil {
		t.Fatalf("restart the database on %s: %v", addr, err)
	}
	defer edb.Close()
	restarted := time.Now()
	t.Logf("result: database away for=%v", restarted.Sub(stopped).Round(time.Millisecond))
	l.waitFor(t, 10, 2) // it works again without help
	l.halt()
	t.Logf("result: requests answered 503=%d", l.unavailable.Load())
	t.Logf("result: first acknowledgment after the database returned=%v", l.firstAckAfter(restarted))
	t.Logf("result: bookings acknowledged=%d", len(l.bookings))
	t.Logf("result: impersonation starts acknowledged=%d", len(l.imps))
	checkDurable(t, srv.URL, l)
}
