// Command benche2e measures the whole path of an action taken while
// impersonating: HTTP request, authorization as the impersonated user, the
// audit event's group commit on the embedded database, and fan-out to every
// watcher of the activity feed over real WebSockets.
//
// It starts the real server in this process on a fresh embedded database
// with the demo facility. The owner opens -watchers sockets on /ws, each
// subscribed to "activity". The admin impersonates Ben and lists resources,
// which is one audited decision (one event) per request.
//
//   - paced: one request at a time at -rate requests a second for -duration;
//     for each action, the time to the HTTP answer (authorize + persist) and
//     to its event at the first and at the last watcher.
//   - saturation: -workers requests at a time for -duration; actions a
//     second, and deliveries a second across the watchers.
//
// Usage: scripts/bench-e2e [-watchers 10,100,1000] [-rate 50] [-duration 10s]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"standin/server"
	"standin/server/password"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benche2e:", err)
		os.Exit(1)
	}
}

func run() error {
	watchersFlag := flag.String("watchers", "10,100,1000", "comma-separated numbers of activity watchers")
	rate := flag.Int("rate", 50, "paced actions a second")
	duration := flag.Duration("duration", 10*time.Second, "length of each phase")
	workers := flag.Int("workers", 8, "concurrent requests in the saturation phase")
	flag.Parse()
	var counts []int
	for f := range strings.SplitSeq(*watchersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -watchers entry %q", f)
		}
		counts = append(counts, n)
	}

	dir, err := os.MkdirTemp("", "standin-benche2e")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			DataDir: dir, Addr: "127.0.0.1:0", Demo: server.DemoOn,
			PasswordCost: password.Params{Time: 1, Memory: 1024, Threads: 1},
			Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
			OnListen:     func(a net.Addr) { addr <- a },
		})
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-done:
		return fmt.Errorf("server: %w", err)
	}
	defer func() {
		stop()
		<-done
	}()

	owner, err := signIn(base, "owner@example.org")
	if err != nil {
		return err
	}
	admin, err := signIn(base, "admin@example.org")
	if err != nil {
		return err
	}
	if err := admin.impersonate("ben@example.org"); err != nil {
		return err
	}
	fmt.Printf("standin end to end: %s, GOMAXPROCS %d, load average %s\n", base, runtime.GOMAXPROCS(0), loadavg())
	for _, n := range counts {
		if err := phase(owner, admin, n, *rate, *workers, *duration); err != nil {
			return err
		}
	}
	return nil
}

// phase measures both phases with n watchers.
func phase(owner, admin *client, n, rate, workers int, d time.Duration) error {
	head, err := owner.head()
	if err != nil {
		return err
	}
	ws, err := openWatchers(owner, n, head)
	if err != nil {
		return err
	}
	defer closeWatchers(ws)

	// Paced: one action at a time.
	start := head
	var sent, answered []time.Time
	tick := time.NewTicker(time.Second / time.Duration(rate))
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		<-tick.C
		t0 := time.Now()
		if err := admin.act(); err != nil {
			tick.Stop()
			return err
		}
		sent, answered = append(sent, t0), append(answered, time.Now())
	}
	tick.Stop()
	last := start + int64(len(sent))
	if !waitAll(ws, last, 30*time.Second) {
		return fmt.Errorf("%d watchers: not every watcher received event %d", n, last)
	}
	var persist, first, lastW []time.Duration
	for i := range sent {
		seq := start + int64(i) + 1
		persist = append(persist, answered[i].Sub(sent[i]))
		lo, hi := spread(ws, seq)
		first, lastW = append(first, lo.Sub(sent[i])), append(lastW, hi.Sub(sent[i]))
	}
	fmt.Printf("\n%d watchers, %d actions a second for %s (load average %s)\n", n, rate, d, loadavg())
	fmt.Printf("  %-44s p50 %8s  p99 %8s  max %8s\n", "action → HTTP answer (authorize + persist)", q(persist, 50), q(persist, 99), q(persist, 100))
	fmt.Printf("  %-44s p50 %8s  p99 %8s  max %8s\n", "action → event at the first watcher", q(first, 50), q(first, 99), q(first, 100))
	fmt.Printf("  %-44s p50 %8s  p99 %8s  max %8s\n", "action → event at the last watcher", q(lastW, 50), q(lastW, 99), q(lastW, 100))
	fmt.Printf("  %-44s %d of %d\n", "events lost or out of order", lost(ws), len(sent)*n)

	// Saturation: workers at once.
	start = last
	var acted atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	t0 := time.Now()
	end = t0.Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				if err := admin.act(); err != nil {
					failed.Store(err)
					return
				}
				acted.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return err
	}
	actions := acted.Load()
	last = start + actions
	if !waitAll(ws, last, 60*time.Second) {
		return fmt.Errorf("%d watchers: not every watcher received event %d", n, last)
	}
	_, hi := spread(ws, last)
	elapsed := hi.Sub(t0)
	fmt.Printf("  saturation, %d requests at a time: %.0f actions/s; %.0f deliveries/s; last delivery %s after the start (%s of requests)\n",
		workers, float64(actions)/d.Seconds(), float64(actions*int64(n))/elapsed.Seconds(), elapsed.Round(time.Millisecond), d)
	fmt.Printf("  %-44s %d of %d\n", "events lost or out of order", lost(ws), actions*int64(n))
	return nil
}

func q(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)*p/100, len(s)-1)
	return s[i].Round(10 * time.Microsecond).String()
}

// client is a signed-in browser-like HTTP client.
type client struct {
	base string
	http *http.Client
	csrf string
}

func signIn(base, email string) (*client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &client{base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	if err := c.call(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": "demo"}, &out); err != nil {
		return nil, fmt.Errorf("sign in %s: %w", email, err)
	}
	return c, c.refresh()
}

func (c *client) refresh() error {
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	if err := c.call(http.MethodGet, "/api/v1/session", nil, &s); err != nil {
		return err
	}
	c.csrf = s.CSRF
	return nil
}

func (c *client) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (c *client) impersonate(email string) error {
	var users struct {
		Items []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"items"`
	}
	if err := c.call(http.MethodGet, "/api/v1/users?q="+email, nil, &users); err != nil {
		return err
	}
	for _, u := range users.Items {
		if u.Email == email {
			if err := c.call(http.MethodPost, "/api/v1/impersonations",
				map[string]any{"user_id": u.ID, "reason": "end-to-end benchmark", "minutes": 120}, nil); err != nil {
				return err
			}
			return c.refresh()
		}
	}
	return fmt.Errorf("no user %s", email)
}

// act is one action under impersonation: one audited decision.
func (c *client) act() error {
	return c.call(http.MethodGet, "/api/v1/resources", nil, nil)
}

// head is the seq of the newest event.
func (c *client) head() (int64, error) {
	var page struct {
		Items []struct {
			Seq int64 `json:"seq"`
		} `json:"items"`
	}
	if err := c.call(http.MethodGet, "/api/v1/activity?limit=1", nil, &page); err != nil {
		return 0, err
	}
	if len(page.Items) == 0 {
		return 0, nil
	}
	return page.Items[0].Seq, nil
}

// watcher is one activity socket; it records when each seq arrived.
type watcher struct {
	conn *websocket.Conn
	base int64

	mu       sync.Mutex
	arrived  []time.Time // arrived[i]: seq base+1+i
	disorder int
	latest   atomic.Int64
	done     chan struct{}
}

func openWatchers(c *client, n int, after int64) ([]*watcher, error) {
	ws := make([]*watcher, 0, n)
	url := "ws" + strings.TrimPrefix(c.base, "http") + "/ws"
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: c.http})
		cancel()
		if err != nil {
			closeWatchers(ws)
			return nil, fmt.Errorf("open watcher %d: %w", len(ws)+1, err)
		}
		conn.SetReadLimit(1 << 22)
		w := &watcher{conn: conn, base: after, done: make(chan struct{})}
		w.latest.Store(after)
		sub, _ := json.Marshal(map[string]any{"type": "subscribe", "topic": "activity", "after_seq": after})
		if err := conn.Write(context.Background(), websocket.MessageText, sub); err != nil {
			closeWatchers(ws)
			return nil, err
		}
		go w.read()
		ws = append(ws, w)
	}
	return ws, nil
}

func (w *watcher) read() {
	defer close(w.done)
	for {
		_, data, err := w.conn.Read(context.Background())
		if err != nil {
			return
		}
		now := time.Now()
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			seq, ok := eventSeq(line)
			if !ok {
				continue
			}
			w.mu.Lock()
			if seq != w.base+int64(len(w.arrived))+1 {
				w.disorder++
			} else {
				w.arrived = append(w.arrived, now)
			}
			w.mu.Unlock()
			w.latest.Store(seq)
		}
	}
}

// eventSeq reads the seq of an event message without decoding the rest,
// so that the watchers, which share the machine with the server, take
// little of it. The hub writes {"type":"event","topic":…,"seq":N,…}.
func eventSeq(line []byte) (int64, bool) {
	if !bytes.HasPrefix(line, []byte(`{"type":"event"`)) {
		return 0, false
	}
	i := bytes.Index(line, []byte(`"seq":`))
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(`"seq":`):]
	end := 0
	for end < len(rest) && '0' <= rest[end] && rest[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n, err == nil
}

func closeWatchers(ws []*watcher) {
	for _, w := range ws {
		w.conn.Close(websocket.StatusNormalClosure, "")
		<-w.done
	}
}

func waitAll(ws []*watcher, seq int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for _, w := range ws {
		for w.latest.Load() < seq {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return true
}

// spread is when seq reached the first and the last watcher.
func spread(ws []*watcher, seq int64) (first, last time.Time) {
	for _, w := range ws {
		w.mu.Lock()
		t := w.arrived[seq-w.base-1]
		w.mu.Unlock()
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return first, last
}

func lost(ws []*watcher) int {
	n := 0
	for _, w := range ws {
		w.mu.Lock()
		n += w.disorder
		w.mu.Unlock()
	}
	return n
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
