package realtime_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"standin/realtime"
)

// testBacklog serves stored events from memory.
type testBacklog struct {
	mu     sync.Mutex
	events map[string][]realtime.Event
	err    error
	during func(topic string) // runs when a read starts, before any event
	topics []string           // topics read, in order
}

var _ realtime.Backlog = (*testBacklog)(nil)

func (b *testBacklog) EventsAfter(ctx context.Context, p *realtime.Principal, topic string, afterSeq int64, fn func(realtime.Event) error) error {
	b.mu.Lock()
	b.topics = append(b.topics, topic)
	during, err, events := b.during, b.err, b.events[topic]
	b.mu.Unlock()
	if during != nil {
		during(topic)
	}
	if err != nil {
		return err
	}
	for _, ev := range events {
		if ev.Seq <= afterSeq {
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

func (b *testBacklog) setDuring(f func(topic string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.during = f
}

func (b *testBacklog) readTopics() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.topics...)
}

func seqEvents(from, to int64) []realtime.Event {
	var evs []realtime.Event
	for s := from; s <= to; s++ {
		evs = append(evs, event(s, ""))
	}
	return evs
}

func TestReplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		stored    []realtime.Event
		afterSeq  string  // the after_seq field as sent; "" leaves it out
		live      []int64 // published while the backlog is read
		receive   func(ev realtime.Event) bool
		want      []int64
		wantReads int
	}{
		{
			// 5 is stored and published live during the read: it arrives once.
			name: "LiveDuringReplay", stored: seqEvents(1, 5), afterSeq: "2",
			live: []int64{5, 6}, want: []int64{3, 4, 5, 6}, wantReads: 1,
		},
		{
			name: "FromStart", stored: seqEvents(1, 3), afterSeq: "0",
			want: []int64{1, 2, 3}, wantReads: 1,
		},
		{
			name: "NothingMissed", stored: seqEvents(1, 3), afterSeq: "3",
			live: []int64{4}, want: []int64{4}, wantReads: 1,
		},
		{
			name: "FilteredByCanReceive", stored: seqEvents(1, 5), afterSeq: "2",
			live:    []int64{6},
			receive: func(ev realtime.Event) bool { return ev.Seq != 4 && ev.Seq != 6 },
			want:    []int64{3, 5}, wantReads: 1,
		},
		{
			name: "NoAfterSeqNoReplay", stored: seqEvents(1, 3),
			want: nil, wantReads: 0,
		},
		{
			name: "ManyInFrames", stored: seqEvents(1, 150), afterSeq: "0",
			want: seqRange(1, 150), wantReads: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backlog := &testBacklog{events: map[string][]realtime.Event{"activity": tt.stored}}
			authz := &testAuthorizer{}
			if tt.receive != nil {
				authz.receive = func(p *realtime.Principal, topic string, ev realtime.Event) bool { return tt.receive(ev) }
			}
			e := newEnv(t, realtime.Config{Backlog: backlog, Authorizer: authz})
			backlog.setDuring(func(topic string) {
				// This runs on the hub's goroutine, where t.Fatal must not.
				for _, s := range tt.live {
					if err := e.hub.Publish(topic, event(s, "")); err != nil {
						t.Errorf("Publish: %v", err)
					}
				}
			})
			c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})

			line := `{"type":"subscribe","topic":"activity"}`
			if tt.afterSeq != "" {
				line = `{"type":"subscribe","topic":"activity","after_seq":` + tt.afterSeq + `}`
			}
			c.sendLine(line)
			if m := c.expect(msg{Type: "subscribed", Topic: "activity"}); (m.AfterSeq != nil) != (tt.afterSeq != "") {
				t.Fatalf("after_seq echoed as %v, want %q", m.AfterSeq, tt.afterSeq)
			}
			for _, s := range tt.want {
				c.expect(msg{Type: "event", Topic: "activity", Seq: s})
				if len(c.pending) > 63 {
					t.Fatalf("a frame carried %d messages, want at most 64", len(c.pending)+1)
				}
			}
			// Nothing else was sent: the next message is the next live event.
			mustPublish(t, e.hub, "activity", event(1000, ""))
			c.expect(msg{Type: "event", Topic: "activity", Seq: 1000})
			if got := len(backlog.readTopics()); got != tt.wantReads {
				t.Fatalf("backlog read %d times, want %d", got, tt.wantReads)
			}
		})
	}
}

func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestReplayFailure(t *testing.T) {
	t.Parallel()
	backlog := &testBacklog{err: errors.New("database down")}
	e := newEnv(t, realtime.Config{Backlog: backlog})
	c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
	c.subscribe("session")
	c.sendLine(`{"type":"subscribe","topic":"activity","after_seq":4}`)
	c.expect(msg{Type: "subscribed", Topic: "activity"})
	c.expect(msg{Type: "error", Topic: "activity", Code: "replay_failed"})

	// The subscription was dropped: live events do not arrive, and the
	// client may subscribe again.
	mustPublish(t, e.hub, "activity", event(5, ""))
	mustPublishSession(t, e.hub, "s", event(1, "marker"))
	c.expect(msg{Type: "event", Topic: "session", Seq: 1})
	c.subscribe("activity")
	mustPublish(t, e.hub, "activity", event(6, ""))
	c.expect(msg{Type: "event", Topic: "activity", Seq: 6})
}

func TestReplaySkipsSessionTopic(t *testing.T) {
	t.Parallel()
	backlog := &testBacklog{}
	e := newEnv(t, realtime.Config{Backlog: backlog})
	c := e.mustConnect(t, e.sessions.add("s", "ada", time.Time{}), dialOptions{})
	c.sendLine(`{"type":"subscribe","topic":"session","after_seq":3}`)
	c.expect(msg{Type: "subscribed", Topic: "session"})
	mustPublishSession(t, e.hub, "s", event(4, ""))
	c.expect(msg{Type: "event", Topic: "session", Seq: 4})
	if got := backlog.readTopics(); len(got) != 0 {
		t.Fatalf("backlog read for %v, want no read for the private session topic", got)
	}
}

// TestStoredThenPublishedAfterReplay: an event is stored, read by the
// replay, and only then published (the audit log commits before its hook
// publishes). The client has it from the replay and must not get it again.
func TestStoredThenPublishedAfterReplay(t *testing.T) {
	t.Parallel()
	backlog := &testBacklog{events: map[string][]realtime.Event{"activity": seqEvents(1, 2)}}
	e := newEnv(t, realtime.Config{Backlog: backlog})
	c := e.mustConnect(t, e.sessions.add("s1", "ada", time.Time{}), dialOptions{})
	c.sendLine(`{"type":"subscribe","topic":"activity","after_seq":0}`)
	c.expect(msg{Type: "subscribed", Topic: "activity"})
	c.expect(msg{Type: "event", Topic: "activity", Seq: 1})
	c.expect(msg{Type: "event", Topic: "activity", Seq: 2})
	mustPublish(t, e.hub, "activity", event(2, "")) // stored before the replay read it
	mustPublish(t, e.hub, "activity", event(3, ""))
	c.expect(msg{Type: "event", Topic: "activity", Seq: 3})
}
