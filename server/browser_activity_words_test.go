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
	agent := newClient(t, srv.URL)
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
	for range 3 {
		if r := agent.do(http.MethodGet, "/api/v1/resources", nil); r.Status != http.StatusOK {
			t.Fatalf("resources as Ben: %d %s", r.Status, r.Body)
		}
	}

	denial := `#activity-feed [data-type="action.denied"] .feed__text`
	manager.waitText("the refusal reads as a sentence", denial, "tried to book Confocal LSM 900 for ")
	text := manager.text(denial)
	for _, want := range []string{"Sam Support (support@example.org), acting as Ben Okafor,", "refused:", "Confocal Basics"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the refusal reads %q, want %q in it", text, want)
		}
	}
	for _, raw := range []string{"booking.create", "resource:", "/api/v1"} {
		if strings.Contains(text, raw) {
			t.Fatalf("the refusal's sentence %q shows the raw %q", text, raw)
		}
	}
	if facts := manager.text(`#activity-feed [data-type="action.denied"] .feed__facts`); !strings.Contains(facts, "booking.create") || !strings.Contains(facts, "resource:"+ids.confocal) {
		t.Fatalf("the refusal's details read %q, want the raw action and object", facts)
	}

	views := `#activity-feed .feed__item--views`
	manager.waitText("three views show as one row", views+`[data-count="3"] .feed__text`, "viewed resources ×3")
	if n := eval[int](manager, "count the rows of views", `document.querySelectorAll('#activity-feed > li[data-type="action.allowed"]').length`); n != 1 {
		t.Fatalf("the feed shows the views in %d rows, want 1", n)
	}
	bar := `#sessions-timeline [data-session-id][data-running="true"][data-refusals="1"]`
	manager.waitText("the timeline shows the session with its refusal", bar, "1 refusal")
	if label := manager.text(bar); !strings.Contains(label, "Sam Support as Ben Okafor") || !strings.Contains(label, "now") {
		t.Fatalf("the session's bar reads %q", label)
	}
	manager.do("the rate chart marks the denial", chromedp.WaitVisible(chromedp.CSS(`#event-rate svg[data-denied="1"] .rate__bar--denied`)))
	if name := eval[string](manager, "read the rate chart's name", `document.querySelector('#event-rate svg').getAttribute('aria-label')`); !strings.Contains(name, "1 denial") {
		t.Fatalf("the rate chart is named %q", name)
	}
	manager.atBothWidths("the panel with a session, a refusal and repeated views")

	manager.do("expand the repeated views", chromedp.Click(chromedp.CSS(views+` .feed__repeats-summary`)))
	manager.do("the three views show with their times",
		chromedp.WaitVisible(chromedp.CSS(views+` .feed--repeats > li:nth-child(3) time`)))
	if n := eval[int](manager, "count the views", `document.querySelectorAll('#activity-feed .feed--repeats > li[data-type="action.allowed"]').length`); n != 3 {
		t.Fatalf("the expanded row shows %d views, want 3", n)
	}
	manager.atBothWidths("the repeated views expanded")

	// A fourth view arrives live: the row grows to ×4 and stays open, and
	// the running session's bar reaches the new moment.
	endBefore := eval[string](manager, "read where the bar ends", `document.querySelector('`+bar+`').dataset.end`)
	if r := agent.do(http.MethodGet, "/api/v1/resources", nil); r.Status != http.StatusOK {
		t.Fatalf("resources as Ben: %d %s", r.Status, r.Body)
	}
	manager.waitText("the live view extends the row", views+`[data-count="4"] .feed__text`, "viewed resources ×4")
	if n := eval[int](manager, "count the views", `document.querySelectorAll('#activity-feed .feed--repeats > li[data-type="action.allowed"]').length`); n != 4 {
		t.Fatalf("the open row shows %d views after a live one, want 4", n)
	}
	manager.do("the running session's bar grows", void(chromedp.PollFunction[bool](`(sel, before) => {
		const el = document.querySelector(sel);
		return !!el && new Date(el.dataset.end) > new Date(before);
	}`, chromedp.WithPollingArgs(bar, endBefore), chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout-time.Second))))

	// Choosing the bar (Enter on it) filters the feed to the session.
	manager.do("choose the session's bar with Enter", chromedp.Focus(chromedp.CSS(bar)), chromedp.KeyEvent("\r"))
	manager.do("the bar is pressed", chromedp.WaitVisible(chromedp.CSS(`#sessions-timeline [data-session-id][aria-pressed="true"]`)))
	id := eval[string](manager, "read the session's id", `document.querySelector('`+bar+`').dataset.sessionId`)
	if still := eval[bool](manager, "see where the keyboard is", `document.activeElement === document.querySelector('`+bar+`')`); !still {
		t.Fatalf("after choosing the bar the keyboard is no longer on it")
	}
	if got := eval[string](manager, "read the session filter", `document.getElementById('f-session').value`); got != id {
		t.Fatalf("the session filter reads %q, want %q", got, id)
	}
	if hash := eval[string](manager, "read the address", `location.hash`); !strings.Contains(hash, "impersonation="+id) {
		t.Fatalf("the address after choosing the bar is %q", hash)
	}
	manager.waitText("the filtered feed shows the session's start", `#activity-feed [data-type="impersonation.started"]`, "started acting as Ben Okafor")
	if other := eval[int](manager, "count events of other sessions", `document.querySelectorAll('#activity-feed [data-type="auth.login"]').length`); other != 0 {
		t.Fatalf("the feed filtered to the session shows %d sign-ins", other)
	}
	manager.atBothWidths("the feed filtered to a session from the timeline")
	manager.do("wide again", chromedp.EmulateViewport(1366, 900))
	manager.shot("activity-glance")
	manager.noLoginPage("after reading the panel")
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
