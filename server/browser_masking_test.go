package server_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"standin/server"
)

// TestBrowserMaskedFields: Ben sees his safety record; the agent acting as
// him sees it hidden, is asked why before one field shows, and the
// manager's Activity panel shows the reveal live; Ben's summary of the
// session tells him. Each state checked with axe, on a phone and a desktop.
func TestBrowserMaskedFields(t *testing.T) {
	t.Parallel()
	srv := mustRun(t, server.Config{DataDir: t.TempDir()})

	ben := newPerson(t, "mask-ben")
	ben.at(viewports[1])
	ben.signIn(srv.URL, "ben@example.org")
	ben.openPage("profile")
	ben.waitText("Ben sees his own phone number", "#personal-phone", "+44 20 7946 0742")
	ben.checkPage("Ben's safety record")

	manager := newPerson(t, "mask-manager")
	manager.signIn(srv.URL, "manager@example.org")
	manager.openPage("activity")
	manager.do("the feed shows", chromedp.WaitVisible(chromedp.ID("feed-scroll")))

	admin := newPerson(t, "mask-admin")
	admin.actAsBen(srv.URL, "Ben's safety training record")
	// As Ben, the console settles on his first page before another is
	// opened from the navigation.
	admin.do("the console shows Ben's first page", chromedp.WaitVisible(chromedp.CSS(`#content[data-page="book"]`)))
	admin.openPage("profile")
	admin.do("the phone number is hidden", chromedp.WaitVisible(chromedp.CSS(`#personal-phone[data-masked="true"] #reveal-phone`)))
	admin.waitNoText("no number shows", "#personal", "7946")
	admin.checkPage("a masked safety record")
	admin.do("ask to reveal it", chromedp.Click(chromedp.ID("reveal-phone")), chromedp.WaitVisible(chromedp.ID("reveal-reason")))
	admin.do("reveal without a reason", chromedp.Click(chromedp.ID("reveal-submit")))
	admin.waitText("a reason is asked for", ".dialog .field__error", "Give the reason")
	admin.checkPage("the reveal dialog asking for a reason")
	admin.do("give the reason and reveal", chromedp.SendKeys(chromedp.ID("reveal-reason"), "Calling Ben about his booking"),
		chromedp.Click(chromedp.ID("reveal-submit")), chromedp.WaitNotPresent(chromedp.ID("reveal-reason")))
	admin.waitText("the number shows", "#personal-phone", "+44 20 7946 0742")
	admin.waitText("the others stay hidden", "#personal-date_of_birth", "Hidden")
	admin.checkPage("one field revealed")
	admin.shot("reveal")

	manager.waitText("the manager sees the reveal live", "#feed-scroll", "revealed Ben Okafor’s phone number. Reason: Calling Ben about his booking")
	manager.waitNoText("never the number", "#feed-scroll", "7946")

	admin.do("exit", chromedp.Click(chromedp.ID("impersonation-exit")), chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
	ben.openPage("notifications")
	ben.clickText("open the session's summary", "#inbox a", "See what was done")
	ben.waitText("the summary tells Ben of the reveal", "#session-changes", "Looked at your phone number — reason: Calling Ben about his booking")
	ben.checkPage("the summary with a reveal")
}
