package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// dialers bounds the sockets being opened at once, which keeps the
// server's accept queue short however many watchers there are.
const dialers = 32

// watcher is one activity socket; it records when each seq arrived.
type watcher struct {
	conn *websocket.Conn
	base int64

	mu         sync.Mutex
	arrived    []time.Time // arrived[i]: seq base+1+i
	disorder   int
	latest     atomic.Int64
	subscribed chan struct{} // closed when the subscription is answered
	done       chan struct{} // closed when the reader returns
}

// openWatchers opens n sockets to url through hc, at most dialers at a
// time, each subscribed to the activity topic after seq after, and waits
// until every subscription is answered.
func openWatchers(hc *http.Client, url string, n int, after int64) ([]*watcher, error) {
	ws := make([]*watcher, n)
	next := make(chan int)
	errs := make([]error, dialers)
	var wg sync.WaitGroup
	for d := range dialers {
		wg.Go(func() {
			for i := range next {
				if errs[d] == nil {
					ws[i], errs[d] = openWatcher(hc, url, after)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeWatchers(ws)
		return nil, err
	}
	return ws, nil
}

func openWatcher(hc *http.Client, url string, after int64) (*watcher, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("opening a watcher: %w", err)
	}
	conn.SetReadLimit(1 << 22)
	w := &watcher{conn: conn, base: after, subscribed: make(chan struct{}), done: make(chan struct{})}
	w.latest.Store(after)
	sub := `{"type":"subscribe","topic":"activity","after_seq":` + strconv.FormatInt(after, 10) + `}`
	if err := conn.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("subscribing a watcher: %w", err)
	}
	go w.read()
	select {
	case <-w.subscribed:
		return w, nil
	case <-w.done:
		err = errors.New("the socket ended")
	case <-ctx.Done():
		err = ctx.Err()
	}
	conn.CloseNow()
	<-w.done
	return nil, fmt.Errorf("waiting for a watcher's subscription: %w", err)
}

func (w *watcher) read() {
	defer close(w.done)
	subscribed := false
	for {
		_, data, err := w.conn.Read(context.Background())
		if err != nil {
			return
		}
		now := time.Now()
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			if !subscribed && bytes.HasPrefix(line, []byte(`{"type":"subscribed"`)) {
				subscribed = true
				close(w.subscribed)
				continue
			}
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
// little of it. The hub and the floor write
// {"type":"event","topic":…,"seq":N,…}.
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

// closeWatchers closes every socket, all at once, and waits for their
// readers.
func closeWatchers(ws []*watcher) {
	var wg sync.WaitGroup
	for _, w := range ws {
		if w != nil {
			wg.Go(func() {
				w.conn.Close(websocket.StatusNormalClosure, "")
				<-w.done
			})
		}
	}
	wg.Wait()
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
