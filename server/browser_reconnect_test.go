package server_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"standin/server"
)

// TestBrowserReconnects restarts the server under an open Activity panel:
// the connection state says so, comes back live without a reload or a
// sign-in, and an event logged while the panel was away arrives (the feed
// resumes from the last seq it saw).
func TestBrowserReconnects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := mustStart(t, dir)
	admin := newPerson(t, "admin-reconnect")
	admin.signIn(srv.URL, "admin@example.org")
	admin.do("open the Activity panel",
		chromedp.Click(chromedp.ID("nav-activity")),
		chromedp.WaitVisible(chromedp.ID("feed-scroll")),
	)
	admin.waitText("the feed shows the sign-in", `#activity-feed [data-type="auth.login"]`, "Adrian Admin signed in")

	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Stop(t)
	admin.do("the connection state shows the drop", chromedp.WaitVisible(chromedp.CSS(`#conn-status:not([data-state="live"])`)))
	if s := admin.text("#conn-status"); !strings.Contains(s, "Reconnecting") && !strings.Contains(s, "Offline") {
		t.Fatalf("connection state reads %q, want reconnecting or offline", s)
	}

	again := mustRun(t, server.Config{DataDir: dir, Addr: addr})
	// Ben signs in at once: the panel may still be reconnecting.
	newClient(t, again.URL).mustLogin("ben@example.org")

	admin.do("the connection is live again", chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
	admin.waitText("the event logged meanwhile arrives", `#activity-feed [data-type="auth.login"]`, "Ben Okafor signed in")
	admin.noLoginPage("after the restart")
	if n := eval[int](admin, "count the admin's sign-ins", `document.querySelectorAll('#activity-feed [data-type="auth.login"]').length`); n != 2 {
		t.Fatalf("the feed shows %d sign-ins, want 2 (no event missed or doubled)", n)
	}
}
