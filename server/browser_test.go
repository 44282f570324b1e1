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
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// saveScreenshot writes a PNG of the page to STANDIN_SCREENSHOTS (the docs
// folder when refreshing README's pictures) or to the test's temp dir.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("STANDIN_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserSignInAndOut(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ctx := newBrowser(t)

	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}

	must("open the console", chromedp.Do(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	))
	saveScreenshot(t, ctx, "login")

	// A wrong password is explained in words and keeps the form.
	must("sign in with a wrong password", chromedp.Do(ctx,
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

	must("sign in as Ada", chromedp.Do(ctx,
		chromedp.Clear(chromedp.ID("email")),
		chromedp.Clear(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.org"),
		chromedp.SendKeys(chromedp.ID("password"), "demo"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("whoami")),
	))
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("whoami")))
	must("read who is signed in", err)
	if !strings.Contains(who, "Ada Lovelace") {
		t.Fatalf("signed in as %q, want Ada Lovelace", who)
	}
	// The live connection comes up over /ws with the session cookie.
	must("wait for the live connection", chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="live"]`)),
	))
	saveScreenshot(t, ctx, "home")

	// A reload keeps the session: no login page.
	must("reload", chromedp.Do(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("whoami")),
	))

	must("sign out", chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	))
}
