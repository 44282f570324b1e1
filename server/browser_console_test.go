package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"standin/server"
)

// stepTimeout bounds one browser step. Steps wait on conditions, never on
// fixed sleeps; the bound is generous for a busy 2-core machine running
// several browsers.
const stepTimeout = 45 * time.Second

// person is one browser tab of one person in a test.
type person struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu         sync.Mutex
	exceptions []string
}

// newPerson starts a browser of its own for name: cookies never mix
// between people.
func newPerson(t *testing.T, name string) *person {
	t.Helper()
	p := &person{t: t, name: name, ctx: newBrowser(t)}
	p.listen()
	return p
}

// newTab opens a second tab in the same browser, sharing its cookies.
func (p *person) newTab(name string) *person {
	p.t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	p.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		p.t.Fatalf("%s: open a tab: %v", name, err)
	}
	tab := &person{t: p.t, name: name, ctx: ctx}
	tab.listen()
	return tab
}

// listen records uncaught JavaScript exceptions: the console must not
// throw while it is used.
func (p *person) listen() {
	err := chromedp.Listen(p.ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil && e.ExceptionDetails.Exception.Description != "" {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			p.mu.Lock()
			p.exceptions = append(p.exceptions, msg)
			p.mu.Unlock()
		}
	})
	if err != nil {
		p.t.Fatalf("%s: listen: %v", p.name, err)
	}
	p.t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.exceptions {
			p.t.Errorf("%s: uncaught exception in the page: %s", p.name, e)
		}
	})
}

// front activates the tab, so its page runs as a visible one would.
func (p *person) front() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.BringToFront, cdp.Empty{}); err != nil {
		p.t.Fatalf("%s: bring to front: %v", p.name, err)
	}
}

// do runs one step; on failure it saves a picture of the page and stops
// the test.
func (p *person) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.failShot()
		p.t.Fatalf("%s: %s: %v", p.name, step, err)
	}
}

func (p *person) failShot() {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		path := filepath.Join(screenshotDir(p.t), "failure-"+p.name+".png")
		if os.WriteFile(path, png, 0o644) == nil {
			p.t.Logf("%s: page at failure: %s", p.name, path)
		}
	}
}

// void drops an action's result.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// eval runs JavaScript and returns its value.
func eval[T any](p *person, step, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.failShot()
		p.t.Fatalf("%s: %s: %v", p.name, step, err)
	}
	return v
}

// text returns the text content of the first element matching css, read
// in the page in one step (once one matches), so that a part the page
// draws again meanwhile cannot vanish between finding the element and
// reading it.
func (p *person) text(css string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	type read struct {
		Text string `json:"text"`
	}
	r, err := chromedp.Run(ctx, chromedp.PollFunction[read](`(sel) => {
		const el = document.querySelector(sel);
		return el ? { text: el.textContent } : null;
	}`, chromedp.WithPollingArgs(css), chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout-time.Second)))
	if err != nil {
		p.failShot()
		p.t.Fatalf("%s: read %s: %v", p.name, css, err)
	}
	return r.Text
}

// waitText waits until an element matching css contains want.
func (p *person) waitText(step, css, want string) {
	p.t.Helper()
	p.do(step, void(chromedp.PollFunction[bool](`(sel, want) => [...document.querySelectorAll(sel)].some((el) => el.textContent.includes(want))`,
		chromedp.WithPollingArgs(css, want),
		// An interval, not animation frames: frames do not run in a tab
		// that is not in front.
		chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout-time.Second))))
}

// waitNoText waits until no element matching css contains want.
func (p *person) waitNoText(step, css, want string) {
	p.t.Helper()
	p.do(step, void(chromedp.PollFunction[bool](`(sel, want) => ![...document.querySelectorAll(sel)].some((el) => el.textContent.includes(want))`,
		chromedp.WithPollingArgs(css, want),
		chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout-time.Second))))
}

// clickText clicks the first element matching css whose text contains want.
func (p *person) clickText(step, css, want string) {
	p.t.Helper()
	p.waitText(step, css, want)
	ok := eval[bool](p, step, fmt.Sprintf(`(() => {
		const el = [...document.querySelectorAll(%q)].find((e) => e.textContent.includes(%q));
		if (!el) return false;
		el.click();
		return true;
	})()`, css, want))
	if !ok {
		p.t.Fatalf("%s: %s: nothing to click", p.name, step)
	}
}

// signIn opens the console and signs in; it returns when the live
// connection is up.
func (p *person) signIn(url, email string) {
	p.t.Helper()
	p.do("sign in as "+email,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "demo"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)),
	)
}

func (p *person) shot(name string) {
	p.t.Helper()
	saveScreenshot(p.t, p.ctx, name)
}

// impersonate opens the User Action Menu at menu, chooses Impersonate,
// gives reason and starts; it returns when the banner shows.
func (p *person) impersonate(step, menu, reason string) {
	p.t.Helper()
	p.do("impersonate "+step,
		chromedp.Click(chromedp.CSS(menu)),
		chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="impersonate"]`)),
		chromedp.Click(chromedp.CSS(`[data-menu-item="impersonate"]`)),
		chromedp.WaitVisible(chromedp.ID("imp-reason")),
		chromedp.SendKeys(chromedp.ID("imp-reason"), reason),
		chromedp.Click(chromedp.ID("imp-submit")),
		chromedp.WaitVisible(chromedp.ID("impersonation-banner")),
	)
}

// noLoginPage fails if the sign-in page is showing.
func (p *person) noLoginPage(when string) {
	p.t.Helper()
	if n := eval[int](p, "look for the sign-in page", `document.querySelectorAll('#login-form').length`); n != 0 {
		p.failShot()
		p.t.Fatalf("%s: the sign-in page appeared %s", p.name, when)
	}
}

// TestBrowserSupportJourney is the support case end to end, with one
// browser per person: the admin finds Ben, checks his access, impersonates
// him with a reason, is refused the confocal for the missing training,
// exits back to the dashboard without signing in; a second admin tab
// follows along; the manager's Activity panel shows it all live and ends a
// second session by force; Ben is told live and keeps the history.
func TestBrowserSupportJourney(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	const reason = "Ben cannot book the confocal"

	ben := newPerson(t, "ben")
	manager := newPerson(t, "manager")
	admin := newPerson(t, "admin")

	ben.signIn(srv.URL, "ben@example.org")
	ben.do("Ben sees the facility app", chromedp.WaitVisible(chromedp.ID("resource-list")))
	ben.waitText("Ben is told why the confocal is refused", "#resource-list .resource", "Confocal Basics")

	manager.signIn(srv.URL, "manager@example.org")
	manager.do("open the Activity panel",
		chromedp.Click(chromedp.ID("nav-activity")),
		chromedp.WaitVisible(chromedp.ID("feed-scroll")),
	)
	manager.waitText("the panel lists the active sessions", "#active-sessions", "No one is impersonating")
	manager.waitText("the chain's status says who verifies it and what the manager sees", `#chain-status[data-state="na"]`,
		"Chain verification: admins and owners")
	if n := eval[int](manager, "look for a button beside it", `document.querySelectorAll('#chain-status button').length`); n != 0 {
		t.Fatalf("the chain's status offers %d buttons to a manager, who may not verify", n)
	}

	admin.signIn(srv.URL, "admin@example.org")
	admin.do("the admin lands on the dashboard", chromedp.WaitVisible(chromedp.ID("user-search")))
	admin.do("the search box has the focus", void(chromedp.PollFunction[bool](`() => document.activeElement && document.activeElement.id === 'user-search'`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout-time.Second))))
	admin.waitText("the directory lists users", "#user-results", "Ben Okafor")
	admin.shot("dashboard")

	// A second tab of the admin, on the dashboard too.
	admin2 := admin.newTab("admin-tab2")
	admin2.front()
	admin2.do("open a second tab",
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(chromedp.ID("user-search")),
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)),
	)
	admin.front()

	// Search, open Ben's page.
	admin.do("search for Ben", chromedp.SendKeys(chromedp.ID("user-search"), "ben"))
	admin.do("the list shows the search's answer", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
	admin.waitText("the search narrows the list to Ben", "#user-count", "1 user")
	admin.clickText("open Ben's page", "#user-results .person__name", "Ben Okafor")
	admin.waitText("Ben's page shows his name", "#user-name", "Ben Okafor")
	admin.waitText("Ben's page shows his trainings", "#user-trainings", "Laser Safety")
	admin.waitText("Ben's page shows his projects", "main", "Neuro Imaging")
	admin.waitText("Ben's page shows recent activity", "#user-activity", "signed in")
	admin.shot("user")

	// The manager sees who is looking at Ben.
	manager.waitText("presence shows the admin on Ben's page", "#presence-list", "Adrian Admin is viewing Ben Okafor")

	// Check access without impersonating.
	admin.checkConfocalAccess(func() { admin.shot("check-access") })

	// Impersonate: the reason is required.
	admin.do("open Impersonate",
		chromedp.Click(chromedp.CSS(`main [data-action="user-actions"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="impersonate"]`)),
		chromedp.Click(chromedp.CSS(`[data-menu-item="impersonate"]`)),
		chromedp.WaitVisible(chromedp.ID("imp-reason")),
	)
	admin.do("submit without a reason", chromedp.Click(chromedp.ID("imp-submit")))
	admin.waitText("a reason is asked for", "#imp-reason-error", "Give a reason")
	// The reason is one paragraph: a line break pasted in becomes a
	// space (the server refuses line breaks), and Enter starts.
	admin.do("give a ticket and a reason pasted over two lines",
		chromedp.SendKeys(chromedp.ID("imp-ticket"), "SUP-42"),
	)
	if got := eval[string](admin, "paste a reason over two lines", `(() => {
		const r = document.getElementById('imp-reason');
		r.focus();
		r.value = 'Ben cannot book\nthe confocal';
		r.dispatchEvent(new Event('input', { bubbles: true }));
		return r.value;
	})()`); got != reason {
		t.Fatalf("the reason reads %q after pasting, want %q", got, reason)
	}
	admin.shot("impersonate-dialog")
	admin.do("start with Enter", chromedp.Focus(chromedp.ID("imp-reason")), chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("impersonation-banner")))
	admin.waitText("the banner names Ben", "#banner-who", "Acting as Ben Okafor")
	admin.waitText("the banner gives the reason", "#banner-reason", reason)
	admin.noLoginPage("when the impersonation started")
	if who := admin.text("#whoami"); !strings.Contains(who, "Ben Okafor") {
		t.Fatalf("the admin acts as %q, want Ben Okafor", who)
	}
	// The countdown is live: it reads m:ss left and changes.
	first := admin.text("#banner-countdown")
	if !regexp.MustCompile(`^\d+:\d\d left$`).MatchString(first) {
		t.Fatalf("countdown reads %q", first)
	}
	admin.do("the countdown ticks", void(chromedp.PollFunction[bool](`(was) => document.getElementById('banner-countdown').textContent !== was`,
		chromedp.WithPollingArgs(first), chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))))

	// Presence: the admin's view of Ben's page ended with the switch, and
	// the hold on Ben shows instead.
	manager.waitText("presence shows the hold", "#presence-list", "Adrian Admin is acting as Ben Okafor")
	manager.waitNoText("the admin no longer views Ben's page", "#presence-list", "is viewing Ben Okafor")

	// The second tab shows the banner too.
	admin2.front()
	admin2.do("the second tab shows the banner", chromedp.WaitVisible(chromedp.ID("impersonation-banner")))
	admin2.waitText("the second tab names Ben", "#banner-who", "Ben Okafor")
	admin.front()

	// As Ben, the confocal is refused for the missing training.
	admin.do("the facility app as Ben", chromedp.WaitVisible(chromedp.ID("resource-list")))
	admin.clickText("try to book the confocal", "#resource-list .resource", "Confocal")
	eval[bool](admin, "pick the confocal", `(() => {
		const card = [...document.querySelectorAll('#resource-list .resource')].find((e) => e.textContent.includes('Confocal'));
		card.querySelector('[data-book]').click();
		return document.getElementById('booking-resource').selectedOptions[0].textContent.includes('Confocal');
	})()`)
	admin.do("book", chromedp.Click(chromedp.ID("booking-submit")))
	admin.waitText("the denial names the missing training", "#booking-error", "Confocal Basics")
	admin.shot("impersonating")

	// Ben is told, live, and the inbox keeps it.
	ben.waitText("Ben gets a toast", `.toast[data-type="impersonation.started"]`, "Adrian Admin")
	ben.shot("user-toast")
	ben.do("Ben opens his notifications", chromedp.Click(chromedp.ID("nav-notifications")))
	ben.waitText("the inbox says who and why", `#inbox [data-type="impersonation.started"]`, reason)

	// The manager sees it live.
	manager.waitText("the feed shows the start", `#activity-feed [data-type="impersonation.started"]`, "Ben Okafor")
	manager.waitText("the feed shows the denial", `#activity-feed [data-type="action.denied"]`, "Confocal Basics")
	manager.waitText("the session is listed as active", "#active-sessions [data-session-id]", "Adrian Admin")
	manager.waitText("with its remaining time", "#active-sessions .session__left", "left")

	// Paused, the feed holds new events back and counts them.
	manager.do("pause the feed", chromedp.Click(chromedp.ID("feed-pause")))
	manager.waitText("the feed says it is paused", "#feed-state", "Paused")

	// Exit: back on Ben's page as the admin, no sign-in page.
	admin.do("exit",
		chromedp.Click(chromedp.ID("impersonation-exit")),
		chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")),
		chromedp.WaitVisible(chromedp.ID("user-name")), // back on the page of the user impersonated
	)
	admin.waitText("the admin is himself again", "#whoami", "Adrian Admin")
	admin.waitText("the admin is back on the page of the user he impersonated", "#user-name", "Ben Okafor")
	admin.noLoginPage("after exit")
	admin.waitText("the exit is confirmed", `.toast[data-type="impersonation.ended"]`, "ended")

	admin2.front()
	admin2.do("the second tab drops the banner", chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
	admin2.waitText("the second tab shows the admin", "#whoami", "Adrian Admin")
	admin2.noLoginPage("in the second tab")
	admin.front()

	manager.waitText("new events are counted while paused", "#new-events", "new")
	manager.waitNoText("the end is held back while paused", `#activity-feed [data-type="impersonation.ended"]`, "Ben Okafor")
	manager.do("resume", chromedp.Click(chromedp.ID("feed-pause")))
	manager.waitText("the feed shows the end", `#activity-feed [data-type="impersonation.ended"]`, "ended it")
	manager.waitText("no session is active", "#active-sessions", "No one is impersonating")
	manager.do("group by session", chromedp.Click(chromedp.ID("mode-sessions")))
	manager.waitText("events are grouped by session", "#activity-feed .feed-group[data-session]", "Adrian Admin as Ben Okafor")
	// What is on screen: the events' details are folded.
	if group := eval[string](manager, "read the group", `document.querySelector('#activity-feed .feed-group[data-session]').innerText`); strings.Count(group, reason) != 1 {
		t.Fatalf("the session's group gives its reason %d times: %q", strings.Count(group, reason), group)
	}
	manager.shot("activity")
	manager.do("back to the timeline", chromedp.Click(chromedp.CSS(`[data-mode="timeline"]`)))

	// Ben reads his inbox: the end arrives in it, marked new, with no
	// toast over the list.
	ben.waitText("Ben is told it ended", `#inbox [data-type="impersonation.ended"]`, "Adrian Admin (admin@example.org) ended it")
	ben.waitText("the end is marked new", `#inbox [data-type="impersonation.ended"] .badge`, "new")
	if n := eval[int](ben, "count the end's toasts", `document.querySelectorAll('.toast[data-type="impersonation.ended"]').length`); n != 0 {
		t.Fatalf("%d toasts of the end cover Ben's inbox", n)
	}
	ben.shot("notifications")

	// A second session, ended by the manager: the admin's browser returns
	// to Ben's page on its own.
	admin.do("search again", chromedp.Click(chromedp.ID("nav-users")), chromedp.WaitVisible(chromedp.ID("user-search")),
		chromedp.SendKeys(chromedp.ID("user-search"), "ben"))
	admin.do("the list shows the search's answer", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
	admin.waitText("the search narrows the list to Ben", "#user-count", "1 user")
	admin.impersonate("from Ben's row menu", `#user-results [data-action="user-actions"]`, "Second look at the booking page")
	manager.waitText("the new session is listed", "#active-sessions [data-session-id]", "Second look")
	manager.do("force-end it",
		chromedp.Click(chromedp.CSS(`#active-sessions [data-revoke]`)),
		chromedp.WaitVisible(chromedp.ID("revoke-confirm")),
		chromedp.Click(chromedp.ID("revoke-confirm")),
	)
	admin.do("the admin's session ends in his browser",
		chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")),
		chromedp.WaitVisible(chromedp.ID("user-name")), // back on the page of the user impersonated
	)
	admin.waitText("the admin is told who ended it", `.toast[data-type="impersonation.ended"]`, "Maya Manager (manager@example.org) ended it")
	admin.waitText("the admin is himself again", "#whoami", "Adrian Admin")
	admin.noLoginPage("after the force-end")
	manager.waitText("the feed shows who revoked", `#activity-feed [data-type="impersonation.ended"]`, "Maya Manager (manager@example.org) ended it")

	// The panel at tablet width.
	manager.do("tablet width", chromedp.EmulateViewport(820, 1180))
	manager.shot("activity-tablet")
}

// TestBrowserBookingAndCancel books as Ada, sees the form's own checks,
// lists the booking and cancels it.
func TestBrowserBookingAndCancel(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ada := newPerson(t, "ada")
	ada.signIn(srv.URL, "ada@example.org")
	ada.waitText("the confocal is bookable for Ada", `#resource-list .resource[data-bookable="true"]`, "Confocal LSM 900")

	// The form checks what it can before asking the server.
	ada.do("an end before the start",
		chromedp.Click(chromedp.CSS(`#resource-list .resource[data-bookable="true"] [data-book]`)),
		chromedp.SetValue(chromedp.ID("booking-start"), "11:00"),
		chromedp.SetValue(chromedp.ID("booking-end"), "10:00"),
		chromedp.Click(chromedp.ID("booking-submit")),
	)
	ada.waitText("the form explains", "#booking-end-error", "end after it starts")

	ada.do("a valid booking",
		chromedp.SetValue(chromedp.ID("booking-start"), "10:00"),
		chromedp.SetValue(chromedp.ID("booking-end"), "11:30"),
		chromedp.Click(chromedp.ID("booking-submit")),
	)
	ada.waitText("the booking is confirmed", "#booking-success", "Booked Confocal LSM 900")
	ada.shot("book")

	ada.do("open my bookings", chromedp.Click(chromedp.ID("nav-bookings")))
	ada.waitText("the booking is listed", "#my-bookings [data-booking-id]", "Confocal LSM 900")
	ada.shot("my-bookings")
	ada.do("cancel it",
		chromedp.Click(chromedp.CSS(`#my-bookings [data-cancel]`)),
		chromedp.WaitVisible(chromedp.ID("cancel-confirm")),
		chromedp.Click(chromedp.ID("cancel-confirm")),
	)
	ada.waitText("it moves to the cancelled ones", "#my-bookings", "Past and cancelled (1)")
	ada.waitText("it reads cancelled", "#my-bookings [data-booking-id]", "cancelled")

	ada.do("open the profile", chromedp.Click(chromedp.ID("nav-profile")))
	ada.waitText("the profile lists trainings with expiry", "main", "Confocal Basics")
	ada.shot("profile")
}

// TestBrowserExpiryReturnsToTheUsersPage: when an impersonation runs
// out, with no request of the agent in flight, the agent's page leaves the
// user's app by itself and shows, as the agent, the page of the user they
// impersonated, saying why, without a sign-in page.
func TestBrowserExpiryReturnsToTheUsersPage(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	srv := mustRun(t, server.Config{DataDir: t.TempDir(), Clock: clk.Now})
	admin := newPerson(t, "admin-expiry")
	admin.actAsBen(srv.URL, "runs out")

	clk.Advance(31 * time.Minute) // past the default 30 minutes: the server's sweep ends it
	admin.do("the page leaves the impersonation by itself",
		chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")),
		chromedp.WaitVisible(chromedp.ID("user-name")), // back on the page of the user impersonated
	)
	admin.waitText("the admin is himself again", "#whoami", "Adrian Admin")
	admin.waitText("the page says why", `.toast[data-type="impersonation.ended"]`, "time ran out")
	admin.noLoginPage("after the impersonation expired")
}

// TestBrowserExpiryDuringRestartSaysWhy: the impersonation runs out while
// the server is down, so the live event that carries the cause reaches no
// page. Once the server is back the page still leaves the impersonation
// by itself and says why, from the ended impersonation's record.
func TestBrowserExpiryDuringRestartSaysWhy(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	dir := t.TempDir()
	srv := mustRun(t, server.Config{DataDir: dir, Clock: clk.Now})
	admin := newPerson(t, "admin-expiry-restart")
	admin.actAsBen(srv.URL, "runs out while the server is down")

	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Stop(t)
	admin.do("the connection state shows the drop", chromedp.WaitVisible(chromedp.CSS(`#conn-status:not([data-state="live"])`)))
	clk.Advance(31 * time.Minute)
	mustRun(t, server.Config{DataDir: dir, Addr: addr, Clock: clk.Now})

	admin.do("the page leaves the impersonation by itself",
		chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")),
		chromedp.WaitVisible(chromedp.ID("user-name")), // back on the page of the user impersonated
	)
	admin.waitText("the admin is himself again", "#whoami", "Adrian Admin")
	admin.waitText("the page says why", `.toast[data-type="impersonation.ended"]`, "time ran out")
	admin.do("the page is live again", chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
	admin.noLoginPage("after the restart")
}

// checkConfocalAccess opens Check access from the user page's menu, asks
// about the confocal in NEURO and waits for the refusal naming the missing
// training; shown runs while the answer shows, before the dialog closes.
func (p *person) checkConfocalAccess(shown func()) {
	p.t.Helper()
	p.do("choose Check access",
		chromedp.Click(chromedp.CSS(`main [data-action="user-actions"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="check-access"]`)),
		chromedp.Click(chromedp.CSS(`[data-menu-item="check-access"]`)),
		chromedp.WaitEnabled(chromedp.ID("access-submit")))
	eval[bool](p, "choose the confocal in NEURO", `(() => {
		const res = document.getElementById('access-resource');
		res.value = [...res.options].find((o) => o.textContent.includes('Confocal')).value;
		const proj = document.getElementById('access-project');
		proj.value = [...proj.options].find((o) => o.textContent.startsWith('NEURO')).value;
		return true;
	})()`)
	p.do("check", chromedp.Click(chromedp.ID("access-submit")))
	p.waitText("the decision names the missing training", `#access-result [data-allowed="false"]`, "Confocal Basics")
	if shown != nil {
		shown()
	}
	p.do("close the dialog", chromedp.KeyEvent("\x1b"), chromedp.WaitNotPresent(chromedp.ID("access-result")))
}

// actAsBen signs the admin in, opens Ben's page from the directory and
// impersonates him for reason, until the page is live as Ben: its live
// connection, replaced when the session switched, is up again.
func (p *person) actAsBen(base, reason string) {
	p.t.Helper()
	p.signIn(base, "admin@example.org")
	p.do("search for Ben", chromedp.SendKeys(chromedp.ID("user-search"), "ben"))
	p.do("the list shows the search's answer", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
	p.clickText("open Ben's page", "#user-results .person__name", "Ben Okafor")
	p.waitText("Ben's page shows his name", "#user-name", "Ben Okafor")
	p.impersonate("from Ben's page", `main [data-action="user-actions"]`, reason)
	p.waitText("the banner names Ben", "#banner-who", "Ben Okafor")
	p.do("the page is live as Ben", chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
}

// TestBrowserEndStuckImpersonationElsewhere: an agent whose impersonation
// runs in another browser (a crashed one, a machine left behind) is told
// so when starting a new one, and ends it from here; the other browser
// leaves it by itself.
func TestBrowserEndStuckImpersonationElsewhere(t *testing.T) {
	t.Parallel()
	srv := mustRun(t, server.Config{DataDir: t.TempDir()})
	left := newPerson(t, "admin-left-behind")
	left.actAsBen(srv.URL, "left running on another machine")

	here := newPerson(t, "admin-here")
	here.signIn(srv.URL, "admin@example.org")
	here.do("search for Cleo", chromedp.SendKeys(chromedp.ID("user-search"), "cleo"))
	here.do("the list shows Cleo", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="cleo"] tr[data-user-id]`)))
	here.clickText("open Cleo's page", "#user-results .person__name", "Cleo")
	here.do("start impersonating Cleo",
		chromedp.Click(chromedp.CSS(`main [data-action="user-actions"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="impersonate"]`)),
		chromedp.Click(chromedp.CSS(`[data-menu-item="impersonate"]`)),
		chromedp.WaitVisible(chromedp.ID("imp-reason")),
		chromedp.SendKeys(chromedp.ID("imp-reason"), "Cleo's question"),
		chromedp.Click(chromedp.ID("imp-submit")),
		chromedp.WaitVisible(chromedp.ID("end-elsewhere")),
	)
	here.waitText("the refusal names the other session", ".dialog", "already impersonating Ben Okafor")
	here.shot("end-elsewhere-offer")
	here.do("end the other session", chromedp.Click(chromedp.ID("end-elsewhere")))
	here.waitText("the dialog says it ended", ".dialog", "Your session as Ben Okafor has ended")
	here.noLoginPage("after ending the other session")

	left.do("the other browser leaves the impersonation by itself",
		chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")),
		chromedp.WaitVisible(chromedp.ID("user-name")), // back on the page of the user impersonated
	)
	left.waitText("the other browser is the admin again", "#whoami", "Adrian Admin")
}
