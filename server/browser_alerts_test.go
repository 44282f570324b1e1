package server_test

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAlerts: the admin lowers the refusals that raise an alert
// to 2 on the Settings page (a value out of bounds is said at its
// field). Maya, lead of Ben's project, has the Activity panel open, and
// a second tab on another page. Sam impersonates Ben and is refused
// three times: Maya is told at once in both tabs, with a warning toast,
// and the alert shows in the Alerts card live; "Show events" filters the
// feed to the session; she acknowledges it with a note and it moves
// under Acknowledged, with who and the note. A second such alert,
// acknowledged by the admin while Maya's dialog is open, is said to have
// been acknowledged first, by whom. Every state passes axe and fits the
// window at the desktop's and the phone's width.
func TestBrowserAlerts(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t)

	admin := newPerson(t, "alerts-admin")
	admin.at(viewports[0])
	admin.signIn(srv.URL, "admin@example.org")
	admin.openPage("settings")
	admin.do("the alert thresholds show", chromedp.WaitVisible(chromedp.ID("settings-alerts")))
	if got := eval[string](admin, "read the thresholds", `['alert-day-start', 'alert-day-end', 'alert-refusals', 'alert-refusal-minutes']
		.map((id) => document.getElementById(id).value).join(' ')`); got != "08:00 20:00 5 10" {
		t.Fatalf("the thresholds read %q, want the defaults 08:00 20:00 5 10", got)
	}
	admin.checkPage("the alert thresholds")
	admin.do("no refusal at all is refused at its field",
		chromedp.SetValue(chromedp.ID("alert-refusals"), "0"), chromedp.Click(chromedp.ID("settings-save")))
	admin.waitText("in words", "#alert-refusals-error", "A whole number from 1 to 1000.")
	admin.checkPage("a threshold out of bounds")
	admin.do("two refusals raise an alert",
		chromedp.SetValue(chromedp.ID("alert-refusals"), "2"), chromedp.Click(chromedp.ID("settings-save")))
	admin.waitText("the change is saved", "#settings-changed", "Version 1, changed by Adrian Admin")
	admin.at(viewports[1])
	admin.checkPage("the alert thresholds saved, at a phone's width")

	api := newClient(t, srv.URL)
	api.mustLogin("admin@example.org")
	rules := alertThresholds(t, api)
	if rules["refusals"] != 2.0 || rules["day_start_minute"] != 480.0 || rules["day_end_minute"] != 1200.0 {
		t.Fatalf("the thresholds saved: %v", rules)
	}
	if got := events(t, api, "type=settings.changed"); len(got) != 1 || got[0]["reason"] != "alert: refusals 5 → 2" {
		t.Fatalf("the change in the log: %v", got)
	}

	maya := newPerson(t, "alerts-maya")
	maya.at(viewports[0])
	maya.signIn(srv.URL, "manager@example.org")
	elsewhere := maya.newTab("alerts-maya-bookings")
	elsewhere.do("Maya's second tab shows her bookings", chromedp.EmulateViewport(1366, 900),
		chromedp.Navigate(srv.URL+"/#/bookings"), chromedp.WaitVisible(chromedp.CSS(`#content[data-page="bookings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)))
	maya.front()
	maya.openPage("activity")
	maya.do("the Alerts card shows", chromedp.WaitVisible(chromedp.ID("alerts")))
	maya.waitText("no alert yet", "#alerts-list", "No alerts")

	// Sam acts as Ben and is refused three times.
	sam := newClient(t, srv.URL)
	sam.mustLogin("support@example.org")
	first := samRefusedAsBen(t, sam, "Ben's bookings vanish", 3)

	refusals := `#alerts-open [data-rule="refusals"]`
	maya.waitText("the toast tells Maya", "#toasts .toast", "Alert: 2 refusals within 10 minutes in Sam Support's session as Ben Okafor.")
	maya.waitText("the card shows the alert live", refusals+" .alert-item__rule", "Many refusals")
	maya.waitText("with who", refusals+" .alert-item__who", "Sam Support as Ben Okafor")
	maya.waitText("the feed words the alert", `#activity-feed [data-type="alert.raised"] .feed__text`, "Alert: 2 refusals within 10 minutes")
	elsewhere.waitText("the toast reaches Maya on another page", "#toasts .toast", "Alert: 2 refusals within 10 minutes")
	if href := eval[string](elsewhere, "read the toast's link", `[...document.querySelectorAll('#toasts .toast')]
		.find((t) => t.textContent.includes('refusals within')).querySelector('.toast__link').getAttribute('href')`); href != "#/activity" {
		t.Fatalf("the toast leads to %q, want #/activity", href)
	}
	if id := eval[string](maya, "read the alert's session", `document.querySelector('`+refusals+`').dataset.alertId`); id != "refusals:"+first {
		t.Fatalf("the alert is %q, want the refusals of session %s", id, first)
	}
	maya.shot("alerts")
	maya.checkPage("an alert raised live at " + viewports[0].name)
	maya.at(viewports[1])
	maya.checkPage("an alert raised live at " + viewports[1].name)

	maya.press("show the session's events", refusals+` [data-act="show"]`)
	maya.waitText("the feed shows the session's refusals", `#activity-feed [data-type="action.denied"] .feed__text`, "acting as Ben Okafor, tried to view the directory")
	if got := eval[string](maya, "read the session filter", `document.getElementById('f-session').value`); got != first {
		t.Fatalf("the session filter reads %q, want %q", got, first)
	}
	if n := eval[int](maya, "count sign-ins", `document.querySelectorAll('#activity-feed [data-type="auth.login"]').length`); n != 0 {
		t.Fatalf("the feed filtered to the session shows %d sign-ins", n)
	}
	maya.checkPage("the feed filtered to the alert's session at " + viewports[1].name)
	maya.at(viewports[0])

	maya.press("open the acknowledgment", refusals+` [data-act="ack"]`)
	maya.do("the dialog asks for a note", chromedp.WaitVisible(chromedp.ID("alert-note")))
	maya.checkPage("the acknowledge dialog")
	maya.do("acknowledge with a note", chromedp.SendKeys(chromedp.ID("alert-note"), "Talked to Sam: Ben asked him to check"),
		chromedp.Click(chromedp.ID("alert-ack-submit")))
	acked := `#alerts-acked [data-rule="refusals"][data-state="acknowledged"]`
	maya.do("the alert moves under Acknowledged", chromedp.WaitNotPresent(chromedp.CSS(refusals)), chromedp.WaitVisible(chromedp.CSS(acked)))
	maya.waitText("the disclosure counts it", "#alerts-acked > summary", "Acknowledged (1)")
	maya.waitText("with who and the note", acked+" .alert-item__ack", "Acknowledged by Maya Manager")
	maya.waitText("and the note", acked+" .alert-item__note", "Talked to Sam: Ben asked him to check")
	maya.waitText("the feed words the acknowledgment", `#activity-feed [data-type="alert.acknowledged"] .feed__text`,
		"Maya Manager (manager@example.org) acknowledged the alert on many refusals in one session: Talked to Sam: Ben asked him to check")
	maya.checkPage("the alert acknowledged at " + viewports[0].name)
	maya.at(viewports[1])
	maya.checkPage("the alert acknowledged at " + viewports[1].name)
	maya.at(viewports[0])

	// A second session, a second alert: the admin acknowledges it while
	// Maya's dialog is open.
	if r := sam.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", sam.csrf); r.Status != http.StatusOK {
		t.Fatalf("end the first session: %d %s", r.Status, r.Body)
	}
	session(t, sam)
	second := samRefusedAsBen(t, sam, "Ben's bookings vanish again", 2)
	again := `#alerts-open [data-alert-id="refusals:` + second + `"]`
	maya.do("the second alert shows", chromedp.WaitVisible(chromedp.CSS(again)))
	maya.press("open its acknowledgment", again+` [data-act="ack"]`)
	maya.do("the dialog asks for a note", chromedp.WaitVisible(chromedp.ID("alert-note")))
	if r := api.post("/api/v1/alerts/refusals:"+second+"/acknowledge", map[string]any{"note": "Seen: Sam is on the case"}); r.Status != http.StatusOK {
		t.Fatalf("the admin acknowledges: %d %s", r.Status, r.Body)
	}
	maya.do("Maya acknowledges too", chromedp.SendKeys(chromedp.ID("alert-note"), "Me too"), chromedp.Click(chromedp.ID("alert-ack-submit")))
	maya.waitText("she is told who was first", "#alert-ack-error", "Adrian Admin acknowledged this alert first: “Seen: Sam is on the case”")
	maya.checkPage("acknowledged by someone first")
	maya.do("close the dialog", chromedp.Click(chromedp.ID("alert-ack-cancel")), chromedp.WaitNotPresent(chromedp.ID("alert-note")))
	maya.waitText("both are acknowledged", "#alerts-acked > summary", "Acknowledged (2)")
	if stray := eval[int](maya, "count open refusals alerts", `document.querySelectorAll('#alerts-open [data-rule="refusals"]').length`); stray != 0 {
		t.Fatalf("%d refusals alerts still open", stray)
	}
	maya.noLoginPage("after the alerts")
}

// samRefusedAsBen has sam impersonate Ben for reason and be refused the
// directory n times; it returns the session's id.
func samRefusedAsBen(t *testing.T, sam *client, reason string, n int) string {
	t.Helper()
	r := startImpersonation(sam, userID(t, sam, "ben@example.org"), reason)
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	session(t, sam)
	for range n {
		if r := sam.do(http.MethodGet, "/api/v1/users", nil); r.Status != http.StatusForbidden {
			t.Fatalf("Ben lists users: %d %s", r.Status, r.Body)
		}
	}
	return id
}

// alertThresholds returns the alert thresholds of the impersonation
// settings.
func alertThresholds(t *testing.T, admin *client) map[string]any {
	t.Helper()
	r := admin.do(http.MethodGet, "/api/v1/settings/impersonation", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("settings: %d %s", r.Status, r.Body)
	}
	rules, ok := r.JSON(t)["alerts"].(map[string]any)
	if !ok {
		t.Fatalf("settings without alerts: %s", r.Body)
	}
	return rules
}
