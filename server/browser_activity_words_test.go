package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserActivityReadsAtAGlance: a manager watches the Activity panel
// while a support agent impersonates Ben over the API. The refused booking
// reads as a sentence naming the agent by name and address, the instrument,
// the slot and the missing training; three views of the resources show as
// one row "×3" that expands to the three, and a fourth view arriving live
// extends it; the timeline of today's sessions shows the session running
// with its one refusal and follows the clock; the rate chart marks the
// denial; choosing the session's bar filters the feed to it. Every state is
// checked at 1366×900 and 390×844 for overflow and with axe-core.
func TestBrowserActivityReadsAtAGlance(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	manager := newPerson(t, "manager-glance")
	manager.signIn(srv.URL, "manager@example.org")
	manager.do("open the Activity panel",
		chromedp.Click(chromedp.ID("nav-activity")),
		chromedp.WaitVisible(chromedp.ID("feed-scroll")),
	)
	manager.waitText("the timeline says there is no session yet", `#sessions-timeline[data-state="empty"]`, "No sessions today")
	manager.do("the rate chart is drawn", chromedp.WaitVisible(chromedp.CSS(`#event-rate[data-state="ready"] svg[role="img"]`)))
	manager.atBothWidths("the panel with no session today")

	// The agent, over the API: impersonates Ben, is refused the confocal
	// for the missing training, and looks at the resources three times.
	agent, confocal := samActsAsBen(t, srv.URL)
	for range 3 {
		viewResources(t, agent)
	}
	manager.readsTheRefusal(confocal)
	manager.waitText("three views show as one row", glanceViews+`[data-count="3"] .feed__text`, "viewed resources ×3")
	if n := eval[int](manager, "count the rows of views", `document.querySelectorAll('#activity-feed > li[data-type="action.allowed"]').length`); n != 1 {
		t.Fatalf("the feed shows the views in %d rows, want 1", n)
	}
	manager.seesTheSessionAndTheDenial()
	manager.atBothWidths("the panel with a session, a refusal and repeated views")

	manager.do("expand the repeated views", chromedp.Click(chromedp.CSS(glanceViews+` .feed__repeats-summary`)))
	manager.do("the three views show with their times",
		chromedp.WaitVisible(chromedp.CSS(glanceViews+` .feed--repeats > li:nth-child(3) time`)))
	manager.countsViews("the expanded row", 3)
	manager.atBothWidths("the repeated views expanded")

	// A fourth view arrives live: the row grows to ×4 and stays open, and
	// the running session's bar reaches the new moment.
	endBefore := eval[string](manager, "read where the bar ends", `document.querySelector('`+glanceBar+`').dataset.end`)
	viewResources(t, agent)
	manager.waitText("the live view extends the row", glanceViews+`[data-count="4"] .feed__text`, "viewed resources ×4")
	manager.countsViews("the open row after a live view", 4)
	manager.do("the running session's bar grows", void(chromedp.PollFunction[bool](`(sel, before) => {
		const el = document.querySelector(sel);
		return !!el && new Date(el.dataset.end) > new Date(before);
	}`, chromedp.WithPollingArgs(glanceBar, endBefore), chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout-time.Second))))

	manager.shot("activity-glance-phone")
	manager.choosesTheSession()
	manager.atBothWidths("the feed filtered to a session from the timeline")
	manager.do("wide again", chromedp.EmulateViewport(1366, 900))
	manager.shot("activity-glance")
	manager.noLoginPage("after reading the panel")
}

// The row of repeated views, and the bar of the running session with one
// refusal, in the Activity panel.
const (
	glanceViews = `#activity-feed .feed__item--views`
	glanceBar   = `#sessions-timeline [data-session-id][data-running="true"][data-refusals="1"]`
)

// samActsAsBen signs Sam Support in over the API, impersonates Ben and
// tries to book the confocal for him, which is refused for the missing
// training; it returns Sam's client and the confocal's id.
func samActsAsBen(t *testing.T, base string) (*client, string) {
	t.Helper()
	agent := newClient(t, base)
	agent.mustLogin("support@example.org")
	ids := mustDemoIDs(t, agent)
	benID := userID(t, agent, "ben@example.org")
	if r := startImpersonation(agent, benID, "Ben cannot book the confocal"); r.Status != http.StatusCreated {
		t.Fatalf("start impersonation: %d %s", r.Status, r.Body)
	}
	session(t, agent)
	if r := agent.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1)); r.Status != http.StatusForbidden {
		t.Fatalf("booking the confocal as Ben: %d %s", r.Status, r.Body)
	}
	return agent, ids.confocal
}

// viewResources looks at the resources as the impersonated user.
func viewResources(t *testing.T, agent *client) {
	t.Helper()
	if r := agent.do(http.MethodGet, "/api/v1/resources", nil); r.Status != http.StatusOK {
		t.Fatalf("resources as Ben: %d %s", r.Status, r.Body)
	}
}

// readsTheRefusal checks the refused booking's row: a sentence naming the
// agent by name and address, the instrument and the missing training,
// with the raw action and object in its details only.
func (p *person) readsTheRefusal(confocal string) {
	p.t.Helper()
	denial := `#activity-feed [data-type="action.denied"] .feed__text`
	p.waitText("the refusal reads as a sentence", denial, "tried to book Confocal LSM 900 for ")
	text := p.text(denial)
	for _, want := range []string{"Sam Support (support@example.org), acting as Ben Okafor,", "refused:", "Confocal Basics"} {
		if !strings.Contains(text, want) {
			p.t.Fatalf("the refusal reads %q, want %q in it", text, want)
		}
	}
	for _, raw := range []string{"booking.create", "resource:", "/api/v1"} {
		if strings.Contains(text, raw) {
			p.t.Fatalf("the refusal's sentence %q shows the raw %q", text, raw)
		}
	}
	facts := p.text(`#activity-feed [data-type="action.denied"] .feed__facts`)
	if !strings.Contains(facts, "booking.create") || !strings.Contains(facts, "resource:"+confocal) {
		p.t.Fatalf("the refusal's details read %q, want the raw action and object", facts)
	}
}

// seesTheSessionAndTheDenial checks the pictures: the running session's
// bar with its one refusal, and the denial in the rate chart.
func (p *person) seesTheSessionAndTheDenial() {
	p.t.Helper()
	p.waitText("the timeline shows the session with its refusal", glanceBar, "1 refusal")
	if label := p.text(glanceBar); !strings.Contains(label, "Sam Support as Ben Okafor") || !strings.Contains(label, "now") {
		p.t.Fatalf("the session's bar reads %q", label)
	}
	p.do("the rate chart marks the denial", chromedp.WaitVisible(chromedp.CSS(`#event-rate svg[data-denied="1"] .rate__bar--denied`)))
	if name := eval[string](p, "read the rate chart's name", `document.querySelector('#event-rate svg').getAttribute('aria-label')`); !strings.Contains(name, "1 denial") {
		p.t.Fatalf("the rate chart is named %q", name)
	}
}

// countsViews checks how many single views the open row of repeated
// views shows.
func (p *person) countsViews(what string, want int) {
	p.t.Helper()
	if n := eval[int](p, "count the views", `[...document.querySelectorAll('#activity-feed .feed--repeats > li[data-type="action.allowed"]')]
		.filter((e) => e.getClientRects().length).length`); n != want {
		p.t.Fatalf("%s shows %d views, want %d", what, n, want)
	}
}

// choosesTheSession presses Enter on the running session's bar: the bar
// is pressed and keeps the keyboard, and the feed (and the address) shows
// that session only.
func (p *person) choosesTheSession() {
	p.t.Helper()
	p.do("choose the session's bar with Enter", chromedp.Focus(chromedp.CSS(glanceBar)), chromedp.KeyEvent("\r"))
	p.do("the bar is pressed", chromedp.WaitVisible(chromedp.CSS(`#sessions-timeline [data-session-id][aria-pressed="true"]`)))
	id := eval[string](p, "read the session's id", `document.querySelector('`+glanceBar+`').dataset.sessionId`)
	if still := eval[bool](p, "see where the keyboard is", `document.activeElement === document.querySelector('`+glanceBar+`')`); !still {
		p.t.Fatalf("after choosing the bar the keyboard is no longer on it")
	}
	if got := eval[string](p, "read the session filter", `document.getElementById('f-session').value`); got != id {
		p.t.Fatalf("the session filter reads %q, want %q", got, id)
	}
	if hash := eval[string](p, "read the address", `location.hash`); !strings.Contains(hash, "impersonation="+id) {
		p.t.Fatalf("the address after choosing the bar is %q", hash)
	}
	p.waitText("the filtered feed shows the session's start", `#activity-feed [data-type="impersonation.started"]`, "started acting as Ben Okafor")
	if other := eval[int](p, "count sign-ins", `document.querySelectorAll('#activity-feed [data-type="auth.login"]').length`); other != 0 {
		p.t.Fatalf("the feed filtered to the session shows %d sign-ins", other)
	}
}

// atBothWidths checks the page as it stands at 1366×900 and at 390×844:
// nothing is wider than the window, and axe-core finds no violation.
func (p *person) atBothWidths(state string) {
	p.t.Helper()
	for _, size := range [][2]int64{{1366, 900}, {390, 844}} {
		at := fmt.Sprintf("%s at %d×%d", state, size[0], size[1])
		p.do("resize to "+at, chromedp.EmulateViewport(size[0], size[1]))
		// The charts redraw at the new width.
		p.do("the charts fit "+at, void(chromedp.PollFunction[bool](`() => [...document.querySelectorAll('#sessions-timeline svg, #event-rate svg')].every((s) => s.getBoundingClientRect().right <= document.documentElement.clientWidth + 0.5)`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout-time.Second))))
		if wide := eval[string](p, "look for overflow "+at, `(() => {
			const w = document.documentElement.clientWidth;
			const el = [...document.querySelectorAll('main *')].find((e) => e.getClientRects().length && e.getBoundingClientRect().right > w + 0.5 && !e.closest('.visually-hidden'));
			if (el) return el.outerHTML.slice(0, 200);
			const sw = document.documentElement.scrollWidth;
			return sw > w ? 'the page scrolls sideways: ' + sw + ' > ' + w + ', widened by ' + [...document.querySelectorAll('body *')]
				.filter((e) => e.getBoundingClientRect().right > w + 0.5 && e.parentElement.getBoundingClientRect().right <= w + 0.5)
				.map((e) => e.outerHTML.slice(0, 120)).join(' | ') : '';
		})()`); wide != "" {
			p.failShot()
			p.t.Fatalf("%s: %s overflows: %s", p.name, at, wide)
		}
		p.axe(at)
	}
}

// TestBrowserEventWords checks the Activity panel's wording in the
// browser, one event type at a time: each reads as a sentence with the
// person's name and address, the instrument and the slot, and without the
// raw action, object or path, which go to the details instead.
func TestBrowserEventWords(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	p := newPerson(t, "words")
	p.do("open the console", chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.ID("login-form")))

	const setup = `const names = new m.Names();
		names.addUsers([{id: 'u-sam', name: 'Sam Support', email: 'support@example.org'}, {id: 'u-ben', name: 'Ben Okafor', email: 'ben@example.org'},
			{id: 'u-maya', name: 'Maya Manager', email: 'manager@example.org'}]);
		names.addResources([{id: 'r-conf', name: 'Confocal LSM 900'}]);
		names.addProjects([{id: 'p-neuro', code: 'NEURO', name: 'Neuro Imaging'}]);
		const sam = {id: 'u-sam', name: 'Sam Support'}, ben = {id: 'u-ben', name: 'Ben Okafor'};
		const as = {actor: sam, subject: ben, impersonation_id: 'imp-1'};`
	// One case after another, not as subtests: the page belongs to this
	// test's goroutine.
	for _, tt := range eventWordCases {
		got := eval[string](p, "word "+tt.name, `import('/js/views/eventwords.js').then((m) => { `+setup+` return m.eventSentence(`+tt.event+`, names); })`)
		for _, want := range tt.want {
			if !strings.Contains(got, want) {
				t.Errorf("%s reads %q, want %q in it", tt.name, got, want)
			}
		}
		for _, raw := range tt.not {
			if strings.Contains(got, raw) {
				t.Errorf("%s reads %q, with the raw %q", tt.name, got, raw)
			}
		}
		details := eval[string](p, "details of "+tt.name, `import('/js/views/eventwords.js').then((m) => { `+setup+`
			return m.eventDetails(`+tt.event+`, names).map(([k, v]) => k + ': ' + v).join('\n'); })`)
		for _, raw := range tt.not {
			if raw != "(" && !strings.Contains(details, strings.TrimSpace(raw)) {
				t.Errorf("%s's details %q lack the raw %q", tt.name, details, raw)
			}
		}
	}

	p.collapsesViews()
	p.countsForThePictures()
}

// eventWordCases are events of every type, each with what its sentence
// must say and the raw fields it must leave to the details.
var eventWordCases = []struct {
	name, event string
	want        []string
	not         []string
}{
	{"RefusedBooking", `{...as, type: 'action.denied', action: 'booking.create', object: 'resource:r-conf 2026-12-03T10:00:00Z/2026-12-03T11:00:00Z',
		outcome: 'denied', reason: 'Ben has not completed Confocal Basics.'}`,
		[]string{"Sam Support (support@example.org), acting as Ben Okafor, tried to book Confocal LSM 900 for ", "— refused: Ben has not completed Confocal Basics."},
		[]string{"resource:", "booking.create", "r-conf"}},
	{"ViewResources", `{...as, type: 'action.allowed', action: 'resource.list', object: 'GET /api/v1/resources', outcome: 'allowed'}`,
		[]string{"Sam Support (support@example.org), acting as Ben Okafor, viewed resources"}, []string{"GET", "/api/v1", "resource.list"}},
	{"ViewBookings", `{...as, type: 'action.allowed', action: 'booking.own.list', object: 'GET /api/v1/bookings', outcome: 'allowed'}`,
		[]string{"viewed bookings"}, []string{"/api/v1"}},
	{"ViewProfile", `{...as, type: 'action.allowed', action: 'profile.read', object: 'GET /api/v1/profile', outcome: 'allowed'}`,
		[]string{"viewed the profile"}, []string{"/api/v1"}},
	{"ViewUnknownPath", `{...as, type: 'action.allowed', action: 'x.read', object: 'GET /api/v1/elsewhere', outcome: 'allowed'}`,
		[]string{"opened /api/v1/elsewhere"}, nil},
	{"Booked", `{...as, type: 'booking.created', action: 'booking.create', object: 'booking:b-1', outcome: 'created',
		reason: 'Flow Cytometer, 2026-12-07T09:00:00Z to 2026-12-07T10:00:00Z'}`,
		[]string{"Sam Support (support@example.org), acting as Ben Okafor, booked Flow Cytometer for "}, []string{"booking:", "2026-12-07T"}},
	{"Cancelled", `{...as, type: 'booking.cancelled', action: 'booking.own.cancel', object: 'booking:b-1', outcome: 'cancelled'}`,
		[]string{"acting as Ben Okafor, cancelled a booking."}, []string{"booking:"}},
	{"Started", `{...as, type: 'impersonation.started', action: 'impersonation.start', object: 'ticket:SUP-42', outcome: 'started', reason: 'Ben cannot book'}`,
		[]string{"Sam Support (support@example.org) started acting as Ben Okafor. Reason: Ben cannot book (ticket SUP-42)."}, []string{"ticket:"}},
	{"EndedByManager", `{...as, type: 'impersonation.ended', action: 'impersonation.end', object: 'ended_by:u-maya Maya Manager (manager@example.org)',
		outcome: 'revoked', reason: 'Ben cannot book'}`,
		[]string{"Sam Support (support@example.org) stopped acting as Ben Okafor: Maya Manager (manager@example.org) ended it."}, []string{"ended_by"}},
	{"EndedOnExpiry", `{...as, type: 'impersonation.ended', action: 'impersonation.end', object: 'ended_by:', outcome: 'expired'}`,
		[]string{"stopped acting as Ben Okafor: its time ran out."}, []string{"ended_by"}},
	{"Refused", `{actor: sam, subject: ben, type: 'impersonation.denied', outcome: 'denied', reason: 'Ben is held by another agent.'}`,
		[]string{"Sam Support (support@example.org) was refused acting as Ben Okafor: Ben is held by another agent."}, nil},
	{"PolicyChanged", `{actor: sam, subject: sam, type: 'policy.changed', action: 'policy.update', object: 'p, support, *, booking, create', outcome: 'added'}`,
		[]string{"Sam Support (support@example.org) added the rule: support may create booking."}, []string{"p, "}},
	{"Suspended", `{actor: sam, subject: ben, type: 'user.suspended', action: 'user.suspend', object: 'user:u-ben', outcome: 'suspended', reason: 'Ben Okafor'}`,
		[]string{"Sam Support (support@example.org) suspended Ben Okafor."}, []string{"user:"}},
	{"Renamed", `{...as, type: 'user.renamed', action: 'profile.rename', object: 'user:u-ben', outcome: 'renamed', reason: 'Renamed from "Ben" to "Benjamin".'}`,
		[]string{"acting as Ben Okafor, changed the name. Renamed from \"Ben\" to \"Benjamin\"."}, []string{"user:"}},
	{"SignIn", `{actor: ben, subject: ben, type: 'auth.login', action: 'session.start', outcome: 'signed_in'}`,
		[]string{"Ben Okafor signed in (ben@example.org)."}, []string{"session.start"}},
	{"SignOut", `{actor: ben, subject: ben, type: 'auth.logout', action: 'session.end', outcome: 'signed_out'}`,
		[]string{"Ben Okafor signed out (ben@example.org)."}, nil},
	{"AuditRefused", `{actor: sam, subject: ben, type: 'audit.refused', action: 'action.allowed', outcome: 'refused', reason: 'the event would carry 20000 bytes'}`,
		[]string{"Sam Support (support@example.org)’s request was refused: it was too large to record (the event would carry 20000 bytes)."}, nil},
	{"Requested", `{actor: sam, subject: ben, type: 'request.created', action: 'impersonation.request', object: 'request:r-1', outcome: 'consent', reason: 'Ben cannot book'}`,
		[]string{"Sam Support (support@example.org) asked to act as Ben Okafor (needs their consent). Reason: Ben cannot book."}, []string{"request:"}},
	{"Allowed", `{actor: ben, subject: ben, type: 'request.approved', action: 'impersonation.request', object: 'request:r-1', outcome: 'approved', reason: 'fine'}`,
		[]string{"Ben Okafor (ben@example.org) allowed the request to act as Ben Okafor. Note: fine."}, []string{"request:"}},
	{"OneApproval", `{actor: sam, subject: ben, type: 'request.approved', action: 'impersonation.request', object: 'request:r-1', outcome: 'approval 1 of 2'}`,
		[]string{"approved the request to act as Ben Okafor (approval 1 of 2)."}, []string{"request:"}},
	{"RequestRefused", `{actor: ben, subject: ben, type: 'request.denied', action: 'impersonation.request', object: 'request:r-1', outcome: 'denied', reason: 'not today'}`,
		[]string{"refused the request to act as Ben Okafor. Note: not today."}, nil},
	{"RequestExpired", `{actor: sam, subject: ben, type: 'request.expired', action: 'impersonation.request', object: 'request:r-1', outcome: 'expired'}`,
		[]string{"The request of Sam Support (support@example.org) to act as Ben Okafor expired unanswered."}, nil},
	{"Revealed", `{...as, type: 'field.revealed', action: 'personal.reveal', object: 'field:phone', outcome: 'revealed', reason: 'Calling about the booking'}`,
		[]string{"acting as Ben Okafor, revealed Ben Okafor’s phone number. Reason: Calling about the booking."}, []string{"field:"}},
	{"SettingsChanged", `{actor: sam, subject: sam, type: 'settings.changed', action: 'settings.update', object: 'settings:impersonation', outcome: 'changed',
		reason: 'role:user direct → consent'}`,
		[]string{"changed the impersonation settings: role:user direct → consent."}, []string{"settings:impersonation"}},
	{"StartedModerated", `{...as, type: 'impersonation.started', action: 'impersonation.start', object: 'ticket:SUP-42', outcome: 'started_paused', reason: 'Ben cannot book'}`,
		[]string{"started acting as Ben Okafor. Reason: Ben cannot book (ticket SUP-42). The session is moderated: it waits for a moderator."}, []string{"started_paused"}},
	{"Paused", `{...as, type: 'impersonation.paused', action: 'impersonation.moderation', object: 'moderation:i-1:2', outcome: 'paused',
		reason: 'No moderator is watching; the session ends at 09:31:00 UTC unless one opens it.'}`,
		[]string{"The session of Sam Support (support@example.org) as Ben Okafor paused: No moderator is watching; the session ends at 09:31:00 UTC unless one opens it."},
		[]string{"moderation:"}},
	{"Resumed", `{...as, type: 'impersonation.resumed', action: 'impersonation.moderation', object: 'moderation:i-1:1', outcome: 'resumed', reason: 'Moderated by Maya Manager.'}`,
		[]string{"The session of Sam Support (support@example.org) as Ben Okafor resumed. Moderated by Maya Manager."}, []string{"moderation:"}},
	{"AlertRaised", `{...as, type: 'alert.raised', action: 'alert.raise', object: 'alert:refusals:imp-1', outcome: 'refusals',
		reason: "3 refusals within 10 minutes in Sam Support's session as Ben Okafor."}`,
		[]string{"Alert: 3 refusals within 10 minutes in Sam Support's session as Ben Okafor."}, []string{"alert:", "alert.raise"}},
	{"AlertAcknowledged", `{actor: {id: 'u-maya', name: 'Maya Manager'}, subject: {id: 'u-maya', name: 'Maya Manager'}, impersonation_id: 'imp-1',
		type: 'alert.acknowledged', action: 'alert.acknowledge', object: 'alert:refusals:imp-1', outcome: 'refusals', reason: 'Talked to Sam: Ben asked for it'}`,
		[]string{"Maya Manager (manager@example.org) acknowledged the alert on many refusals in one session: Talked to Sam: Ben asked for it."},
		[]string{"alert:", "alert.acknowledge"}},
	{"AlertAcknowledgedWithoutNote", `{actor: {id: 'u-maya', name: 'Maya Manager'}, subject: {id: 'u-maya', name: 'Maya Manager'},
		type: 'alert.acknowledged', action: 'alert.acknowledge', object: 'alert:off_hours:imp-1', outcome: 'off_hours'}`,
		[]string{"Maya Manager (manager@example.org) acknowledged the alert on a session started outside the facility’s hours without a note."},
		[]string{"alert:", "off_hours"}},
	{"SinkAdded", `{actor: sam, subject: sam, type: 'sink.created', action: 'sink.create', object: 'sink:s-1', outcome: 'created',
		reason: '"SIEM": every event to https://siem.example.org/hook as jsonl'}`,
		[]string{`Sam Support (support@example.org) added the audit sink "SIEM": every event to https://siem.example.org/hook as jsonl.`},
		[]string{"sink:s-1", "sink.create"}},
	{"SinkChanged", `{actor: sam, subject: sam, type: 'sink.changed', action: 'sink.update', object: 'sink:s-1', outcome: 'changed',
		reason: 'name SIEM → SOC; enabled true → false'}`,
		[]string{"Sam Support (support@example.org) changed the audit sink: name SIEM → SOC; paused."}, []string{"sink:s-1", "sink.update"}},
	{"SinkRemoved", `{actor: sam, subject: sam, type: 'sink.removed', action: 'sink.remove', object: 'sink:s-1', outcome: 'removed',
		reason: '"SOC": auth.login to syslog.example.org:514 as cef (paused)'}`,
		[]string{`Sam Support (support@example.org) removed the audit sink "SOC": auth.login to syslog.example.org:514 as cef (paused).`},
		[]string{"sink:s-1", "sink.remove"}},
	{"SinkTested", `{actor: sam, subject: sam, type: 'sink.tested', action: 'sink.test', object: 'sink:s-1', outcome: 'delivered',
		reason: 'The test record was acknowledged.'}`,
		[]string{"Sam Support (support@example.org) sent a test record to the audit sink: delivered."}, []string{"sink:s-1", "sink.test"}},
	{"SinkTestFailed", `{actor: sam, subject: sam, type: 'sink.tested', action: 'sink.test', object: 'sink:s-1', outcome: 'failed',
		reason: 'the webhook answered 503 Service Unavailable'}`,
		[]string{"Sam Support (support@example.org) sent a test record to the audit sink: failed: the webhook answered 503 Service Unavailable."},
		[]string{"sink:s-1", "sink.test"}},
	{"UnknownPerson", `{actor: {id: 'u-who', name: 'Who Ever'}, subject: {id: 'u-who', name: 'Who Ever'}, type: 'auth.login'}`,
		[]string{"Who Ever signed in."}, []string{"("}},
}

// collapsesViews checks which events share a row of repeated views.
func (p *person) collapsesViews() {
	p.t.Helper()
	// Repeated views collapse; a denial between them breaks the row.
	rows := eval[string](p, "collapse views", `import('/js/views/eventwords.js').then((m) => {
		const view = (seq, path, imp) => ({seq, type: 'action.allowed', outcome: 'allowed', object: 'GET ' + path, impersonation_id: imp});
		const list = [view(9, '/api/v1/resources', 'a'), view(8, '/api/v1/resources', 'a'), view(7, '/api/v1/resources', 'a'),
			{seq: 6, type: 'action.denied', object: 'GET /api/v1/resources', impersonation_id: 'a'},
			view(5, '/api/v1/resources', 'a'), view(4, '/api/v1/resources', 'b'), view(3, '/api/v1/bookings', 'b'), view(2, '/api/v1/bookings', 'b')];
		return m.collapseViews(list).map((r) => r.events.map((e) => e.seq).join(',')).join(' ');
	})`)
	if rows != "9,8,7 6 5 4 3,2" {
		p.t.Fatalf("collapsed rows %q, want %q", rows, "9,8,7 6 5 4 3,2")
	}
}

// countsForThePictures checks the numbers the pictures draw.
func (p *person) countsForThePictures() {
	p.t.Helper()
	// The pictures' numbers: today's sessions with their refusals, and
	// events per 5 minutes with the denials.
	facts := eval[string](p, "count for the pictures", `import('/js/views/activitycharts.js').then((m) => {
		const day = new Date('2026-12-03T00:00:00Z');
		const ev = (seq, time, type, imp) => ({seq, time, type, impersonation_id: imp, actor: {name: 'Sam'}, subject: {name: 'Ben'}});
		const list = [ev(1, '2026-12-03T09:00:00Z', 'impersonation.started', 'a'), ev(2, '2026-12-03T09:01:00Z', 'action.denied', 'a'),
			ev(3, '2026-12-03T09:02:00Z', 'impersonation.ended', 'a'), ev(4, '2026-12-03T09:30:00Z', 'action.allowed', 'b'),
			ev(5, '2026-12-03T09:31:00Z', 'impersonation.denied', ''), ev(6, '2026-12-03T06:59:00Z', 'auth.login', '')];
		const sessions = m.todaySessions(list, day).map((s) => [s.id, s.start.toISOString(), s.end ? s.end.toISOString() : 'now', s.refusals, s.carried].join(' '));
		const buckets = m.rateBuckets(list, new Date('2026-12-03T09:32:00Z')).filter((b) => b.total).map((b) => b.start.toISOString().slice(11, 16) + ':' + b.total + '/' + b.denied);
		const berlin = m.dayStartIn(new Date('2026-12-03T23:30:00Z'), 'Europe/Berlin').toISOString();
		return [...sessions, buckets.join(' '), berlin].join(' | ');
	})`)
	want := "b 2026-12-03T00:00:00.000Z now 0 true | a 2026-12-03T09:00:00.000Z 2026-12-03T09:02:00.000Z 1 false | 09:00:3/1 09:30:2/1 | 2026-12-03T23:00:00.000Z"
	if facts != want {
		p.t.Fatalf("the pictures count\n%s\nwant\n%s", facts, want)
	}
}
