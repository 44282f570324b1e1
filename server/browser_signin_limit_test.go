package server_test

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var waitInWords = regexp.MustCompile(`^Too many failed sign-in attempts\. Try again in (1 minute|[0-9]+ seconds)\.$`)

// TestBrowserSignInWait: when sign-in must wait, the form says how long,
// in the server's words.
func TestBrowserSignInWait(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	// The browser connects from the same loopback address as this client.
	c := newClient(t, srv.URL)
	for range 5 {
		if r := c.signIn("ben@example.org", "not-his"); r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d %s", r.Status, r.Body)
		}
	}
	ctx := newBrowser(t)
	stepCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(stepCtx,
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), "ben@example.org"),
		chromedp.SendKeys(chromedp.ID("password"), "demo"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	); err != nil {
		t.Fatalf("sign in after 5 wrong passwords: %v", err)
	}
	msg, err := chromedp.Run(stepCtx, chromedp.Text(chromedp.ID("login-error")))
	if err != nil {
		t.Fatal(err)
	}
	// About a minute, less the time the browser took to start.
	if !waitInWords.MatchString(msg) {
		t.Fatalf("the form reads %q, want the server's sentence with the wait", msg)
	}
}
