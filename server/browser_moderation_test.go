package server_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserModeratedSession: the moderated mode end to end, with the
// agent, the target and the moderator as separate people in separate
// browsers. Sam's session on Ben starts paused: his banner says so and his
// pages say why they are refused. Maya, who leads Ben's project, opens the
// session from the Activity panel's list: while her page is open and live
// the session runs, Sam's banner names her, and she sees what Sam does as
// he does it. She stops moderating: Sam's session pauses at once. She comes
// back and ends it. Every state is checked with axe, at the phone's width
// and the desktop's.
func TestBrowserModeratedSession(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	api := newClient(t, srv.URL)
	api.mustLogin("admin@example.org")
	mustModes(t, api, map[string]any{"scope": "role:user", "mode": "moderated"})

	ben := newPerson(t, "moderated-ben")
	ben.at(viewports[1])
	ben.signIn(srv.URL, "ben@example.org")

	maya := newPerson(t, "moderated-maya")
	maya.signIn(srv.URL, "manager@example.org")
	maya.openPage("activity")

	sam := newPerson(t, "moderated-sam")
	sam.signIn(srv.URL, "support@example.org")
	sam.openPage("users")
	sam.do("search for Ben", chromedp.SendKeys(chromedp.ID("user-search"), "ben"))
	sam.do("the list shows Ben alone", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
	sam.dismissToasts()
	started := time.Now()
	sam.impersonate("in a moderated session", `#user-results[data-query="ben"] [data-action="user-actions"]`, "Ben's bookings vanish")

	// Paused until a moderator comes.
	sam.do("the banner says the session waits for a moderator",
		chromedp.WaitVisible(chromedp.CSS(`#impersonation-banner[data-moderation="paused"] #banner-moderation`)))
	sam.waitText("in words", "#banner-moderation", "no moderator is watching")
	sam.do("the page says why it is refused", chromedp.WaitVisible(chromedp.CSS(`#content .error-block, #content [role="alert"]`)))
	sam.waitText("in words", "#content", "This session is paused")
	sam.checkPage("a paused session")
	sam.shot("moderated-paused")
	ben.do("Ben's console tells him support is on his account", chromedp.WaitVisible(chromedp.ID("subject-banner")))
	ben.checkPage("Ben during a moderated session")

	// Maya moderates from the Activity panel.
	maya.do("the session shows, paused, with Moderate",
		chromedp.WaitVisible(chromedp.CSS(`#content [data-moderation="paused"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#content a[data-moderate]`)))
	maya.checkPage("Maya's Activity with a session waiting for her")
	maya.press("open it", `#content a[data-moderate]`)
	maya.do("the moderator's page opens", chromedp.WaitVisible(chromedp.CSS(`#content[data-page="moderate"]`)))
	maya.do("she moderates", chromedp.WaitVisible(chromedp.CSS(`#moderation-state[data-state="running"]`)))
	maya.waitText("the page names the agent and the user", "#moderation-title", "Moderating Sam Support acting as Ben Okafor")
	if shown := eval[bool](maya, "look for the banner of sessions on Maya's account", `!document.getElementById('subject-banner').hidden`); shown {
		maya.failShot()
		t.Fatal("Maya's console says support is using her account: Sam acts as Ben")
	}
	sam.do("the banner names the moderator", chromedp.WaitVisible(chromedp.CSS(`#impersonation-banner[data-moderation="running"]`)))
	sam.waitText("in words", "#banner-moderation", "Moderated by Maya Manager")
	t.Logf("moderated: the agent clicks 3 times, the moderator twice (Moderate on the Activity panel, or the notification's link); %.1f s from the start to a running session here",
		time.Since(started).Seconds())
	sam.checkPage("a moderated session running")
	sam.shot("moderated-running")

	// What Sam does shows on Maya's page as he does it.
	sam.openPage("bookings")
	sam.waitNoText("the bookings load", "#content", "This session is paused")
	maya.do("Sam's page views reach Maya live", chromedp.WaitVisible(chromedp.CSS(`#moderation-feed li[data-type="action.allowed"]`)))
	maya.checkPage("the moderator's view")
	maya.shot("moderator-view")
	maya.at(viewports[1])
	maya.checkPage("the moderator's view at a phone's width")
	maya.at(viewports[0])

	// She stops: the session pauses at once.
	left := time.Now()
	maya.press("stop moderating", "#moderation-leave")
	maya.do("back on Activity", chromedp.WaitVisible(chromedp.CSS(`#content[data-page="activity"]`)))
	sam.do("Sam's banner says paused", chromedp.WaitVisible(chromedp.CSS(`#impersonation-banner[data-moderation="paused"]`)))
	t.Logf("moderated: %.1f s from the moderator leaving to the agent's banner saying paused", time.Since(left).Seconds())
	sam.openPage("book")
	sam.waitText("the agent's pages are refused again", "#content", "This session is paused")

	// She comes back and ends it.
	maya.do("the session shows paused", chromedp.WaitVisible(chromedp.CSS(`#content [data-moderation="paused"]`)))
	maya.press("open it again", `#content a[data-moderate]`)
	maya.do("she moderates again", chromedp.WaitVisible(chromedp.CSS(`#moderation-state[data-state="running"]`)))
	sam.do("running again", chromedp.WaitVisible(chromedp.CSS(`#impersonation-banner[data-moderation="running"]`)))
	maya.press("end the session", "#moderation-end")
	maya.do("the page says it ended", chromedp.WaitVisible(chromedp.CSS(`#moderation-state[data-state="ended"]`)))
	maya.checkPage("the moderator's view of an ended session")
	sam.do("the agent's session ends", chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
	sam.waitText("the agent is back as himself", "#whoami", "Sam Support")

	paused := events(t, api, "type=impersonation.paused")
	resumed := events(t, api, "type=impersonation.resumed")
	if len(resumed) != 2 || len(paused) != 1 {
		t.Fatalf("moderation events: %d resumed, %d paused, want 2 and 1", len(resumed), len(paused))
	}
}
