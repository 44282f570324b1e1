package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// requestToActAsBen has p (support staff) open Ben's page and ask to
// impersonate him for reason, in a mode that needs an answer: it returns
// when the dialog waits for it.
func (p *person) requestToActAsBen(reason string) {
	p.t.Helper()
	p.openPage("users")
	p.do("search for Ben", chromedp.SendKeys(chromedp.ID("user-search"), "ben"))
	p.do("the list shows Ben", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
	p.clickText("open Ben's page", "#user-results .person__name", "Ben Okafor")
	p.waitText("Ben's page shows his name", "#user-name", "Ben Okafor")
	p.dismissToasts()
	p.do("ask to impersonate Ben",
		chromedp.Click(chromedp.CSS(`main [data-action="user-actions"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-menu-item="impersonate"]`)),
		chromedp.Click(chromedp.CSS(`[data-menu-item="impersonate"]`)),
		chromedp.WaitVisible(chromedp.ID("imp-reason")),
		chromedp.SendKeys(chromedp.ID("imp-reason"), reason),
		chromedp.Click(chromedp.ID("imp-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#request-wait[data-status="pending"]`)),
	)
}

// dismissToasts closes the toasts showing, as a person does before
// reaching what they cover.
func (p *person) dismissToasts() {
	p.t.Helper()
	p.do("dismiss the toasts", void(chromedp.Evaluate[bool](`(() => {
		for (const b of document.querySelectorAll('#toasts .toast__close')) b.click();
		return true;
	})()`)), chromedp.WaitNotPresent(chromedp.CSS("#toasts .toast:not(.is-leaving)")))
}

// press dismisses the toasts, then presses the button sel as a person
// reaching it does.
func (p *person) press(step, sel string) {
	p.t.Helper()
	p.dismissToasts()
	clicked := eval[bool](p, step, fmt.Sprintf(`(() => {
		const b = document.querySelector(%q);
		if (!b || b.disabled) return false;
		b.click();
		return true;
	})()`, sel))
	if !clicked {
		p.failShot()
		p.t.Fatalf("%s: %s: no button %s to press", p.name, step, sel)
	}
}

// answerFirstRequest has p open the Requests page and answer the first
// request waiting there with verb ("approve" or "deny").
func (p *person) answerFirstRequest(verb, state string) {
	p.t.Helper()
	p.openPage("requests")
	sel := `#requests-to-answer .request-card button[id$="-` + verb + `"]`
	p.do("the request shows live", chromedp.WaitVisible(chromedp.CSS(sel)))
	p.checkPage(state)
	p.press(verb+" it", sel)
	p.do("it leaves the list", chromedp.WaitNotPresent(chromedp.CSS(sel)))
}

// requestsBadge waits until the Requests link in p's navigation counts
// want requests waiting for p's answer, and checks that the link's
// accessible name, as the browser computes it for assistive technology,
// says so; at 0 there is no badge and the name is the label alone.
func (p *person) requestsBadge(step string, want int) {
	p.t.Helper()
	p.do(step, void(chromedp.PollFunction[bool](`(want) => {
		const badge = document.querySelector('#nav-requests .nav__count');
		if (want === 0) return Boolean(document.getElementById('nav-requests')) && (!badge || badge.hidden);
		return Boolean(badge) && !badge.hidden && badge.textContent.includes(String(want));
	}`, chromedp.WithPollingArgs(want),
		chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout-time.Second))))
	wantName := "Requests"
	if want > 0 {
		wantName = fmt.Sprintf("Requests, %d waiting for your answer", want)
	}
	// A folded navigation is out of the accessibility tree: it is read
	// open, as a person using it reads it.
	folded := eval[bool](p, "is the navigation folded", `getComputedStyle(document.getElementById('nav-toggle')).display !== 'none'`)
	if folded {
		p.do("open the menu", chromedp.Click(chromedp.ID("nav-toggle")), chromedp.WaitVisible(chromedp.ID("nav-requests")))
	}
	if got := p.accessibleName("nav-requests"); got != wantName {
		p.failShot()
		p.t.Fatalf("%s: %s: the Requests link is named %q, want %q", p.name, step, got, wantName)
	}
	if folded {
		p.do("close the menu", chromedp.Click(chromedp.ID("nav-toggle")), chromedp.WaitNotVisible(chromedp.ID("nav-requests")))
	}
}

// accessibleName returns the name the browser computes for the element
// with id, as assistive technology receives it, with runs of spaces and
// a space before a comma dropped.
func (p *person) accessibleName(id string) string {
	p.t.Helper()
	var name string
	p.do("read the accessible name of #"+id, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		el, err := cdp.Call(ctx, t, runtime.Evaluate, runtime.EvaluateParams{Expression: fmt.Sprintf("document.getElementById(%q)", id)})
		if err != nil {
			return chromedp.Void{}, err
		}
		if el.Result == nil || el.Result.ObjectID == "" {
			return chromedp.Void{}, fmt.Errorf("no element #%s", id)
		}
		found, err := cdp.Call(ctx, t, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{ObjectID: el.Result.ObjectID, Role: "link"})
		if err != nil {
			return chromedp.Void{}, err
		}
		if len(found.Nodes) == 0 || found.Nodes[0].Name == nil {
			return chromedp.Void{}, fmt.Errorf("#%s has no accessible name", id)
		}
		return chromedp.Void{}, json.Unmarshal(found.Nodes[0].Name.Value, &name)
	})
	return strings.ReplaceAll(strings.Join(strings.Fields(name), " "), " ,", ",")
}

// TestBrowserImpersonationModes: each mode end to end, the agent, the
// target and the approver as separate people in separate browsers. The
// admin sets the modes on the settings page. In consent mode the agent's
// dialog waits, live, until Ben allows it in his console, and the session
// then starts by itself; a refusal reaches the dialog with its note. In
// approval mode the manager approves from the Requests page. Ben grants
// access ahead of time and withdraws it. Every state is checked with axe,
// at the phone's width and the desktop's.
func TestBrowserImpersonationModes(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)

	admin := newPerson(t, "modes-admin")
	admin.signIn(srv.URL, "admin@example.org")
	admin.openPage("settings")
	admin.do("the settings show", chromedp.WaitVisible(chromedp.ID("settings-modes")))
	admin.waitText("nothing changed yet", "#settings-changed", "Never changed")
	admin.checkPage("the settings, never changed")
	admin.do("users need their consent",
		chromedp.SetValue(chromedp.CSS(`select[data-scope="role:user"]`), "consent"),
		chromedp.Click(chromedp.ID("settings-save")))
	admin.waitText("the change is saved", "#settings-changed", "Version 1, changed by Adrian Admin")
	admin.checkPage("the settings, saved")
	eval[bool](admin, "scroll to the top for the picture", `(() => { window.scrollTo(0, 0); return true; })()`)
	admin.dismissToasts()
	admin.do("the toasts are gone", chromedp.WaitNotPresent(chromedp.CSS("#toasts .toast")))
	admin.shot("settings")
	admin.at(viewports[1])
	admin.checkPage("the settings at a phone's width")

	ben := newPerson(t, "modes-ben")
	ben.at(viewports[1])
	ben.signIn(srv.URL, "ben@example.org")
	ben.openPage("requests")
	ben.waitText("nothing waits for Ben", "#requests-to-answer", "Nothing to answer")
	if stray := eval[bool](ben, "look for a stray null", `[...document.getElementById('content').childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim() === 'null')`); stray {
		ben.t.Fatal("modes-ben: the Requests page shows the text null where a section is left out")
	}
	ben.checkPage("Ben's requests, empty")

	sam := newPerson(t, "modes-sam")
	sam.signIn(srv.URL, "support@example.org")

	// Consent.
	{
		asked := time.Now()
		sam.requestToActAsBen("Ben's booking of the confocal fails")
		sam.waitText("the dialog says whom it waits for", "#request-wait-status", "Waiting for Ben Okafor's consent")
		sam.checkPage("waiting for Ben's consent")
		sam.shot("request-waiting")
		ben.waitText("Ben's console shows the request live", "#requests-to-answer", "Sam Support asks to act as you")
		ben.shot("consent-prompt")
		ben.requestsBadge("Ben's Requests link counts the request live", 1)
		ben.do("open the menu", chromedp.Click(chromedp.ID("nav-toggle")), chromedp.WaitVisible(chromedp.CSS("#nav-requests .nav__count")))
		ben.checkPage("Ben's menu counting the request")
		ben.shot("requests-badge-phone")
		ben.do("close the menu", chromedp.Click(chromedp.ID("nav-toggle")), chromedp.WaitNotVisible(chromedp.ID("nav-requests")))
		ben.answerFirstRequest("approve", "Ben's consent prompt")
		ben.requestsBadge("the count goes once Ben answers", 0)
		sam.do("the session starts by itself once Ben allows it", chromedp.WaitVisible(chromedp.ID("impersonation-banner")))
		sam.waitText("the banner names Ben", "#banner-who", "Ben Okafor")
		t.Logf("consent: the agent clicks 3 times (menu, Impersonate, Start) and the user once (Allow); %.1f s from the request to the session here", time.Since(asked).Seconds())
		sam.do("exit", chromedp.Click(chromedp.ID("impersonation-exit")), chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
		sam.waitText("the agent is back as himself", "#whoami", "Sam Support")
		sam.do("back on Ben's page, live", chromedp.WaitVisible(chromedp.CSS(`#content[data-page="user"] #user-name`)),
			chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
	}

	// ConsentRefused.
	{
		sam.requestToActAsBen("A second look at Ben's bookings")
		ben.openPage("book")
		ben.openPage("requests")
		ben.do("Ben writes a note", chromedp.WaitVisible(chromedp.CSS(`#requests-to-answer input[id$="-note"]`)),
			chromedp.SendKeys(chromedp.CSS(`#requests-to-answer input[id$="-note"]`), "Not today, please"))
		ben.answerFirstRequest("deny", "Ben refusing")
		sam.do("the dialog says it was refused", chromedp.WaitVisible(chromedp.CSS(`#request-wait[data-status="denied"]`)))
		sam.waitText("with Ben's note", "#request-wait-error", "Not today, please")
		sam.checkPage("the request refused")
		sam.do("close the dialog", chromedp.Click(chromedp.ID("request-wait-close")), chromedp.WaitNotPresent(chromedp.ID("request-wait")))
	}

	// Approval.
	{
		api := newClient(t, srv.URL)
		api.mustLogin("admin@example.org")
		mustModes(t, api, map[string]any{"scope": "project:" + mustDemoIDs(t, api).neuro, "mode": "approval", "approvals": 1})
		maya := newPerson(t, "modes-maya")
		maya.at(viewports[0])
		maya.signIn(srv.URL, "manager@example.org")

		maya.navOffersPages()
		maya.requestsBadge("nothing waits for Maya", 0)

		asked := time.Now()
		sam.requestToActAsBen("Ben cannot see his project's bookings")
		sam.waitText("the dialog waits for an approver", "#request-wait-status", "Waiting for approval: 0 of 1")
		sam.checkPage("waiting for approval")
		maya.requestsBadge("Maya's Requests link counts the request live", 1)
		maya.checkPage("Maya's navigation counting the request")
		maya.shot("requests-badge")
		maya.openPage("requests")
		maya.waitText("Maya sees the request and its reason", "#requests-to-answer", "Ben cannot see his project's bookings")
		maya.shot("approval-inbox")
		maya.answerFirstRequest("approve", "Maya's approval inbox")
		maya.requestsBadge("the count goes once Maya answers", 0)
		sam.do("the session starts by itself once approved", chromedp.WaitVisible(chromedp.ID("impersonation-banner")))
		t.Logf("approval: the agent clicks 3 times and the approver twice (Requests, Approve); %.1f s from the request to the session here", time.Since(asked).Seconds())
		sam.do("exit", chromedp.Click(chromedp.ID("impersonation-exit")), chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
		sam.waitText("the agent is back as himself", "#whoami", "Sam Support")
		sam.do("back on Ben's page, live", chromedp.WaitVisible(chromedp.CSS(`#content[data-page="user"] #user-name`)),
			chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
		mustModes(t, api, map[string]any{"scope": "role:user", "mode": "consent"})
	}

	// GrantAndWithdraw.
	{
		ben.openPage("requests")
		ben.do("the grant control shows", chromedp.WaitVisible(chromedp.ID("consent-grant-button")))
		ben.press("Ben allows support for a while", "#consent-grant-button")
		ben.waitText("his console says until when", "#consent-state", "Support may act as you without asking until")
		ben.checkPage("Ben's grant in force")
		ben.shot("consent-granted")

		started := time.Now()
		sam.openPage("users")
		sam.do("search for Ben", chromedp.SendKeys(chromedp.ID("user-search"), "ben"))
		sam.do("the list shows Ben alone", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
		sam.dismissToasts()
		sam.impersonate("under Ben's grant", `#user-results[data-query="ben"] [data-action="user-actions"]`, "Ben asked us to look now")
		t.Logf("consent with a grant: the agent clicks 3 times, the user none; %.1f s to the session", time.Since(started).Seconds())

		ben.press("Ben withdraws", "#consent-withdraw")
		ben.do("the grant control is back", chromedp.WaitVisible(chromedp.ID("consent-grant-button")))
		sam.do("the agent's session ends", chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
		sam.noLoginPage("after the withdrawal")
		r := newClient(t, srv.URL)
		r.mustLogin("admin@example.org")
		if got := events(t, r, "type=consent.withdrawn"); len(got) != 1 {
			t.Fatalf("%d withdrawals audited", len(got))
		}
		if r := r.do(http.MethodGet, "/api/v1/impersonations?active=true", nil); len(r.JSON(t)["items"].([]any)) != 0 {
			t.Fatalf("sessions still active after the withdrawal: %s", r.Body)
		}
	}
}
