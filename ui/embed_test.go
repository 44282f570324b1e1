package ui

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"
)

func readAsset(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(Files(), name)
	if err != nil {
		t.Fatalf("asset %s: %v", name, err)
	}
	return string(b)
}

func TestFilesHasAppAtRoot(t *testing.T) {
	for _, name := range []string{
		"index.html", "style.css", "favicon.svg",
		"js/app.js", "js/api.js", "js/live.js",
	} {
		if _, err := fs.Stat(Files(), name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The server's Content-Security-Policy allows scripts and styles from 'self'
// only, so the markup must not rely on anything inline or on other origins.
func TestIndexFitsContentSecurityPolicy(t *testing.T) {
	html := readAsset(t, "index.html")

	for _, m := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(m, "src=") {
			t.Errorf("inline script: %s", m)
		}
	}
	if m := regexp.MustCompile(`(?is)<style\b`).FindString(html); m != "" {
		t.Errorf("inline <style> element")
	}
	if m := regexp.MustCompile(`(?is)<[^>]*\sstyle\s*=`).FindString(html); m != "" {
		t.Errorf("inline style attribute: %s", m)
	}
	if m := regexp.MustCompile(`(?is)<[^>]*\son[a-z]+\s*=`).FindString(html); m != "" {
		t.Errorf("inline event handler: %s", m)
	}
}

func TestAssetsLoadNothingFromOtherOrigins(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`)
	err := fs.WalkDir(Files(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		text := readAsset(t, name)
		for _, m := range external.FindAllString(text, -1) {
			if strings.Contains(m, "www.w3.org/") { // XML namespace names, not fetched
				continue
			}
			t.Errorf("%s refers to another origin: %s", name, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIndexReferencesExist(t *testing.T) {
	html := readAsset(t, "index.html")
	refs := regexp.MustCompile(`(?i)\s(?:src|href)="(/[^"#?]*)"`).FindAllStringSubmatch(html, -1)
	if len(refs) == 0 {
		t.Fatal("index.html references no assets")
	}
	for _, m := range refs {
		name := strings.TrimPrefix(m[1], "/")
		if _, err := fs.Stat(Files(), name); err != nil {
			t.Errorf("index.html refers to %s: %v", m[1], err)
		}
	}
}

func TestModuleImportsResolve(t *testing.T) {
	imports := regexp.MustCompile(`(?m)^import\b[^'"]*['"]([^'"]+)['"]`)
	matches, err := fs.Glob(Files(), "js/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range matches {
		for _, m := range imports.FindAllStringSubmatch(readAsset(t, name), -1) {
			target := path.Join(path.Dir(name), m[1])
			if _, err := fs.Stat(Files(), target); err != nil {
				t.Errorf("%s imports %s: %v", name, m[1], err)
			}
		}
	}
}

// Browser tests find the app's parts by these ids.
func TestStableElementIDs(t *testing.T) {
	html := readAsset(t, "index.html")
	for _, id := range []string{
		"login-form", "email", "password", "login-submit", "login-error",
		"home", "whoami", "whoami-role", "logout", "conn-status", "notice",
	} {
		if n := strings.Count(html, `id="`+id+`"`); n != 1 {
			t.Errorf("id %q appears %d times, want 1", id, n)
		}
	}
}
