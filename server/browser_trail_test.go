package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// caseViews are the actions the support case may record besides its
// decisions: views of the user's data (and of the log about them), each
// one event. The console's bookkeeping (session, permissions,
// notifications, presence) is none of them.
var caseViews = []string{"user.read", "user.list", "profile.read", "resource.list", "project.list", "booking.list", "audit.read"}

// TestBrowserSupportCaseTrail walks the seed's support case in a real
// browser as the agent (sign in → find Ben → check access → impersonate →
// try to book the confocal → exit) and reads what the log holds of it:
// the sign-in, the start, the one refused booking with its reason and the
// end, each once, and otherwise only views of Ben's data, none of the
// console's bookkeeping.
func TestBrowserSupportCaseTrail(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	owner := newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	const reason = "Ben cannot book the confocal"

	sam := newPerson(t, "sam")
	sam.at(viewports[0])
	evs := writtenBy(t, owner, func() {
		sam.signIn(srv.URL, "support@example.org")
		sam.do("search for Ben", chromedp.SendKeys(chromedp.ID("user-search"), "ben"))
		sam.do("the list shows the search's answer", chromedp.WaitVisible(chromedp.CSS(`#user-results[data-query="ben"] tr[data-user-id]`)))
		sam.clickText("open Ben's page", "#user-results .person__name", "Ben Okafor")
		sam.waitText("Ben's page says what blocks him", "#user-blocks", "Confocal Basics")
		sam.checkConfocalAccess(nil)
		sam.impersonate("from Ben's page", `main [data-action="user-actions"]`, reason)
		sam.do("the facility app as Ben", chromedp.WaitVisible(chromedp.ID("resource-list")))
		sam.waitText("the resources are listed", "#resource-list .resource", "Confocal")
		eval[bool](sam, "pick the confocal", `(() => {
			const card = [...document.querySelectorAll('#resource-list .resource')].find((e) => e.textContent.includes('Confocal'));
			card.querySelector('[data-book]').click();
			return true;
		})()`)
		sam.do("book", chromedp.Click(chromedp.ID("booking-submit")))
		sam.waitText("the refusal names the missing training", "#booking-error", "Confocal Basics")
		sam.do("exit", chromedp.Click(chromedp.ID("impersonation-exit")), chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")))
		sam.waitText("back on Ben's page, which lists the refusal", "#blocks-refusals", "Confocal Basics")
	})

	counts := map[string]int{}
	var lines []string
	for _, e := range evs {
		typ, action := e["type"].(string), fmt.Sprint(e["action"])
		counts[typ]++
		lines = append(lines, fmt.Sprintf("#%v %s %s %v", e["seq"], typ, action, e["object"]))
		if typ == "action.allowed" && !slices.Contains(caseViews, action) {
			t.Errorf("the case recorded %s %v, which is not a view of the user's data", action, e["object"])
		}
		if obj := fmt.Sprint(e["object"]); strings.Contains(obj, "/api/v1/session") || strings.Contains(obj, "/api/v1/notifications") ||
			strings.Contains(obj, "/api/v1/permissions") || strings.Contains(obj, "/api/v1/presence") {
			t.Errorf("the console's bookkeeping was recorded: %s %s %s", typ, action, obj)
		}
	}
	for _, typ := range []string{"auth.login", "impersonation.started", "action.denied", "impersonation.ended"} {
		if counts[typ] != 1 {
			t.Errorf("the case recorded %d %s events, want 1", counts[typ], typ)
		}
	}
	for _, e := range evs {
		if e["type"] == "action.denied" && !strings.Contains(fmt.Sprint(e["reason"]), "Confocal Basics") {
			t.Errorf("the refusal's reason is %q, want the missing training", e["reason"])
		}
	}
	t.Logf("the support case in the browser recorded %d events:\n%s", len(evs), strings.Join(lines, "\n"))
	if t.Failed() {
		return
	}
	if r := owner.verify(); r.Status != http.StatusOK {
		t.Errorf("verify: %d %s", r.Status, r.Body)
	}
}
