package server_test

import (
	"standin/server/clustertest"

	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"standin/server"
)

// childDataDir, when set in the environment, makes the test binary run the
// server over the embedded database in that directory instead of the tests,
// printing "listening <addr>" once it serves: TestKillUnderLoad kills it
// with SIGKILL.
const childDataDir = "STANDIN_TEST_CHILD_DATA_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDataDir); dir != "" {
		os.Exit(runChild(dir))
	}
	// Clusters of real processes (multinode_test.go) remove the binary
	// they built.
	clustertest.Main(m)
}

func runChild(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := server.Run(ctx, server.Config{
		DataDir: dir, Addr: "127.0.0.1:0", PasswordCost: testCost, Demo: server.DemoOn,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		OnListen: func(a net.Addr) { fmt.Printf("listening %s\n", a) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startChild runs the server in a child process over dir and returns its
// URL and the process.
func startChild(t *testing.T, dir string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDataDir+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a, cmd
	case <-time.After(90 * time.Second):
		t.Fatal("the server process did not start")
	}
	return "", nil
}

// load books as Ada and Cleo and starts and stops impersonations as the
// admin, without pause, and remembers what the server acknowledged.
// Requests that fail (the server or its database gone) are not counted.
type load struct {
	mu       sync.Mutex
	bookings []string    // acknowledged bookings
	imps     []string    // acknowledged impersonation starts
	acked    []time.Time // when each of those was acknowledged, for the log
	halted   chan struct{}
	wg       sync.WaitGroup

	unavailable atomic.Int64 // 503 answers
	failed      atomic.Int64 // other 5xx answers: never expected
	problem     atomic.Value // the latest failed request, for a test that fails
}

func startLoad(t *testing.T, base string) *load {
	t.Helper()
	ada, cleo, admin := newClient(t, base), newClient(t, base), newClient(t, base)
	ada.mustLogin("ada@example.org")
	cleo.mustLogin("cleo@example.org")
	admin.mustLogin("admin@example.org")
	ids := mustDemoIDs(t, ada)
	benID := userID(t, admin, "ben@example.org")
	monday := nextMonday()
	l := &load{halted: make(chan struct{})}

	send := func(c *client, method, path string, body any) (int, map[string]any) {
		started := time.Now()
		r, err := c.try(method, path, body)
		switch {
		case err != nil:
			l.problem.Store(fmt.Sprintf("%s %s after %s: %v", method, path, time.Since(started).Round(time.Millisecond), err))
		case r.Status >= 300:
			l.problem.Store(fmt.Sprintf("%s %s after %s: %d %s", method, path, time.Since(started).Round(time.Millisecond), r.Status, r.Body))
		}
		switch {
		case err != nil:
		case r.Status == http.StatusServiceUnavailable:
			l.unavailable.Add(1)
		case r.Status >= 500:
			l.failed.Add(1)
			t.Logf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		var m map[string]any
		if err != nil || r.Status >= 300 || json.Unmarshal(r.Body, &m) != nil {
			return 0, nil
		}
		return r.Status, m
	}
	// refresh reads the session's new CSRF token after it rotated.
	refresh := func(c *client) bool {
		st, m := send(c, http.MethodGet, "/api/v1/session", nil)
		if st != http.StatusOK {
			return false
		}
		c.csrf, _ = m["csrf_token"].(string)
		return true
	}
	running := func() bool {
		select {
		case <-l.halted:
			return false
		default:
			return true
		}
	}
	book := func(c *client, resource, project string, start func(i int) time.Time) {
		for i := 0; running(); i++ {
			if st, m := send(c, http.MethodPost, "/api/v1/bookings", bookingBody(resource, project, start(i), 0.25)); st == http.StatusCreated {
				l.mu.Lock()
				l.bookings = append(l.bookings, m["id"].(string))
				l.acked = append(l.acked, time.Now())
				l.mu.Unlock()
			} else {
				time.Sleep(10 * time.Millisecond) // no busy loop while the database is away
			}
		}
	}
	l.wg.Go(func() {
		// Weekdays from 09:00, 40 quarter hours a day.
		book(ada, ids.confocal, ids.neuro, func(i int) time.Time {
			day := i / 40
			return monday.AddDate(0, 0, day/5*7+day%5).Add(time.Duration(i%40) * 15 * time.Minute)
		})
	})
	l.wg.Go(func() {
		book(cleo, ids.flow, ids.cell, func(i int) time.Time { return monday.Add(time.Duration(i) * 15 * time.Minute) })
	})
	l.wg.Go(func() {
		for running() {
			if st, m := send(admin, http.MethodPost, "/api/v1/impersonations", map[string]any{"user_id": benID, "reason": "crash drill"}); st == http.StatusCreated {
				l.mu.Lock()
				l.imps = append(l.imps, m["id"].(string))
				l.acked = append(l.acked, time.Now())
				l.mu.Unlock()
			}
			if refresh(admin) {
				send(admin, http.MethodDelete, "/api/v1/impersonations/current", nil)
				refresh(admin)
			} else {
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	return l
}

// waitFor waits until at least bookings bookings and imps impersonation
// starts more than now are acknowledged.
func (l *load) waitFor(t *testing.T, bookings, imps int) {
	t.Helper()
	l.mu.Lock()
	bookings, imps = bookings+len(l.bookings), imps+len(l.imps)
	l.mu.Unlock()
	deadline := time.Now().Add(90 * time.Second)
	for {
		l.mu.Lock()
		enough := len(l.bookings) >= bookings && len(l.imps) >= imps
		l.mu.Unlock()
		if enough {
			return
		}
		if time.Now().After(deadline) {
			l.mu.Lock()
			n, m := len(l.bookings), len(l.imps)
			l.mu.Unlock()
			t.Fatalf("the load made no progress: %d of %d bookings, %d of %d impersonation starts; latest failure: %v",
				n, bookings, m, imps, l.problem.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) halt() {
	close(l.halted)
	l.wg.Wait()
}

// firstAckAfter returns how long after at the load's first acknowledgment
// came, for the log; -1 if none did.
func (l *load) firstAckAfter(at time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.acked {
		if a.After(at) {
			return a.Sub(at).Round(time.Millisecond)
		}
	}
	return -1
}

// checkDurable checks, through the server at base, that everything l saw
// acknowledged is stored with its audit event, that no booking lacks its
// event, and that the hash chain verifies.
func checkDurable(t *testing.T, base string, l *load) {
	t.Helper()
	owner := newClient(t, base)
	owner.mustLogin("owner@example.org")
	objects := map[string]bool{}
	started := map[string]bool{}
	for cursor := ""; ; {
		r := owner.do(http.MethodGet, "/api/v1/activity?limit=500&cursor="+cursor, nil)
		for _, ev := range items(t, r) {
			switch ev["type"] {
			case "booking.created":
				objects[ev["object"].(string)] = true
			case "impersonation.started":
				started[ev["impersonation_id"].(string)] = true
			}
		}
		if cursor = r.JSON(t)["next_cursor"].(string); cursor == "" {
			break
		}
	}
	bookers := []*client{newClient(t, base), newClient(t, base)}
	bookers[0].mustLogin("ada@example.org")
	bookers[1].mustLogin("cleo@example.org")
	confirmed := func() map[string]bool {
		stored := map[string]bool{}
		for _, c := range bookers {
			for cursor := ""; ; {
				r := c.do(http.MethodGet, "/api/v1/bookings?limit=200&cursor="+cursor, nil)
				for _, b := range items(t, r) {
					if b["status"] == "confirmed" {
						stored[b["id"].(string)] = true
					}
				}
				if cursor = r.JSON(t)["next_cursor"].(string); cursor == "" {
					break
				}
			}
		}
		return stored
	}
	// Every committed booking is confirmed, at once or by the repair that
	// follows a write the database stopped midway.
	unconfirmed := func(stored map[string]bool) []string {
		var missing []string
		for object := range objects {
			if id := strings.TrimPrefix(object, "booking:"); !stored[id] {
				missing = append(missing, id)
			}
		}
		return missing
	}
	stored := confirmed()
	for deadline := time.Now().Add(3 * server.RepairEvery); len(unconfirmed(stored)) > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		stored = confirmed()
	}
	for _, id := range unconfirmed(stored) {
		t.Errorf("booking %s has its booking.created event but is not confirmed", id)
	}
	for _, id := range l.bookings {
		if !stored[id] {
			t.Errorf("acknowledged booking %s is missing", id)
		}
		if !objects["booking:"+id] {
			t.Errorf("acknowledged booking %s has no booking.created event", id)
		}
	}
	for id := range stored {
		if !objects["booking:"+id] {
			t.Errorf("booking %s exists without its event", id)
		}
	}
	for _, id := range l.imps {
		if !started[id] {
			t.Errorf("acknowledged impersonation %s has no started event", id)
		}
	}
	v := owner.verify().JSON(t)
	if v["ok"] != true {
		t.Fatalf("the chain does not verify: %v", v)
	}
	t.Logf("result: confirmed bookings found=%d", len(stored))
	t.Logf("result: events in the verified chain=%v", v["checked"])
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d requests failed with a server error other than 503", n)
	}
}

// TestKillUnderLoad kills the server with SIGKILL while users book and an
// admin impersonates, then restarts it on the same data: every action the
// server acknowledged is there with its audit event, no booking lacks its
// event, and the hash chain verifies.
func TestKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	t.Parallel()
	dir := t.TempDir()
	base, cmd := startChild(t, dir)
	l := startLoad(t, base)
	l.waitFor(t, 20, 3)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.halt()
	_ = cmd.Wait()
	t.Logf("result: bookings acknowledged before the kill=%d", len(l.bookings))
	t.Logf("result: impersonation starts acknowledged before the kill=%d", len(l.imps))

	restarted := time.Now()
	base, _ = startChild(t, dir)
	t.Logf("result: restart until serving=%v", time.Since(restarted).Round(time.Millisecond))
	checkDurable(t, base, l)
}
