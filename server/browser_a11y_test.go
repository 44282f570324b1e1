package server_test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAccessibility runs axe-core (WCAG 2.1 A and AA) on every page
// of the console for an agent, a manager and a user, at desktop and phone
// widths, and on the states in between: the sign-in page, the impersonate
// dialog, the console while impersonating, and a console that could not
// load its permissions. Each must have no violation, and nothing on it may
// be wider than the window.
func TestBrowserAccessibility(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	pages := []string{"users", "activity", "book", "bookings", "notifications", "profile"}
	for _, width := range []struct {
		name string
		w, h int64
	}{{"desktop", 1366, 900}, {"phone", 390, 844}} {
		for _, who := range []string{"support", "manager", "ben"} {
			p := newPerson(t, who+"-"+width.name)
			p.do("set the window", chromedp.EmulateViewport(width.w, width.h), chromedp.Navigate(srv.URL),
				chromedp.WaitVisible(chromedp.ID("login-form")))
			p.checkPage("the sign-in page at " + width.name)
			p.signIn(srv.URL, who+"@example.org")
			p.navOffersPages()
			for _, page := range pages {
				if eval[int](p, "look for "+page, `document.querySelectorAll('#nav-`+page+`').length`) == 0 {
					continue
				}
				p.openPage(page) // through the menu button where the navigation folds
				p.waitNoText("the page has loaded", "#content", "Loading")
				p.checkPage(who + "'s " + page + " page at " + width.name)
			}
			if who != "support" {
				continue
			}
			p.openPage("users")
			p.do("open the directory", chromedp.WaitVisible(chromedp.ID("user-search")))
			p.waitText("the directory lists Ben", "#user-results", "Ben Okafor")
			p.do("find Ben", chromedp.SendKeys(chromedp.ID("user-search"), "ben"),
				chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
			p.do("open the impersonate dialog",
				chromedp.Click(chromedp.CSS(`#user-results [data-action="user-actions"]`)),
				chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="impersonate"]`)))
			p.checkPage("the User Action Menu at " + width.name)
			p.do("choose Impersonate", chromedp.Click(chromedp.CSS(`[data-menu-item="impersonate"]`)),
				chromedp.WaitVisible(chromedp.ID("imp-reason")))
			p.checkPage("the impersonate dialog at " + width.name)
			p.do("start", chromedp.SendKeys(chromedp.ID("imp-reason"), "Ben cannot book the confocal"),
				chromedp.Click(chromedp.ID("imp-submit")), chromedp.WaitVisible(chromedp.ID("impersonation-banner")))
			p.do("the facility app as Ben", chromedp.WaitVisible(chromedp.ID("resource-list")))
			p.waitText("Ben's resources are listed", "#resource-list", "Confocal")
			p.checkPage("the console while impersonating at " + width.name)
			p.do("end the impersonation", chromedp.Click(chromedp.ID("impersonation-exit")),
				chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
			p.waitText("the agent is back on Ben's page", "#user-name", "Ben Okafor")
			p.checkPage("the console back from impersonating at " + width.name)
		}
	}

	// A console that cannot learn what its person may do says so.
	p := newPerson(t, "support-unloaded")
	p.do("refuse the permissions request", blockURLs("*://*:*/api/v1/permissions"))
	p.signIn(srv.URL, "support@example.org")
	p.waitText("the page says the console could not load", "#content", "could not find out what you may do")
	p.checkPage("a console without its permissions")
}
