package server_test

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSupportPageShowsWhatBlocks: a support agent's page of a user
// says at the top what blocks them, from the user's overview. Sam opens
// Ben's page and sees the confocal refused for Confocal Basics, which is
// missing and which the confocal needs; Ada's page says nothing blocks her
// and lists her coming booking; a page whose overview cannot be read says
// so and loads on retry. After Sam impersonates Ben, is refused the
// confocal and exits, Sam is back on Ben's page, which now lists the
// refusal and the session; a session another agent runs on Ben is marked
// as running now. Every state passes axe-core and fits the
// window, at desktop and phone widths.
func TestBrowserSupportPageShowsWhatBlocks(t *testing.T) {
	t.Parallel()
	const reason = "Ben cannot book the confocal"
	for _, v := range viewports {
		srv := mustStart(t, "")
		staff := newClient(t, srv.URL)
		staff.mustLogin("support@example.org")
		ids := mustDemoIDs(t, staff)
		adaID := userID(t, staff, "ada@example.org")
		benID := userID(t, staff, "ben@example.org")
		ada := newClient(t, srv.URL)
		ada.mustLogin("ada@example.org")
		if r := ada.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1)); r.Status != http.StatusCreated {
			t.Fatalf("Ada books the confocal: %d %s", r.Status, r.Body)
		}

		sam := newPerson(t, "sam-"+v.name)
		sam.at(v)
		sam.signIn(srv.URL, "support@example.org")
		sam.openUser("Ben's page", benID, "Ben Okafor")
		sam.waitText("the section names Ben", "#blocks-heading", "What blocks Ben")
		sam.waitText("the confocal is refused", `#blocks-access [data-resource-id="`+ids.confocal+`"]`, "Confocal LSM 900")
		sam.waitText("the refusal names the training", `#blocks-access [data-resource-id="`+ids.confocal+`"]`, "Confocal Basics")
		sam.waitText("Confocal Basics is missing", `#blocks-trainings [data-state="missing"]`, "Confocal Basics")
		sam.waitText("the confocal needs it", `#blocks-trainings [data-state="missing"]`, "Needed for Confocal LSM 900")
		sam.waitText("no refusal yet", "#blocks-refusals", "No refusals recorded")
		sam.waitText("no session yet", "#blocks-sessions", "No support sessions")
		sam.waitText("no booking ahead", "#blocks-bookings", "No coming bookings")
		if n := eval[int](sam, "look for the log's card", `document.querySelectorAll('#recent-title').length`); n != 0 {
			t.Fatalf("support, who may not read the activity log, is shown its card on Ben's page")
		}
		sam.checkPage("Ben's page at " + v.name)

		sam.openUser("Ada's page", adaID, "Ada Lovelace")
		sam.waitText("nothing blocks Ada", "#blocks-access", "Nothing blocks Ada")
		sam.waitText("what Ada can book", "#blocks-access", "Can book: Confocal LSM 900")
		sam.waitText("no training in Ada's way", "#blocks-trainings", "No training in the way")
		sam.waitText("Ada's coming booking", "#blocks-bookings [data-booking-id]", "Confocal LSM 900")
		sam.checkPage("Ada's page at " + v.name)

		sam.do("refuse the overview", blockURLs("*://*:*/api/v1/users/*/overview"))
		sam.openUserAt(benID)
		sam.do("the page says it could not load", chromedp.WaitVisible(chromedp.CSS(`#user-load-error [role="alert"]`)))
		sam.checkPage("a user's page that could not load at " + v.name)
		sam.do("let the overview through", blockURLs())
		sam.clickText("try again", "#user-load-error button", "Try again")
		sam.waitText("Ben's page loads", "#blocks-heading", "What blocks Ben")

		sam.impersonate("from Ben's page", `main [data-action="user-actions"]`, reason)
		sam.do("the facility app as Ben", chromedp.WaitVisible(chromedp.ID("resource-list")))
		sam.waitText("Ben's instruments are listed", "#resource-list .resource", "Confocal")
		eval[bool](sam, "pick the confocal", `(() => {
			const card = [...document.querySelectorAll('#resource-list .resource')].find((e) => e.textContent.includes('Confocal'));
			card.querySelector('[data-book]').click();
			return document.getElementById('booking-resource').selectedOptions[0].textContent.includes('Confocal');
		})()`)
		sam.do("book", chromedp.Click(chromedp.ID("booking-submit")))
		sam.waitText("the denial names the missing training", "#booking-error", "Confocal Basics")
		sam.do("exit",
			chromedp.Click(chromedp.ID("impersonation-exit")),
			chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")),
		)
		sam.waitText("Sam is back on Ben's page", "#user-name", "Ben Okafor")
		sam.waitText("the refusal is listed, naming the instrument", `#blocks-refusals [data-type="action.denied"]`, "tried to book Confocal LSM 900 for")
		sam.waitText("the session is listed with its reason", `#blocks-sessions [data-type="impersonation.started"]`, reason)
		sam.waitNoText("Sam's session has ended", "#blocks-sessions", "running now")
		sam.checkPage("Ben's page after a session at " + v.name)

		// Another agent acts as Ben: his page says the session runs now.
		admin := newClient(t, srv.URL)
		admin.mustLogin("admin@example.org")
		if r := admin.post("/api/v1/impersonations", map[string]string{"user_id": benID, "reason": "Second look"}); r.Status != http.StatusCreated {
			t.Fatalf("the admin impersonates Ben: %d %s", r.Status, r.Body)
		}
		sam.openUser("Ada's page again", adaID, "Ada Lovelace")
		sam.openUser("Ben's page again", benID, "Ben Okafor")
		sam.waitText("the admin's session runs now", `#blocks-sessions [data-type="impersonation.started"]`, "Second look")
		sam.waitText("it is marked as running", `#blocks-sessions [data-running="true"]`, "running now")
		sam.checkPage("Ben's page while he is impersonated at " + v.name)
		sam.shot("support-user-" + v.name)
	}
}

// openUser opens the page of user id, named name, and waits for its
// heading.
func (p *person) openUser(step, id, name string) {
	p.t.Helper()
	p.openUserAt(id)
	p.waitText(step+" shows the name", "#user-name", name)
}

// openUserAt moves the console to the page of user id, as a link does.
func (p *person) openUserAt(id string) {
	p.t.Helper()
	eval[bool](p, "open the page of "+id, `(() => { location.hash = '#/users/`+id+`'; return true; })()`)
	p.do("the user's page is shown", chromedp.WaitVisible(chromedp.CSS(`#content[data-page="user"]`)))
	p.waitNoText("the page has loaded", "#content", "Loading the user")
}
