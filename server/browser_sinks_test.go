package server_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"standin/server"
)

// checkAtBothWidths checks the page as it stands at each width of
// viewports, and returns to the first.
func (p *person) checkAtBothWidths(state string) {
	p.t.Helper()
	for _, v := range viewports {
		p.at(v)
		p.checkPage(state + " at " + v.name)
	}
	p.at(viewports[0])
}

// TestBrowserAuditSinks: the admin streams the audit log to a SIEM from
// the Sinks page. Empty at first; a destination outside the allowlist
// is refused in words at its field; the sink added, its secret is shown
// once, and signs every batch the receiver gets; the sink's health moves
// to delivered by itself; a test record arrives; when the receiver
// fails, the page shows it live with the error and the failures, and a
// test record's refusal with its reason; when the receiver is back, the
// sink catches up and is healthy again. The admin renames, pauses and
// removes the sink. Every state passes axe at the desktop's and the
// phone's width. Support staff have no Sinks page.
func TestBrowserAuditSinks(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t, func(c *server.Config) { c.SinkAllow = "127.0.0.1" })
	rx := newSIEM(t)
	sinkIs := func(state string) chromedp.Action[chromedp.Void] {
		return chromedp.WaitVisible(chromedp.CSS(`#sinks-list .sink[data-state="` + state + `"]`))
	}

	admin := newPerson(t, "sinks-admin")
	admin.at(viewports[0])
	admin.signIn(srv.URL, "admin@example.org")
	admin.openPage("sinks")
	admin.do("the page says there are none", chromedp.WaitVisible(chromedp.ID("sinks-empty")))
	admin.waitText("in words", "#sinks-empty", "No sinks yet: add one to stream the audit log to your SIEM")
	admin.waitText("and where sinks may deliver", "#sinks-allowed", "127.0.0.1")
	admin.checkAtBothWidths("no sinks yet")

	// Empty fields are said at their field, before anything is sent.
	admin.press("open the form", "#sink-add")
	admin.do("the form shows", chromedp.WaitVisible(chromedp.ID("sink-name")))
	admin.do("submit it empty", chromedp.Click(chromedp.ID("sink-submit")))
	admin.waitText("the name is asked for", "#sink-name-error", "Give the sink a name")
	// A destination outside the allowlist is refused by the server, in
	// words, at its field.
	admin.do("add a sink to 10.0.0.1",
		chromedp.SendKeys(chromedp.ID("sink-name"), "Acme SIEM"),
		chromedp.SendKeys(chromedp.ID("sink-url"), "http://10.0.0.1/in"),
		chromedp.Click(chromedp.ID("sink-submit")))
	admin.waitText("the refusal says why", "#sink-url-error", "10.0.0.1 is not allowed as a destination")
	admin.checkAtBothWidths("the form, its destination refused")
	admin.do("the form lists the event types", chromedp.Click(chromedp.CSS(".sink-form__more > summary")),
		chromedp.WaitVisible(chromedp.ID("sink-type-auth_login")))
	admin.checkAtBothWidths("the form, its event types open")

	admin.do("give the receiver's address instead",
		void(chromedp.Evaluate[bool](`(document.getElementById('sink-url').value = '', true)`)),
		chromedp.SendKeys(chromedp.ID("sink-url"), rx.srv.URL+"/standin"),
		chromedp.Click(chromedp.ID("sink-submit")))
	admin.do("the secret shows", chromedp.WaitVisible(chromedp.ID("sink-secret")))
	secret := eval[string](admin, "read the secret", `document.getElementById('sink-secret').value`)
	if len(secret) != 64 {
		t.Fatalf("the secret shown is %q", secret)
	}
	admin.waitText("with a warning", "#sink-secret-warning", "the only time this secret is shown")
	admin.checkAtBothWidths("the secret, shown once")
	admin.shot("sinks-secret")
	admin.press("copy it", "#sink-secret-copy")
	admin.do("the page says how the copy went", void(chromedp.PollFunction[bool](`() => document.getElementById('sink-secret-copied').textContent !== ''`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout-time.Second))))
	admin.press("close it", "#sink-secret-done")
	admin.do("the secret is gone", chromedp.WaitNotPresent(chromedp.ID("sink-secret")))
	if eval[bool](admin, "look for the secret", `document.documentElement.outerHTML.includes(`+strconv.Quote(secret)+`)`) {
		t.Fatal("the secret is still in the page once its dialog is closed")
	}

	// The sink gets its own creation, and the page sees it delivered
	// without being asked.
	rx.wait(t, "the sink's creation", func(r map[string]any) bool { return r["type"] == "sink.created" })
	admin.do("the sink delivers", sinkIs("delivering"))
	admin.waitText("up to where", "#sinks-list .sink__delivered", "Delivered up to #")
	admin.waitText("named", "#sinks-list .sink__name", "Acme SIEM")
	admin.waitText("sending every event", "#sinks-list .sink__filter", "Every event")

	admin.press("send a test record", `#sinks-list .sink [data-action="test"]`)
	admin.waitText("the toast says it arrived", "#toasts", "Acme SIEM acknowledged the test record")
	rx.wait(t, "the test record", func(r map[string]any) bool { return r["type"] == "sink.tested" && r["seq"] == 0.0 })
	admin.dismissToasts()
	admin.checkAtBothWidths("one sink, delivering")
	admin.shot("sinks")

	// The receiver fails: the page shows it live, with the error.
	rx.fail(true)
	newClient(t, srv.URL).mustLogin("ben@example.org")
	admin.do("the failure shows by itself", sinkIs("failing"))
	admin.waitText("with the error", "#sinks-list .sink__failing", "webhook answered 503")
	admin.waitText("and the failures counted", "#sinks-list .sink__failures", "failure")
	admin.press("send a test record to the failing receiver", `#sinks-list .sink [data-action="test"]`)
	admin.waitText("the refusal shows at the sink with its reason", "#sinks-list .sink__test", "503 Service Unavailable")
	admin.checkAtBothWidths("one sink, failing")
	admin.shot("sinks-failing")

	// Back: what waited is delivered, and the sink is healthy again.
	rx.fail(false)
	rx.wait(t, "Ben's sign-in, once the receiver is back", func(r map[string]any) bool {
		actor, _ := r["actor"].(map[string]any)
		return r["type"] == "auth.login" && actor["name"] == "Ben Okafor"
	})
	admin.do("healthy again by itself", sinkIs("delivering"))
	admin.waitNoText("the failure is gone", "#sinks-list .sink", "failing")

	admin.press("change the sink", `#sinks-list .sink [data-action="edit"]`)
	admin.do("rename it",
		chromedp.WaitVisible(chromedp.ID("sink-name")),
		chromedp.SetValue(chromedp.ID("sink-name"), "Acme SIEM (production)"),
		chromedp.Click(chromedp.ID("sink-submit")),
		chromedp.WaitNotPresent(chromedp.ID("sink-form")))
	admin.waitText("the new name shows", "#sinks-list .sink__name", "Acme SIEM (production)")

	admin.press("pause it", `#sinks-list .sink [data-action="toggle"]`)
	admin.do("it is paused", sinkIs("paused"))
	admin.waitText("and can be resumed", `#sinks-list .sink [data-action="toggle"]`, "Resume")
	admin.checkAtBothWidths("one sink, paused")

	admin.press("remove it", `#sinks-list .sink [data-action="remove"]`)
	admin.do("the removal asks first", chromedp.WaitVisible(chromedp.ID("sink-remove-confirm")))
	admin.checkAtBothWidths("confirming the removal")
	admin.press("confirm", "#sink-remove-confirm")
	admin.do("no sinks again", chromedp.WaitVisible(chromedp.ID("sinks-empty")), chromedp.WaitNotPresent(chromedp.CSS("#sinks-list .sink")))
	admin.checkAtBothWidths("the sink removed")

	rx.mustBeSignedWith(t, secret)

	sam := newPerson(t, "sinks-sam")
	sam.signIn(srv.URL, "support@example.org")
	sam.navOffersPages()
	if n := eval[int](sam, "look for the Sinks link", `document.querySelectorAll('#nav-sinks').length`); n != 0 {
		t.Fatal("support staff are offered the Sinks page")
	}
	sam.do("ask for the page by its address", void(chromedp.Evaluate[bool](`(location.hash = '#/sinks', true)`)),
		chromedp.WaitVisible(chromedp.CSS(`#content[data-page="users"]`)))
}
