package server_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
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
