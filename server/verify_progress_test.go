package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"standin/server"
)

// A verification of the whole log that does not finish within the wait
// (minutes, on a large log) is answered with how far it has got and the
// run to ask for again; asking for that run collects its result. The
// Activity panel shows the progress, then the outcome.
func TestVerifyReportsProgress(t *testing.T) {
	t.Parallel()
	srv := mustRun(t, server.Config{DataDir: t.TempDir(), VerifyWait: time.Nanosecond})
	owner := newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")

	r := owner.do(http.MethodGet, "/api/v1/activity/verify", nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("verify: %d %s, want 202 while it runs", r.Status, r.Body)
	}
	running := r.JSON(t)
	run, ok := running["run"].(float64)
	if running["state"] != "running" || !ok || run < 1 || running["head"].(float64) < 1 {
		t.Fatalf("verify while it runs: %v", running)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		r := owner.do(http.MethodGet, fmt.Sprintf("/api/v1/activity/verify?run=%.0f", run), nil)
		if r.Status == http.StatusOK {
			v := r.JSON(t)
			if v["ok"] != true || v["run"] != run || v["checked"].(float64) < 1 {
				t.Fatalf("run %.0f collected: %v", run, v)
			}
			break
		}
		if r.Status != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("run %.0f: %d %s", run, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := owner.do(http.MethodGet, "/api/v1/activity/verify?run=x", nil); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("a run that is no number: %d %s", r.Status, r.Body)
	}

	// The progress shows until the panel's next ask, 1.5 s later: an
	// observer set up before the panel opens sees it whenever it shows.
	admin := newPerson(t, "admin-progress")
	admin.signIn(srv.URL, "admin@example.org")
	eval[bool](admin, "watch for the progress", `(() => {
		window.sawProgress = '';
		new MutationObserver(() => {
			const bar = document.querySelector('#chain-status[data-state="checking"] progress');
			const text = document.getElementById('chain-progress-text');
			if (bar && text && !window.sawProgress) window.sawProgress = text.textContent;
		}).observe(document.body, { subtree: true, childList: true, attributes: true });
		return true;
	})()`)
	admin.openPage("activity")
	admin.waitText("the outcome", `#chain-status[data-state="ok"]`, "Chain verified")
	if saw := eval[string](admin, "read what was seen", `window.sawProgress`); !strings.Contains(saw, " events (") {
		t.Errorf("the panel showed no progress before the outcome (saw %q)", saw)
	}
	admin.checkPage("the chain verified after its progress")
}
