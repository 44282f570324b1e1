package server_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The axe-core release the browser tests check every page state with,
// fetched from the npm registry and checked against the integrity the
// registry publishes for it. STANDIN_AXE names a local axe.min.js instead.
const (
	axeVersion   = "4.14.1"
	axeTarball   = "https://registry.npmjs.org/axe-core/-/axe-core-" + axeVersion + ".tgz"
	axeIntegrity = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
)

// axeScript is axe.min.js, loaded once per test binary.
var axeScript = sync.OnceValues(loadAxe)

// loadAxe reads axe.min.js from STANDIN_AXE, from the user's cache, or
// from the npm registry (then caching it).
func loadAxe() (string, error) {
	if p := os.Getenv("STANDIN_AXE"); p != "" {
		b, err := os.ReadFile(p)
		return string(b), err
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	cached := filepath.Join(dir, "standin", "axe-core-"+axeVersion+".min.js")
	if b, err := os.ReadFile(cached); err == nil {
		return string(b), nil
	}
	src, err := fetchAxe()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err == nil {
		tmp := cached + ".tmp"
		if os.WriteFile(tmp, []byte(src), 0o644) == nil {
			_ = os.Rename(tmp, cached)
		}
	}
	return src, nil
}

// fetchAxe downloads the release tarball, checks its integrity and takes
// axe.min.js out of it.
func fetchAxe() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, axeTarball, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch axe-core: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch axe-core: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", fmt.Errorf("fetch axe-core: %w", err)
	}
	sum := sha512.Sum512(body)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != axeIntegrity {
		return "", fmt.Errorf("axe-core %s: integrity %s, want %s", axeVersion, got, axeIntegrity)
	}
	gz, err := gzip.NewReader(strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("axe-core %s: no package/axe.min.js: %w", axeVersion, err)
		}
		if h.Name == "package/axe.min.js" {
			b, err := io.ReadAll(tr)
			return string(b), err
		}
	}
}

// axeViolation is one rule axe-core found broken, with the elements.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// axe checks the page as it stands against WCAG 2.1 A and AA with
// axe-core and fails the test on any violation, naming the state.
func (p *person) axe(state string) {
	p.t.Helper()
	src, err := axeScript()
	if err != nil {
		p.t.Fatalf("axe-core: %v", err)
	}
	eval[bool](p, "load axe-core", src+"\n;true")
	// Colours are judged once the page stands still: a dialog fading in
	// is, for a moment, of too little contrast. Endless animations (a
	// spinner) are not waited for.
	// A live page may start an animation while axe-core runs (a queued
	// toast shows as another leaves): a run that finds violations is made
	// again once that has settled, and only what it finds again counts.
	raw := eval[string](p, "run axe-core on "+state, `(async () => {
		const still = () => Promise.all(document.getAnimations()
			.filter((a) => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
			.map((a) => a.finished.catch(() => {})));
		const run = () => axe.run(document, {
			runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
			resultTypes: ['violations'],
		});
		await still();
		let r = await run();
		if (r.violations.length) {
			await new Promise((done) => setTimeout(done, 300));
			await still();
			r = await run();
		}
		return JSON.stringify(r.violations);
	})()`)
	var violations []axeViolation
	if err := json.Unmarshal([]byte(raw), &violations); err != nil {
		p.t.Fatalf("axe-core on %s: %v", state, err)
	}
	if len(violations) == 0 {
		return
	}
	var b strings.Builder
	for _, v := range violations {
		fmt.Fprintf(&b, "\n  %s (%s): %s", v.ID, v.Impact, v.Help)
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "\n    %v %s", n.Target, n.HTML)
		}
	}
	p.failShot()
	p.t.Fatalf("%s: axe-core finds %d violations on %s:%s", p.name, len(violations), state, b.String())
}
