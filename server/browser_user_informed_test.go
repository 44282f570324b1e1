package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"standin/server"
)

// viewport is a window size every state of these tests is checked at.
type viewport struct {
	name string
	w, h int64
}

var viewports = []viewport{{"desktop", 1366, 900}, {"phone", 390, 844}}

// at sets the window of p to v; call it before the first page loads.
func (p *person) at(v viewport) {
	p.t.Helper()
	p.do("set the window to "+v.name, chromedp.EmulateViewport(v.w, v.h))
}

// checkPage runs axe-core on the page and checks that nothing on it is
// wider than the window.
func (p *person) checkPage(state string) {
	p.t.Helper()
	p.axe(state)
	wider := eval[string](p, "measure "+state, `(() => {
		if (document.documentElement.scrollWidth <= window.innerWidth) return '';
		const widest = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > window.innerWidth);
		return document.documentElement.scrollWidth + ' px in ' + window.innerWidth + ': ' +
			(widest.slice(-3).map((el) => el.tagName + '#' + el.id + '.' + el.className).join(', ') || 'no element');
	})()`)
	if wider != "" {
		p.failShot()
		p.t.Fatalf("%s: %s is wider than the window: %s", p.name, state, wider)
	}
}

// openPage opens a page from the navigation, through the menu button
// when the navigation is folded into it.
func (p *person) openPage(page string) {
	p.t.Helper()
	folded := eval[bool](p, "is the navigation folded", `getComputedStyle(document.getElementById('nav-toggle')).display !== 'none'`)
	if folded {
		p.do("open the menu", chromedp.Click(chromedp.ID("nav-toggle")), chromedp.WaitVisible(chromedp.ID("nav-"+page)))
		if got := eval[string](p, "read the menu button", `document.getElementById('nav-toggle').getAttribute('aria-expanded')`); got != "true" {
			p.t.Fatalf("%s: the open menu's button says aria-expanded=%q", p.name, got)
		}
	}
	p.do("open "+page, chromedp.Click(chromedp.ID("nav-"+page)),
		chromedp.WaitVisible(chromedp.CSS(`#content[data-page="`+page+`"]`)))
	if folded {
		p.do("the menu folds again", chromedp.WaitNotVisible(chromedp.ID("nav-"+page)))
	}
}

// navOffersPages waits until the navigation shows links to pages,
// opening the menu button to see them where the navigation folds (and
// closing it again).
func (p *person) navOffersPages() {
	p.t.Helper()
	p.do("the console has its pages", chromedp.WaitReady(chromedp.CSS("#main-nav a")))
	if !eval[bool](p, "is the navigation folded", `getComputedStyle(document.getElementById('nav-toggle')).display !== 'none'`) {
		p.do("the console offers its pages", chromedp.WaitVisible(chromedp.CSS("#main-nav a")))
		return
	}
	p.do("the menu offers the pages", chromedp.Click(chromedp.ID("nav-toggle")), chromedp.WaitVisible(chromedp.CSS("#main-nav a")),
		chromedp.Click(chromedp.ID("nav-toggle")), chromedp.WaitNotVisible(chromedp.CSS("#main-nav a")))
}

// toastsClearOfHeading fails when more than two toasts show, or one lies
// over the page's main heading.
func (p *person) toastsClearOfHeading(state string) {
	p.t.Helper()
	problem := eval[string](p, "look at the toasts "+state, `(() => {
		const shown = [...document.querySelectorAll('#toasts .toast:not(.is-leaving)')];
		if (shown.length > 2) return shown.length + ' toasts show at once';
		const h1 = document.querySelector('#content h1');
		if (!h1) return '';
		const a = h1.getBoundingClientRect();
		const over = shown.find((t) => {
			const b = t.getBoundingClientRect();
			return b.left < a.right && a.left < b.right && b.top < a.bottom && a.top < b.bottom;
		});
		return over ? 'a toast lies over the heading: ' + over.textContent : '';
	})()`)
	if problem != "" {
		p.failShot()
		p.t.Fatalf("%s: %s: %s", p.name, state, problem)
	}
}

// TestBrowserUserSeesSessionAndSummary: the person whose account support
// uses sees it while it runs (who with their address, why, until when in
// the facility's time zone, counting down), on every page and after a
// reload, appearing and going live; once it ends, the notification's toast
// and the notification list open the summary of what was done in their
// name: the booking made and the booking refused, in words. Toasts never
// pile up: two at most, the others wait.
func TestBrowserUserSeesSessionAndSummary(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	srv := mustStartFacility(t, func(c *server.Config) { c.Location = berlin })
	sam := newClient(t, srv.URL)
	sam.mustLogin("support@example.org")
	ids := mustDemoIDs(t, sam)
	cleoID := userID(t, sam, "cleo@example.org")

	for i, v := range viewports {
		cleo := newPerson(t, "cleo-"+v.name)
		cleo.at(v)
		cleo.signIn(srv.URL, "cleo@example.org")
		cleo.waitText("the footer names the facility's zone", "#time-zone-note", "Times in Europe/Berlin")
		cleo.do("no banner while no one acts as her", chromedp.WaitNotPresent(chromedp.CSS(`#subject-banner:not([hidden])`)))
		// She reads her notifications as the session starts: the list
		// shows the new one, with no toast over it.
		cleo.openPage("notifications")

		reason := fmt.Sprintf("Cleo's booking fails (%s)", v.name)
		r := startImpersonation(sam, cleoID, reason)
		if r.Status != http.StatusCreated {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		started := r.JSON(t)
		id := started["id"].(string)
		expires, err := time.Parse(time.RFC3339, started["expires_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		session(t, sam)

		cleo.waitText("the banner appears live", "#subject-banner-text", "Sam Support (support@example.org) is acting as you")
		cleo.waitText("the inbox shows the start live", `#inbox [data-type="impersonation.started"]`, reason)
		cleo.inboxSaysOnce(reason, "Sam Support (support@example.org)")
		if n := eval[int](cleo, "count the toasts", `document.querySelectorAll('#toasts .toast').length`); n != 0 {
			t.Fatalf("%s: %d toasts cover the inbox that shows the notification", cleo.name, n)
		}
		cleo.openPage("book")
		banner := cleo.text("#subject-banner-text")
		if until := expires.In(berlin).Format("15:04"); !strings.Contains(banner, reason) || !strings.Contains(banner, until) {
			t.Fatalf("the banner reads %q, want the reason and the end %s in Europe/Berlin", banner, until)
		}
		cleo.waitText("the banner counts down", "#subject-banner-countdown", "left")
		cleo.do("the details by keyboard", chromedp.Focus(chromedp.ID("subject-banner-more")), chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.ID("subject-banner-full")))
		if s := cleo.text("#subject-banner-reason"); s != reason {
			t.Fatalf("the banner's details give the reason as %q, want %q", s, reason)
		}
		cleo.checkPage("the banner's details at " + v.name)
		cleo.do("hide the details", chromedp.Click(chromedp.ID("subject-banner-more")), chromedp.WaitNotVisible(chromedp.ID("subject-banner-full")))
		cleo.toastsClearOfHeading("with the banner at " + v.name)
		cleo.checkPage("the banner of a running session at " + v.name)
		cleo.shot("session-on-my-account-" + v.name)

		cleo.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
		cleo.waitText("the banner is back after a reload", "#subject-banner-text", reason)
		cleo.openPage("notifications")
		cleo.do("the banner stays on every page", chromedp.WaitVisible(chromedp.ID("subject-banner")))
		cleo.openPage("book")

		slot := nextMonday().AddDate(0, 0, 7*(i+2))
		if r := sam.post("/api/v1/bookings", bookingBody(ids.flow, ids.cell, slot, 1)); r.Status != http.StatusCreated {
			t.Fatalf("as Cleo, book: %d %s", r.Status, r.Body)
		}
		// Refused by the confocal's own rule (NEURO's only), in her project.
		if r := sam.post("/api/v1/bookings", bookingBody(ids.confocal, ids.cell, slot, 1)); r.Status != http.StatusForbidden {
			t.Fatalf("as Cleo, book the confocal: %d %s", r.Status, r.Body)
		}
		if r := sam.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", sam.csrf); r.Status != http.StatusOK {
			t.Fatalf("exit: %d %s", r.Status, r.Body)
		}
		session(t, sam)

		cleo.do("the banner goes live", chromedp.WaitNotVisible(chromedp.ID("subject-banner")))
		link := fmt.Sprintf(`.toast[data-type="impersonation.ended"] a[href="#/sessions/%s"]`, id)
		cleo.do("the end's toast links to the summary", chromedp.WaitVisible(chromedp.CSS(link)))
		cleo.do("open the summary from the toast", chromedp.Click(chromedp.CSS(link)),
			chromedp.WaitVisible(chromedp.CSS(`#content[data-page="session"]`)))
		cleo.checkSummary(id, reason, v.name)

		cleo.openPage("notifications")
		cleo.do("open the summary from the list", chromedp.Click(chromedp.CSS(`#inbox a[data-summary="`+id+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#content[data-page="session"]`)))
		cleo.checkSummary(id, reason, v.name)
	}

	cleo := newPerson(t, "cleo-toasts")
	cleo.at(viewports[1])
	cleo.signIn(srv.URL, "cleo@example.org")
	for n := 0; n < 2; n++ {
		if r := startImpersonation(sam, cleoID, fmt.Sprintf("toast %d", n)); r.Status != http.StatusCreated {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		session(t, sam)
		if r := sam.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", sam.csrf); r.Status != http.StatusOK {
			t.Fatalf("exit: %d %s", r.Status, r.Body)
		}
		session(t, sam)
	}
	// Four notifications: two toasts show, the others wait their turn and
	// show, oldest first, as the shown ones are dismissed.
	for seen := 0; seen < 4; seen++ {
		cleo.do("a toast shows", chromedp.WaitVisible(chromedp.CSS(`#toasts .toast:not(.is-leaving)`)))
		if seen < 3 {
			cleo.do("two toasts show", void(chromedp.PollFunction[bool](
				`() => document.querySelectorAll('#toasts .toast:not(.is-leaving)').length === 2`,
				chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout-time.Second))))
		}
		cleo.toastsClearOfHeading(fmt.Sprintf("after %d toasts dismissed", seen))
		if seen == 2 {
			cleo.waitText("the waiting start shows", "#toasts .toast:not(.is-leaving)", "Reason: toast 1")
		}
		cleo.do("dismiss one", chromedp.Click(chromedp.CSS(`#toasts .toast:not(.is-leaving) .toast__close`)))
	}
}

// inboxSaysOnce checks that the newest notification of the inbox states
// each of says exactly once, in its sentence or in its facts.
func (p *person) inboxSaysOnce(says ...string) {
	p.t.Helper()
	text := p.text("#inbox .inbox__item")
	for _, s := range says {
		if n := strings.Count(text, s); n != 1 {
			p.t.Fatalf("%s: the notification says %q %d times: %q", p.name, s, n, text)
		}
	}
}

// checkSummary checks the summary page of impersonation id: who, why,
// how it ended, the booking made and the one refused, in words.
func (p *person) checkSummary(id, reason, width string) {
	p.t.Helper()
	p.waitText("the summary names who", "#session-who", "Sam Support (support@example.org)")
	p.waitText("the summary says why", "#session-why", reason)
	p.waitText("the summary says how it ended", "#session-ended", "ended it")
	p.waitText("the summary lists the booking", "#session-changes", "Booked Flow Cytometer for ")
	p.waitText("the summary lists the refusal", "#session-refusals", "Tried to book Confocal LSM 900 for ")
	if s := p.text("#session-refusals"); !strings.Contains(s, "refused: ") {
		p.t.Fatalf("%s: the refusal reads %q, want why", p.name, s)
	}
	p.checkPage("the summary of " + id + " at " + width)
	p.shot("session-summary-" + width)
}

// TestBrowserAgentKnowsRefusalsBeforehand: support sees, before any
// dialog, that the owner may not be impersonated and why; the reason
// field counts its characters for everyone; while impersonating, the
// banner keeps to one line with the whole reason behind Details, takes at
// most a fifth of the screen with the header, and the profile's forms are
// disabled with the server's reasons before anyone types.
func TestBrowserAgentKnowsRefusalsBeforehand(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)
	reason := "Ben cannot book the confocal although he says his laser safety training is valid; " +
		"he attached a certificate to the ticket and asks whether the basics course is also needed"
	for _, v := range viewports {
		sam := newPerson(t, "sam-"+v.name)
		sam.at(v)
		sam.signIn(srv.URL, "support@example.org")
		sam.do("the directory", chromedp.WaitVisible(chromedp.ID("user-search")))

		sam.do("search for the owner", chromedp.SendKeys(chromedp.ID("user-search"), "owner"))
		sam.do("the list shows the owner", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="owner"] tr[data-user-id]`)))
		sam.do("open the owner's menu", chromedp.Click(chromedp.CSS(`#user-results [data-action="user-actions"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="impersonate"][aria-disabled="true"]`)))
		sam.waitText("the entry says why", `[data-menu-item="impersonate"]`, "owner")
		sam.checkPage("a refused Impersonate… at " + v.name)
		if opened := eval[bool](sam, "choose the refused entry", `(() => {
			document.querySelector('[data-menu-item="impersonate"]').click();
			return document.querySelectorAll('dialog').length > 0;
		})()`); opened {
			t.Fatalf("%s: the refused Impersonate… opened the dialog", v.name)
		}
		sam.do("close the menu", chromedp.KeyEvent("\x1b"))

		sam.clickText("open the owner's page", "#user-results .person__name", "Olivia Owner")
		sam.waitText("the owner's page", "#user-name", "Olivia Owner")
		sam.do("open the menu on the owner's page", chromedp.Click(chromedp.CSS(`main [data-action="user-actions"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="impersonate"][aria-disabled="true"]`)))
		sam.waitText("the page's entry says why", `[data-menu-item="impersonate"]`, "owner")
		sam.do("close the menu", chromedp.KeyEvent("\x1b"))

		sam.do("back to the directory", chromedp.Navigate(srv.URL+"/#/users"), chromedp.WaitVisible(chromedp.ID("user-search")))
		sam.do("search for Ben", chromedp.SendKeys(chromedp.ID("user-search"), "ben"))
		sam.do("the list shows Ben", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
		sam.do("open the impersonate dialog",
			chromedp.Click(chromedp.CSS(`#user-results [data-action="user-actions"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="impersonate"]:not([aria-disabled])`)),
			chromedp.Click(chromedp.CSS(`[data-menu-item="impersonate"]`)),
			chromedp.WaitVisible(chromedp.ID("imp-reason")),
			chromedp.SendKeys(chromedp.ID("imp-reason"), reason))
		want := fmt.Sprintf("%d / 500", len([]rune(reason)))
		sam.waitText("the counter counts", "#imp-reason-count", want)
		sam.waitText("the counter is said politely once typing pauses", `#imp-reason-count-said[aria-live="polite"]`,
			fmt.Sprintf("%d characters left", 500-len([]rune(reason))))
		if d := eval[string](sam, "read the field's description", `document.getElementById('imp-reason').getAttribute('aria-describedby')`); !strings.Contains(d, "imp-reason-count") {
			t.Fatalf("%s: the reason field is described by %q, not its counter", v.name, d)
		}
		sam.checkPage("the impersonate dialog with its counter at " + v.name)
		sam.do("start", chromedp.Click(chromedp.ID("imp-submit")), chromedp.WaitVisible(chromedp.ID("impersonation-banner")))
		sam.do("live as Ben", chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
		sam.checkAgentBanner(reason, v)

		sam.openPage("profile")
		sam.checkRefusedForm("the name form", "profile-name", "Destructive")
		sam.checkRefusedForm("the password form", "pw-new", "never allowed while impersonating")
		sam.checkRefusedForm("the password form", "pw-current", "never allowed while impersonating")
		if n := eval[int](sam, "count enabled buttons of refused forms", `document.querySelectorAll('form[data-refused] button:not(:disabled)').length`); n != 0 {
			t.Fatalf("%s: %d buttons of refused forms can be pressed", v.name, n)
		}
		sam.checkPage("the profile while impersonating at " + v.name)
		sam.do("exit", chromedp.Click(chromedp.ID("impersonation-exit")), chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
	}
}

// checkAgentBanner checks the agent's banner: one line, the whole reason
// behind Details (keyboard-operable, aria-expanded), and with the header
// at most a fifth of the window's height.
func (p *person) checkAgentBanner(reason string, v viewport) {
	p.t.Helper()
	p.waitText("the banner names Ben", "#banner-who", "Ben Okafor")
	// The session runs on Ben's account, which this console shows: its own
	// banner says so, not the one Ben sees as well.
	p.do("one banner, not both", chromedp.WaitNotVisible(chromedp.ID("subject-banner")))
	if lines := eval[float64](p, "measure the banner's line", `(() => {
		const el = document.getElementById('banner-line');
		return el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight);
	})()`); lines > 1.5 {
		p.failShot()
		p.t.Fatalf("%s: the banner's words take %.1f lines, want one", p.name, lines)
	}
	if share := eval[float64](p, "measure the header", `document.querySelector('.masthead').getBoundingClientRect().height / window.innerHeight`); share > 0.2 {
		p.failShot()
		p.t.Fatalf("%s: the header and banner take %.0f%% of the screen at %s, want at most 20%%", p.name, share*100, v.name)
	}
	p.checkPage("the console while impersonating at " + v.name)
	p.shot("impersonating-" + v.name)
	p.do("show the details by keyboard", chromedp.Focus(chromedp.ID("banner-more")), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.ID("banner-full")))
	if got := eval[string](p, "read Details", `document.getElementById('banner-more').getAttribute('aria-expanded')`); got != "true" {
		p.t.Fatalf("%s: Details open says aria-expanded=%q", p.name, got)
	}
	if full := p.text("#banner-full-reason"); full != reason {
		p.t.Fatalf("%s: the details read %q, want the whole reason", p.name, full)
	}
	p.checkPage("the banner's details at " + v.name)
	p.do("hide the details", chromedp.Click(chromedp.ID("banner-more")), chromedp.WaitNotVisible(chromedp.ID("banner-full")))
}

// checkRefusedForm checks that input id is disabled and described by a
// reason that contains want.
func (p *person) checkRefusedForm(form, id, want string) {
	p.t.Helper()
	p.do(form+" is shown", chromedp.WaitVisible(chromedp.ID(id)))
	got := eval[string](p, "read "+form, `(() => {
		const input = document.getElementById('`+id+`');
		if (!input.disabled) return 'enabled';
		const by = document.getElementById(input.getAttribute('aria-describedby') || '');
		return by ? 'reason: ' + by.textContent : 'no reason';
	})()`)
	if !strings.HasPrefix(got, "reason: ") || !strings.Contains(got, want) {
		p.failShot()
		p.t.Fatalf("%s: %s (#%s) is %s, want disabled with a reason saying %q", p.name, form, id, got, want)
	}
}

// TestBrowserSaysServerGone: while the server does not answer, a banner
// says so in words and that nothing is lost; a page opened meanwhile
// fails, and once the server is back the banner says "Back online", then
// goes, and the stale error is gone with the page loaded.
func TestBrowserSaysServerGone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := mustStart(t, dir)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, v := range viewports {
		ben := newPerson(t, "ben-gone-"+v.name)
		ben.at(v)
		ben.signIn(srv.URL, "ben@example.org")
		ben.waitText("the footer names the zone", "#time-zone-note", "Times in UTC")
		ben.do("no banner while connected", chromedp.WaitNotVisible(chromedp.ID("conn-banner")))

		srv.Stop(t)
		ben.waitText("the banner says the server is gone", "#conn-banner", "Reconnecting… your work is safe")
		ben.openPage("bookings")
		ben.do("the page fails while the server is gone", chromedp.WaitVisible(chromedp.CSS(`#content .error-block`)))
		ben.checkPage("the server gone at " + v.name)

		srv = mustRun(t, server.Config{DataDir: dir, Addr: addr})
		ben.waitText("the banner says it is back", "#conn-banner", "Back online")
		ben.do("the stale error is gone", chromedp.WaitNotPresent(chromedp.CSS(`#content .error-block`)))
		ben.waitNoText("the page has loaded", "#my-bookings", "Loading")
		ben.checkPage("back online at " + v.name)
		ben.do("the banner goes", chromedp.WaitNotVisible(chromedp.ID("conn-banner")))
		ben.noLoginPage("after the server came back")
	}
}
