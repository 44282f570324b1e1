package server_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
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
