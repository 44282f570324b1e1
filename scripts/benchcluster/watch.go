package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// watcher is one socket on a node subscribed to the activity feed; it
// records when each tagged action's event arrived, and counts events that
// did not follow the one before (lost or out of order).
type watcher struct {
	conn       *websocket.Conn
	subscribed chan error    // the answer to the subscription
	done       chan struct{} // closed when the reader returns

	mu       sync.Mutex
	next     int64               // the seq expected next
	arrived  map[int64]time.Time // by tag
	stamped  map[int64]time.Time // the event's own time, by tag
	disorder int
}

// watch opens a socket on c's node as c's session, subscribed to the
// activity feed after seq after, and returns once the subscription is
// answered.
func watch(c *client, after int64) (*watcher, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(c.Base, "http") + "/ws"
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: c.HTTP})
	if err != nil {
		return nil, fmt.Errorf("opening a watcher on %s: %w", c.Base, err)
	}
	conn.SetReadLimit(1 << 22)
	sub := `{"type":"subscribe","topic":"activity","after_seq":` + strconv.FormatInt(after, 10) + `}`
	if err := conn.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("subscribing a watcher on %s: %w", c.Base, err)
	}
	w := &watcher{conn: conn, subscribed: make(chan error, 1), done: make(chan struct{}), next: after + 1, arrived: map[int64]time.Time{}, stamped: map[int64]time.Time{}}
	go w.read()
	select {
	case err = <-w.subscribed:
	case <-w.done:
		err = errors.New("the socket ended")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		w.conn.CloseNow()
		<-w.done
		return nil, fmt.Errorf("waiting for a watcher's subscription on %s: %w", c.Base, err)
	}
	return w, nil
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
			if !subscribed {
				switch {
				case bytes.HasPrefix(line, []byte(`{"type":"subscribed"`)):
					subscribed = true
					w.subscribed <- nil
				case bytes.HasPrefix(line, []byte(`{"type":"error"`)):
					subscribed = true
					w.subscribed <- errors.New(string(line))
				}
			}
			seq, tag, ok := parseEvent(line)
			if !ok {
				continue
			}
			w.record(seq, tag, eventTime(line), now)
		}
	}
}

// record notes that the event seq of the action tag, stamped at, arrived
// at now.
func (w *watcher) record(seq, tag int64, stamped, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq != w.next {
		w.disorder++
	}
	w.next = seq + 1
	if tag >= 0 {
		w.arrived[tag] = now
		w.stamped[tag] = stamped
	}
}

// parseEvent reads the seq of an activity event message and the tag of
// its action (-1 when the event is not one of the benchmark's actions)
// without decoding the rest, so that the watchers take little of the
// machine they share with the nodes. The hub writes
// {"type":"event","topic":…,"seq":N,…,"event":{…,"user_agent":"…",…}}.
func parseEvent(line []byte) (seq, tag int64, ok bool) {
	if !bytes.HasPrefix(line, []byte(`{"type":"event"`)) {
		return 0, 0, false
	}
	seq, ok = numberAfter(line, `"seq":`)
	if !ok {
		return 0, 0, false
	}
	tag, found := numberAfter(line, `"user_agent":"`+tagPrefix)
	if !found {
		tag = -1
	}
	return seq, tag, true
}

// eventTime reads the event's own time: the log stamps it when it
// accepts the event, just before storing it (to the millisecond, rounded
// down). The zero time when the line has none.
func eventTime(line []byte) time.Time {
	const key = `"time":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return time.Time{}
	}
	rest := line[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(rest[:end]))
	return t
}

// numberAfter reads the decimal number that follows the first key in
// line.
func numberAfter(line []byte, key string) (int64, bool) {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	end := 0
	for end < len(rest) && '0' <= rest[end] && rest[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n, err == nil
}

// at is when the event of the action tag arrived.
func (w *watcher) at(tag int64) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.arrived[tag]
	return t, ok
}

// sinceStamp is how long after its event was stamped the event of the
// action tag arrived.
func (w *watcher) sinceStamp(tag int64) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.arrived[tag]
	s := w.stamped[tag]
	if !ok || s.IsZero() {
		return 0, false
	}
	return t.Sub(s), true
}

// lost is how many events did not follow the one before.
func (w *watcher) lost() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.disorder
}

// waitFor polls until every tag in tags arrived, or timeout passes.
func (w *watcher) waitFor(tags []int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, tag := range tags {
		for {
			if _, ok := w.at(tag); ok {
				break
			}
			select {
			case <-w.done:
				return errors.New("the watcher's socket ended")
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the event of action %d did not arrive within %s", tag, timeout)
			}
		}
	}
	return nil
}

// close closes the socket and waits for the reader.
func (w *watcher) close() {
	w.conn.Close(websocket.StatusNormalClosure, "")
	<-w.done
}
