package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBrowserConsoleFollowsPolicies: the console shows the pages and
// actions the policies in force allow, whatever the person's role is
// called. A support agent given the activity log sees the Activity page;
// one whose right to impersonate is withdrawn no longer sees Impersonate.
func TestBrowserConsoleFollowsPolicies(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	admin := newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	support := newPerson(t, "support")

	support.signIn(srv.URL, "support@example.org")
	support.do("the agent lands on the directory", chromedp.WaitVisible(chromedp.ID("user-search")))
	if n := eval[int](support, "look for the Activity page", `document.querySelectorAll('#nav-activity').length`); n != 0 {
		t.Fatal("support sees the Activity page without the right to read the log")
	}

	activity := map[string]string{"role": "role:support", "domain": "*", "object": "activity", "action": "list"}
	if r := admin.post("/api/v1/policies", activity); r.Status != http.StatusCreated {
		t.Fatalf("grant activity: %d %s", r.Status, r.Body)
	}
	impersonate := map[string]string{"role": "role:support", "domain": "*", "object": "impersonation", "action": "start"}
	if r := admin.do(http.MethodDelete, "/api/v1/policies", impersonate, "X-CSRF-Token", admin.csrf); r.Status != http.StatusOK {
		t.Fatalf("withdraw impersonation: %d %s", r.Status, r.Body)
	}

	support.do("reload the console", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
	support.do("open the Activity page the new policy grants",
		chromedp.WaitVisible(chromedp.ID("nav-activity")),
		chromedp.Click(chromedp.ID("nav-activity")),
		chromedp.WaitVisible(chromedp.ID("feed-scroll")))
	support.waitText("the page says the whole log is in scope", "main .page-header__subtitle", "All activity in the facility.")

	// The directory by its address: the navigation may be drawn again
	// while the console takes in the new policies.
	eval[bool](support, "open the directory", `(() => { location.hash = '#/users'; return true; })()`)
	support.do("the directory opens", chromedp.WaitVisible(chromedp.ID("user-search")))
	support.waitText("the directory lists Ben", "#user-results", "Ben Okafor")
	support.do("open the User Action Menu",
		chromedp.Click(chromedp.CSS(`#user-results [data-action="user-actions"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="check-access"]`)))
	if n := eval[int](support, "look for Impersonate", `document.querySelectorAll('[data-menu-item="impersonate"]').length`); n != 0 {
		t.Fatal("the menu offers Impersonate after the right to impersonate was withdrawn")
	}
}

// TestBrowserPermissionsUnavailable: when the console cannot learn what
// the person may do, it says so and offers to try again, instead of
// showing the pages of someone with no rights; trying again once the
// server answers opens the console.
func TestBrowserPermissionsUnavailable(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	support := newPerson(t, "support")
	support.do("refuse the permissions request", blockURLs("*://*:*/api/v1/permissions"))

	support.signIn(srv.URL+"/#/users", "support@example.org")
	support.waitText("the page says the console could not load", "#content", "could not find out what you may do")
	if n := eval[int](support, "look for the pages", `document.querySelectorAll('#main-nav a').length`); n != 0 {
		t.Fatalf("the console offers %d pages before it knows what the person may do", n)
	}
	if hash := eval[string](support, "read the address", `location.hash`); hash != "#/users" {
		t.Fatalf("the address changed to %q; the page asked for is lost", hash)
	}

	support.do("let the permissions through", blockURLs())
	support.clickText("try again", "#content button", "Try again")
	support.do("the directory opens", chromedp.WaitVisible(chromedp.ID("user-search")))
	support.waitText("the Users page is offered", "#main-nav", "Users")
}

// blockURLs makes the browser fail every request matching one of the
// patterns (URLPattern syntax), as a network fault would; none lets all
// through again.
func blockURLs(patterns ...string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		blocked := make([]*network.BlockPattern, 0, len(patterns))
		for _, p := range patterns {
			blocked = append(blocked, &network.BlockPattern{URLPattern: p, Block: true})
		}
		_, err := cdp.Call(ctx, t, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: blocked})
		return chromedp.Void{}, err
	}
}
