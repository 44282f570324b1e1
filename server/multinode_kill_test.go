package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
	"standin/server/clustertest"
)

// watcher follows the activity feed through the balancer as a console tab
// does: when its socket drops it reconnects, through the balancer, and
// resumes after the last seq it saw.
type watcher struct {
	c        *client
	first    string // the node it opens its first socket on, directly
	mu       sync.Mutex
	seen     []int64
	reopened int
}

func (w *watcher) last() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return 0
	}
	return w.seen[len(w.seen)-1]
}

// run follows until ctx ends.
func (w *watcher) run(ctx context.Context, from int64) {
	after := from
	for ctx.Err() == nil {
		if last := w.last(); last > 0 {
			after = last
		}
		if err := w.follow(ctx, after); err != nil && ctx.Err() == nil {
			w.mu.Lock()
			w.reopened++
			w.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// follow opens one socket, subscribes after after and records events
// until the socket fails.
func (w *watcher) follow(ctx context.Context, after int64) error {
	c := w.c
	if w.first != "" {
		c, w.first = c.on(w.first), ""
	}
	conn, _, err := c.dialWS(ctx)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "topic": realtime.TopicActivity, "after_seq": after})
	if err := conn.Write(ctx, websocket.MessageText, sub); err != nil {
		return err
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				return fmt.Errorf("frame line is not JSON: %q", line)
			}
			if m["type"] == "error" {
				return fmt.Errorf("feed error: %v", m)
			}
			if ev := event(m, realtime.TopicActivity); ev != nil {
				w.mu.Lock()
				w.seen = append(w.seen, seqOf(ev))
				w.mu.Unlock()
			}
		}
	}
}

// TestKillNodeUnderLoad: three console processes behind the balancer,
// people signing in through it all the while, and watchers on the
// activity feed. One node is killed with SIGKILL. Watchers on it
// reconnect through the balancer to another node with after_seq and miss
// nothing; every sign-in that was answered is in the log; the log stays
// whole.
func TestKillNodeUnderLoad(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Nodes: 3})
	admin := newClient(t, c.URL())
	admin.mustLogin("admin@example.org")
	start := newest(t, admin)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	watchers := make([]*watcher, 3)
	var wg sync.WaitGroup
	for i := range watchers {
		watchers[i] = &watcher{c: newClient(t, c.URL())}
		watchers[i].c.mustLogin("admin@example.org")
		if i == 0 {
			watchers[i].first = c.Node(1).URL() // on the node to be killed
		}
		wg.Go(func() { watchers[i].run(ctx, start) })
	}

	var answered atomic.Int64
	var load sync.WaitGroup
	loadCtx, stopLoad := context.WithTimeout(ctx, 8*time.Second)
	defer stopLoad()
	for i := range 4 {
		load.Go(func() {
			for loadCtx.Err() == nil {
				cl := newClient(t, c.URL())
				r, err := cl.try(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": []string{"support@example.org", "ben@example.org"}[i%2], "password": "demo"})
				if err == nil && r.Status == http.StatusOK {
					answered.Add(1)
				}
			}
		})
	}
	time.Sleep(3 * time.Second)
	c.Kill(1)
	load.Wait()

	head := newest(t, admin)
	waitUntil(t, "every watcher to reach the head of the log", func() bool {
		for _, w := range watchers {
			if w.last() < head {
				return false
			}
		}
		return true
	})
	stop()
	wg.Wait()

	want := make([]int64, 0, head-start)
	for s := start + 1; s <= head; s++ {
		want = append(want, s)
	}
	reopened := 0
	for i, w := range watchers {
		got := slices.Compact(slices.Clone(w.seen))
		got = got[:len(got)-len(slices.DeleteFunc(slices.Clone(got), func(s int64) bool { return s <= head }))]
		if !slices.Equal(got, want) {
			t.Errorf("watcher %d saw seqs %v, want %d..%d without a gap", i, got, start+1, head)
		}
		reopened += w.reopened
	}
	if reopened == 0 {
		t.Errorf("no watcher lost its socket, though one was on the killed node")
	}
	logins := countEvents(t, admin, "auth.login", start)
	if n := answered.Load(); int64(logins) < n {
		t.Errorf("%d sign-ins were answered, but the log holds %d", n, logins)
	}
	t.Logf("%d sign-ins answered, %d logged, seqs %d..%d, %d reconnections", answered.Load(), logins, start+1, head, reopened)
	if r := admin.verify(); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"ok":true`) {
		t.Errorf("verify after the kill: %d %s", r.Status, r.Body)
	}
}

// newest returns the seq of the newest event of the log.
func newest(t *testing.T, admin *client) int64 { return int64(headSeq(t, admin)) }

// countEvents counts the events of type typ above seq after.
func countEvents(t *testing.T, admin *client, typ string, after int64) int {
	t.Helper()
	n := 0
	for cursor := ""; ; {
		r := admin.do(http.MethodGet, "/api/v1/activity?limit=500&type="+typ+"&after_seq="+fmt.Sprint(after)+cursor, nil)
		page := items(t, r)
		n += len(page)
		next, _ := r.JSON(t)["next_cursor"].(string)
		if next == "" {
			return n
		}
		cursor = "&cursor=" + next
	}
}
