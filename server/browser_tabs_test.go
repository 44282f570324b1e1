package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"standin/server"
)

// TestBrowserTooManyTabs: a tab whose live connection the server refuses
// for too many tabs says so, does not retry in a loop, and comes back live
// when shown again once another tab has closed.
func TestBrowserTooManyTabs(t *testing.T) {
	t.Parallel()
	srv := mustRun(t, server.Config{DataDir: t.TempDir(), MaxSocketsPerSession: 1})
	browser := newPerson(t, "ada")
	// The first tab is one of its own, so that it can be closed.
	firstCtx, closeFirst := chromedp.NewContext(browser.ctx)
	t.Cleanup(closeFirst)
	if err := chromedp.Do(firstCtx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	first := &person{t: t, name: "ada-first-tab", ctx: firstCtx}
	first.listen()
	first.signIn(srv.URL, "ada@example.org")

	second := browser.newTab("ada-second-tab")
	// Count the sockets the page opens, from before its scripts run.
	ctx, cancel := context.WithTimeout(second.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		window.__sockets = 0;
		window.WebSocket = class extends window.WebSocket {
			constructor(...args) { super(...args); window.__sockets++; }
		};`}); err != nil {
		t.Fatalf("install the socket counter: %v", err)
	}
	second.do("open the console in a second tab",
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="limited"]`)),
	)
	if s := second.text("#conn-status"); !strings.Contains(s, "Too many tabs") {
		t.Fatalf("the refused tab's connection state reads %q", s)
	}
	title := eval[string](second, "read the state's explanation", `document.getElementById('conn-status').title`)
	if !strings.Contains(title, "too many tabs") {
		t.Fatalf("the state's explanation reads %q", title)
	}
	// No retry loop: a refused tab waits most of a minute before it
	// tries again (backing off from a dropped connection would have tried
	// three times by now).
	time.Sleep(3 * time.Second)
	if n := eval[int](second, "count the sockets", `window.__sockets`); n != 1 {
		t.Fatalf("the refused tab opened %d sockets in 3 s, want 1", n)
	}
	closeFirst()

	// Shown again, the tab tries at once; the server frees the first
	// tab's place a moment after it closed.
	second.front()
	for attempt := 1; ; attempt++ {
		eval[bool](second, "show the tab again", `document.dispatchEvent(new Event('visibilitychange')), true`)
		ok := eval[bool](second, "wait for the connection", `new Promise((resolve) => {
			const until = Date.now() + 5000;
			const poll = () => {
				const state = document.getElementById('conn-status').dataset.state;
				if (state === 'live') resolve(true);
				else if (Date.now() > until) resolve(false);
				else setTimeout(poll, 100);
			};
			poll();
		})`)
		if ok {
			break
		}
		if attempt == 5 {
			second.failShot()
			t.Fatal("the tab did not come back live once the other tab had closed")
		}
	}
	second.noLoginPage("after coming back")
}
