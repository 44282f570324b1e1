package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server"
)

// TestBrowserActivityFiltersInAddress: the Activity panel's filters are
// kept in the address, so a reload (or the link, sent to a colleague)
// opens the same filtered view; clearing them clears the address too.
func TestBrowserActivityFiltersInAddress(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	newClient(t, srv.URL).mustLogin("ben@example.org")
	admin := newPerson(t, "admin-filters")
	admin.signIn(srv.URL, "admin@example.org")
	admin.do("open the Activity panel",
		chromedp.Click(chromedp.ID("nav-activity")),
		chromedp.WaitVisible(chromedp.ID("feed-scroll")),
	)
	admin.waitText("the feed shows Ben's sign-in", `#activity-feed [data-type="auth.login"]`, "Ben Okafor signed in")

	const since = "2020-01-02T03:04"
	eval[bool](admin, "filter to sign-ins since a date", `(() => {
		document.querySelector('#activity-filters').closest('details').open = true;
		const since = document.getElementById('f-since');
		since.value = '`+since+`';
		since.dispatchEvent(new Event('change'));
		const type = document.getElementById('f-type');
		type.value = 'auth.login';
		type.dispatchEvent(new Event('change'));
		return true;
	})()`)
	hash := eval[string](admin, "read the address", `location.hash`)
	if !strings.Contains(hash, "type=auth.login") || !strings.Contains(hash, "since=2020-01-02T03%3A04") {
		t.Fatalf("the address after filtering is %q", hash)
	}

	admin.do("reload the page", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("feed-scroll")))
	admin.waitText("the feed shows the sign-ins again", `#activity-feed [data-type="auth.login"]`, "Ben Okafor signed in")
	if got := eval[string](admin, "read the type filter", `document.getElementById('f-type').value`); got != "auth.login" {
		t.Fatalf("after a reload the type filter reads %q", got)
	}
	if got := eval[string](admin, "read the since filter", `document.getElementById('f-since').value`); got != since {
		t.Fatalf("after a reload the since filter reads %q", got)
	}
	if other := eval[int](admin, "count other types", `document.querySelectorAll('#activity-feed [data-type]:not([data-type="auth.login"])').length`); other != 0 {
		t.Fatalf("the filtered feed shows %d events of other types", other)
	}

	admin.do("clear the filters", chromedp.Click(chromedp.ID("f-clear")))
	if hash := eval[string](admin, "read the address", `location.hash`); hash != "#/activity" {
		t.Fatalf("the address after clearing is %q", hash)
	}
	admin.noLoginPage("after the reload")
}

// TestBrowserActivityChainAndExport: the Activity panel says in words
// whether the log can be trusted, and an export that fails says so
// instead of saving a part of the log as if it were the whole.
func TestBrowserActivityChainAndExport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A log in the one collection, whose walks an event written again
	// out of order breaks.
	oneCollectionLog(t, dir)
	srv := mustStart(t, dir)
	ada := newClient(t, srv.URL)
	for range 40 {
		ada.mustLogin("ada@example.org")
	}
	admin := newPerson(t, "admin-chain")
	admin.signIn(srv.URL, "admin@example.org")
	admin.do("open the Activity panel",
		chromedp.Click(chromedp.ID("nav-activity")),
		chromedp.WaitVisible(chromedp.ID("feed-scroll")),
	)
	admin.waitText("the chain is verified", "#chain-status", "Chain verified")
	admin.do("export as JSON Lines", chromedp.Click(chromedp.ID("export-jsonl")))
	admin.waitText("the export is done", "#export-status", "as standin-activity.jsonl")

	// The newest events are removed while the server is stopped.
	addr := strings.TrimPrefix(srv.URL, "http://")
	restart := func(tamper func(c *mongo.Collection, all []storedEvent)) {
		srv.Stop(t)
		withDatabase(t, dir, tamper)
		srv = mustRun(t, server.Config{DataDir: dir, Addr: addr})
	}
	restart(func(c *mongo.Collection, all []storedEvent) {
		_, err := c.DeleteMany(context.Background(), bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: all[len(all)-3].Seq}}}})
		mustDo(t, err)
	})
	admin.do("reload the panel", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("feed-scroll")))
	admin.waitText("the panel says events were removed", `#chain-status[data-state="broken"]`, "Events were removed")
	admin.waitText("and which", "#chain-status .chain__detail", "missing")

	// An event deleted and written again breaks the walk an export makes.
	restart(func(c *mongo.Collection, all []storedEvent) {
		_, err := c.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: all[2].Seq}})
		mustDo(t, err)
		_, err = c.InsertOne(context.Background(), all[2])
		mustDo(t, err)
	})
	admin.do("reload the panel", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("feed-scroll")))
	admin.do("export as CSV", chromedp.Click(chromedp.ID("export-csv")))
	admin.waitText("the panel says the export failed", `#export-status[data-state="error"]`, "The export failed")
	admin.noLoginPage("after the restarts")
}
