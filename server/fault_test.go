package server_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"standin/server"
	"standin/server/embeddeddb"
	"standin/server/standin"
)

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

	runCtx, cancel := context.WithCancel(ctx)
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(runCtx, server.Config{
			Addr: "127.0.0.1:0", MongoURI: edb.URI(), Demo: server.DemoOn, PasswordCost: testCost,
			Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})),
			OnListen: func(a net.Addr) { addr <- a },
		})
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}

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

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop with its database down")
	}
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

	runCtx, cancel := context.WithCancel(ctx)
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(runCtx, server.Config{
			Addr: "127.0.0.1:0", MongoURI: edb.URI(), Demo: server.DemoOn, PasswordCost: testCost,
			Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})),
			OnListen: func(a net.Addr) { listening <- a },
		})
	}()
	var base string
	select {
	case a := <-listening:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}
	defer func() {
		cancel()
		<-done
	}()

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
	// The server reconnects by itself.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := ada.do(http.MethodGet, "/api/v1/bookings", nil)
		if r.Status == http.StatusOK {
			if got := items(t, r); len(got) != 0 {
				t.Fatalf("a booking exists after the failed request: %v", got)
			}
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
