package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's Chromium. The binary under /usr/lib avoids the
// wrapper script's noise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STANDIN_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("Chromium not found: apt-get install chromium, or set STANDIN_CHROMIUM")
	return ""
}

// newBrowser starts a headless Chromium with a profile of its own: one per
// person in a test, so cookies never mix.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// A tab that is not in front keeps running timers and sockets at
		// full speed, as the console's tabs must for live updates.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser on the chromedp context itself: a browser started
	// under a shorter-lived child context would close with that context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// saveScreenshot writes a PNG of the page to STANDIN_SCREENSHOTS (the docs
// folder when refreshing README's pictures) or to the test's temp dir.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// screenshotDir is STANDIN_SCREENSHOTS, or the test's temp dir.
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("STANDIN_SCREENSHOTS"); dir != "" {
		return dir
	}
	return t.TempDir()
}

func TestBrowserSignInAndOut(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ctx := newBrowser(t)

	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			// A picture of the page says more than "deadline exceeded".
			if png, shotErr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); shotErr == nil {
				path := filepath.Join(screenshotDir(t), "failure.png")
				if os.WriteFile(path, png, 0o644) == nil {
					t.Logf("page at failure: %s", path)
				}
			}
			t.Fatalf("%s: %v", step, err)
		}
	}
	// Each step gets its own deadline, so a failing one leaves the browser
	// alive for the picture above.
	do := func(actions ...chromedp.Action[chromedp.Void]) error {
		stepCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return chromedp.Do(stepCtx, actions...)
	}

	must("open the console", do(
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	))
	saveScreenshot(t, ctx, "login")

	// A wrong password is explained in words and keeps the form.
	must("sign in with a wrong password", do(
		chromedp.SendKeys(chromedp.ID("email"), "ben@example.org"),
		chromedp.SendKeys(chromedp.ID("password"), "not-his"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("login-error")))
	must("read the error", err)
	if !strings.Contains(msg, "Wrong email or password") {
		t.Fatalf("login error reads %q", msg)
	}

	must("sign in as Ada", do(
		chromedp.SetValue(chromedp.ID("email"), "ada@example.org"),
		chromedp.SetValue(chromedp.ID("password"), "demo"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("whoami")),
	))
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("whoami")))
	must("read who is signed in", err)
	if !strings.Contains(who, "Ada Lovelace") {
		t.Fatalf("signed in as %q, want Ada Lovelace", who)
	}
	// The live connection comes up over /ws with the session cookie.
	must("wait for the live connection", do(
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#resource-list .resource`)),
	))
	saveScreenshot(t, ctx, "home")

	// A reload keeps the session: no login page.
	must("reload", do(
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("whoami")),
	))

	must("sign out", do(
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	))
}

// TestBrowserImpersonationWithoutSignIn starts an impersonation from the
// admin's page and exits it with the banner's button: the page switches to
// the user and back live, and never shows the sign-in page.
func TestBrowserImpersonationWithoutSignIn(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	tab := newBrowser(t)

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		stepCtx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(stepCtx, actions...); err != nil {
			shotCtx, cancelShot := context.WithTimeout(tab, 5*time.Second)
			defer cancelShot()
			if png, shotErr := chromedp.Run(shotCtx, chromedp.FullScreenshot(100)); shotErr == nil {
				path := filepath.Join(screenshotDir(t), "failure.png")
				if os.WriteFile(path, png, 0o644) == nil {
					t.Logf("page at failure: %s", path)
				}
			}
			t.Fatalf("%s: %v", name, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("read #%s: %v", id, err)
		}
		return s
	}

	step("sign in as the admin",
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), "admin@example.org"),
		chromedp.SendKeys(chromedp.ID("password"), "demo"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)),
	)

	// Start through the API from the page, as the console's action menu
	// does; the page learns of the switch over its live connection.
	startCtx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	status, err := chromedp.Run(startCtx, chromedp.Evaluate[int](`(async () => {
		const session = await (await fetch('/api/v1/session')).json();
		const users = await (await fetch('/api/v1/users?q=ben')).json();
		const res = await fetch('/api/v1/impersonations', {
			method: 'POST',
			headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token},
			body: JSON.stringify({user_id: users.items[0].id, reason: 'Ben cannot book the confocal'}),
		});
		return res.status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || status != 201 {
		t.Fatalf("start impersonation: %d, %v", status, err)
	}

	step("the banner appears", chromedp.WaitVisible(chromedp.ID("impersonation-banner")))
	if who := text("whoami"); !strings.Contains(who, "Ben Okafor") {
		t.Fatalf("acting as %q, want Ben Okafor", who)
	}
	saveScreenshot(t, tab, "impersonating-banner")

	step("exit",
		chromedp.Click(chromedp.ID("impersonation-exit")),
		chromedp.WaitNotVisible(chromedp.ID("impersonation-banner")),
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)),
	)
	if who := text("whoami"); !strings.Contains(who, "Adrian Admin") {
		t.Fatalf("after exit the page shows %q, want Adrian Admin", who)
	}
	n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('#login-form').length`))
	if err != nil || n != 0 {
		t.Fatalf("the sign-in page appeared after exit (%d, %v)", n, err)
	}
}
