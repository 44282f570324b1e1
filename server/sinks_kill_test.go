package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"standin/server/clustertest"
)

// TestSinkSurvivesKill: the console is killed (SIGKILL) while it delivers
// to a webhook, started again, and the webhook ends up with every event
// of the log after the sink's start, in seq order: at least once, with
// repeats only of what was sent before the kill.
func TestSinkSurvivesKill(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Nodes: 1, Env: []string{"STANDIN_SINK_ALLOW=127.0.0.1"}})
	base := c.Node(0).URL()
	admin, support := newClient(t, base), newClient(t, base)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")
	receiver := newSIEM(t)
	receiver.slow = 30 * time.Millisecond

	r := admin.post("/api/v1/sinks", map[string]any{"name": "SIEM", "kind": "webhook", "url": receiver.srv.URL})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	sink := r.JSON(t)
	if r := startImpersonation(support, userID(t, admin, "ben@example.org"), "Ben's bookings vanish"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}

	// Sam keeps looking at Ben's bookings: one audit event each.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/bookings", nil)
			if res, err := support.http.Do(req); err == nil {
				res.Body.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	receiver.waitCount(t, 40)
	c.Kill(0)
	killedAt := receiver.count()
	c.Start(0)
	receiver.waitCount(t, killedAt+40)
	stop()
	wg.Wait()

	// Every event after the sink's start, as the log holds them.
	from := int64(sink["from_seq"].(float64))
	var want []int64
	for cursor := ""; ; {
		page := admin.do(http.MethodGet, fmt.Sprintf("/api/v1/activity?limit=500&after_seq=%d&cursor=%s", from, cursor), nil).JSON(t)
		for _, e := range page["items"].([]any) {
			want = append(want, int64(e.(map[string]any)["seq"].(float64)))
		}
		if cursor, _ = page["next_cursor"].(string); cursor == "" {
			break
		}
	}
	if len(want) < 80 {
		t.Fatalf("only %d events after the sink's start", len(want))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := receiver.seqs()
		missing := 0
		have := map[int64]bool{}
		for _, s := range got {
			have[s] = true
		}
		for _, s := range want {
			if !have[s] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never reached the sink after the kill", missing, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := receiver.seqs()
	seen := map[int64]bool{}
	var top int64
	repeats := 0
	for _, s := range got {
		switch {
		case s > top:
			top = s
		case !seen[s]:
			t.Fatalf("seq %d arrived for the first time after seq %d", s, top)
		default:
			repeats++
		}
		seen[s] = true
	}
	receiver.mustBeSignedWith(t, sink["secret"].(string))
	t.Logf("%d events delivered across a kill, %d sent again after it", len(want), repeats)
}
