//go:build linux

package server_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// openFiles counts the file descriptors process pid holds.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestSocketsLeaveFilesForHTTP runs the server in a child process and
// lowers its file descriptor limit (prlimit) to a few hundred, then opens
// live connections, a few dozen per session as tabs would, until the
// server refuses one. It refuses with 503 before sockets take the
// descriptors HTTP and the database need: health checks, sign-in and the
// API keep answering with the sockets at the limit.
func TestSocketsLeaveFilesForHTTP(t *testing.T) {
	t.Parallel()
	srv := spawn(t, t.TempDir())
	if srv.URL == "" {
		t.Fatalf("the server process exited: %v", srv.err)
	}
	pid := srv.cmd.Process.Pid
	idle := openFiles(t, pid)
	// Sockets may take half the limit (the reserve is 1024, or half when
	// that is less): twice what the server holds idle leaves the other
	// half ample room.
	limit := max(256, 2*idle+64)
	srv.setLimit(t, syscall.RLIMIT_NOFILE, uint64(limit))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emails := []string{"ada@example.org", "ben@example.org", "cleo@example.org", "support@example.org",
		"manager@example.org", "admin@example.org", "owner@example.org"}
	const perSession = 30 // within the default caps of 32 a session and 128 a person
	var (
		sessions []*client
		opened   int
		refusal  *http.Response
	)
	for attempt := 0; refusal == nil; attempt++ {
		if attempt > limit {
			t.Fatalf("%d sockets open and none refused, with a limit of %d file descriptors", opened, limit)
		}
		if opened%perSession == 0 && len(sessions) <= opened/perSession {
			c := newClient(t, srv.URL)
			c.mustLogin(emails[len(sessions)%len(emails)])
			sessions = append(sessions, c)
		}
		dialCtx, cancelDial := context.WithTimeout(ctx, 10*time.Second)
		conn, res, err := sessions[opened/perSession].dialWS(dialCtx)
		cancelDial()
		switch {
		case err == nil:
			t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
			opened++
		case res != nil && res.StatusCode == http.StatusServiceUnavailable:
			refusal = res
		default:
			t.Fatalf("socket %d failed without a refusal (%d file descriptors open, limit %d): %v",
				opened+1, openFiles(t, pid), limit, err)
		}
	}
	t.Logf("result: sockets open when the server refused one=%d", opened)
	t.Logf("result: file descriptors: idle=%d, limit=%d, at the refusal=%d", idle, limit, openFiles(t, pid))
	if opened < limit/4 {
		t.Fatalf("refused after %d sockets with a limit of %d file descriptors: the reserve is too large", opened, limit)
	}

	if r := sessions[0].do(http.MethodGet, "/healthz", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz with the sockets at the limit: %d %s", r.Status, r.Body)
	}
	if r := sessions[0].do(http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz with the sockets at the limit: %d %s", r.Status, r.Body)
	}
	// Several people at once: each sign-in and request is a connection.
	others := make([]*client, 10)
	for i := range others {
		others[i] = newClient(t, srv.URL)
		others[i].mustLogin(emails[i%len(emails)])
	}
	for _, c := range others {
		if r := c.do(http.MethodGet, "/api/v1/session", nil); r.Status != http.StatusOK {
			t.Fatalf("session with the sockets at the limit: %d %s", r.Status, r.Body)
		}
	}
	mustDemoIDs(t, sessions[0])
}
