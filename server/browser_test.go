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
