package livefeed_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
	"standin/server/livefeed"
	"standin/server/presence"
	"standin/server/standin"
)

// published is one call a Feed made to its hub.
type published struct {
	topic   string // "session/<id>" for PublishSession, "close/<id>" for CloseSession
	ev      realtime.Event
	code    websocket.StatusCode
	reason  string
	payload string
}

// recordingHub records what the feed asks of the hub.
type recordingHub struct {
	mu    sync.Mutex
	calls []published
}

func (h *recordingHub) add(p published) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p.payload = string(p.ev.Payload)
	h.calls = append(h.calls, p)
}

func (h *recordingHub) Publish(topic string, ev realtime.Event) error {
	h.add(published{topic: topic, ev: ev})
	return nil
}

func (h *recordingHub) PublishSession(sessionID string, ev realtime.Event) error {
	h.add(published{topic: "session/" + sessionID, ev: ev})
	return nil
}

func (h *recordingHub) CloseSession(sessionID string, code websocket.StatusCode, reason string) {
	h.add(published{topic: "close/" + sessionID, code: code, reason: reason})
}

func (h *recordingHub) CloseAll(code websocket.StatusCode, reason string) {
	h.add(published{topic: "close/*", code: code, reason: reason})
}

// take returns the calls so far and forgets them.
func (h *recordingHub) take() []published {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.calls
	h.calls = nil
	return out
}

func topics(calls []published) string {
	var out []string
	for _, c := range calls {
		out = append(out, c.topic)
	}
	return strings.Join(out, " ")
}

var at = time.Date(2026, 5, 1, 9, 0, 0, 120_000_000, time.UTC)

func sampleEvent(seq int64, impID string) *standin.Event {
	return &standin.Event{
		ID: "e1", Seq: seq, Time: at, Type: standin.EventActionAllowed,
		Actor: standin.EventUser{ID: "u-admin", Name: "Adrian <Admin>"}, Subject: standin.EventUser{ID: "u-ben", Name: "Ben"},
		ImpersonationID: impID, Action: "resource.list", Object: "GET /api/v1/resources", Project: "NEURO",
		Outcome: "allowed", Reason: "acting as Ben", IP: "127.0.0.1", UserAgent: "Go", Projects: []string{"NEURO"},
		PrevHash: "aa", Hash: "bb",
	}
}

// TestAuditEventJSON: the live feed carries an audit event in the bytes the
// activity API shows: these fields in this order, no chain fields, the time
// in RFC 3339 with the fraction it needs, and the event itself as Meta.
func TestAuditEventJSON(t *testing.T) {
	t.Parallel()
	hub := &recordingHub{}
	f := livefeed.New(nil)
	f.Attach(hub)
	e := sampleEvent(7, "imp-1")
	f.Committed([]*standin.Event{e})
	calls := hub.take()
	if got := topics(calls); got != "activity impersonation:imp-1" {
		t.Fatalf("published on %q", got)
	}
	want := `{"id":"e1","seq":7,"time":"2026-05-01T09:00:00.12Z","type":"action.allowed",` +
		`"actor":{"id":"u-admin","name":"Adrian \u003cAdmin\u003e"},"subject":{"id":"u-ben","name":"Ben"},` +
		`"impersonation_id":"imp-1","action":"resource.list","object":"GET /api/v1/resources","project":"NEURO",` +
		`"outcome":"allowed","reason":"acting as Ben","ip":"127.0.0.1","user_agent":"Go","hash":"bb"}`
	for _, c := range calls {
		if c.payload != want {
			t.Errorf("%s payload\n got %s\nwant %s", c.topic, c.payload, want)
		}
		if c.ev.Seq != 7 || c.ev.Meta != e {
			t.Errorf("%s event seq %d meta %v, want 7 and the event", c.topic, c.ev.Seq, c.ev.Meta)
		}
	}
}

// TestNotificationJSON: the notifications topic and the inbox share one
// form: these fields in this order, times in whole seconds, an empty
// e-mail and a zero until left out.
func TestNotificationJSON(t *testing.T) {
	t.Parallel()
	hub := &recordingHub{}
	f := livefeed.New(nil)
	f.Attach(hub)
	tests := []struct {
		name string
		n    *standin.Notification
		want string
	}{
		{"OKStarted", &standin.Notification{ID: "n1", UserID: "u-ben", Seq: 9, Type: "impersonation.started", Title: "Support is acting as you",
			Body: "b", ActorName: "Adrian Admin", ActorEmail: "admin@example.org", Reason: "printer", Until: at.Add(time.Hour), At: at},
			`{"id":"n1","seq":9,"type":"impersonation.started","title":"Support is acting as you","body":"b",` +
				`"actor_name":"Adrian Admin","actor_email":"admin@example.org","reason":"printer","until":"2026-05-01T10:00:00Z","at":"2026-05-01T09:00:00Z"}`},
		{"OKEnded", &standin.Notification{ID: "n2", UserID: "u-ben", Seq: 10, Type: "impersonation.ended", ActorName: "A", At: at},
			`{"id":"n2","seq":10,"type":"impersonation.ended","title":"","body":"","actor_name":"A","reason":"","at":"2026-05-01T09:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(livefeed.NotificationView(tt.n))
			if err != nil || string(b) != tt.want {
				t.Fatalf("NotificationView\n got %s %v\nwant %s", b, err, tt.want)
			}
		})
	}
	for _, tt := range tests {
		f.Notified(tt.n)
	}
	calls := hub.take()
	if got := topics(calls); got != "notifications notifications" {
		t.Fatalf("published on %q", got)
	}
	for i, c := range calls {
		// The notification travels as a signal, so Meta is a copy.
		if c.payload != tests[i].want || c.ev.Seq != tests[i].n.Seq || !reflect.DeepEqual(c.ev.Meta, tests[i].n) {
			t.Errorf("notification %d published as %s seq %d", i, c.payload, c.ev.Seq)
		}
	}
}

// TestSessionMessages: a session's own tabs hear that it switched to or
// from an impersonation, then are closed to reconnect.
func TestSessionMessages(t *testing.T) {
	t.Parallel()
	hub := &recordingHub{}
	f := livefeed.New(nil)
	f.Attach(hub)
	imp := &standin.Impersonation{ID: "imp-1", ActorID: "u-admin", ActorName: "Adrian", SubjectID: "u-ben", SubjectName: "Ben",
		Reason: "printer", StartedAt: at, ExpiresAt: at.Add(30 * time.Minute)}
	f.ImpersonationStarted(imp, "s-old")
	ended := *imp
	ended.EndedAt, ended.Cause = at.Add(time.Minute), "stopped"
	f.ImpersonationEnded(&ended, []string{"s-a", "s-b"})
	f.ImpersonationEnded(&ended, nil)
	f.SessionEnded("s-x")
	f.SessionReplaced("s-y")

	calls := hub.take()
	if got := topics(calls); got != "session/s-old session/s-a session/s-b close/s-x close/s-y" {
		t.Fatalf("calls %q", got)
	}
	wantStarted := `{"type":"impersonation.started","impersonation":{"id":"imp-1","reason":"printer",` +
		`"started_at":"2026-05-01T09:00:00.12Z","expires_at":"2026-05-01T09:30:00.12Z"},` +
		`"actor":{"id":"u-admin","name":"Adrian"},"subject":{"id":"u-ben","name":"Ben"}}`
	if calls[0].payload != wantStarted {
		t.Errorf("started\n got %s\nwant %s", calls[0].payload, wantStarted)
	}
	wantEnded := `{"type":"impersonation.ended","impersonation":{"id":"imp-1","reason":"printer",` +
		`"started_at":"2026-05-01T09:00:00.12Z","expires_at":"2026-05-01T09:30:00.12Z","ended_at":"2026-05-01T09:01:00.12Z"},` +
		`"cause":"stopped","ended_words":"stopped","actor":{"id":"u-admin","name":"Adrian"},"subject":{"id":"u-ben","name":"Ben"}}`
	if calls[1].payload != wantEnded || calls[2].payload != wantEnded {
		t.Errorf("ended\n got %s\nwant %s", calls[1].payload, wantEnded)
	}
	if calls[3].code != realtime.StatusSessionEnded || calls[3].reason != realtime.ReasonSessionEnded ||
		calls[4].code != realtime.StatusSessionChanged || calls[4].reason != realtime.ReasonSessionChanged {
		t.Errorf("closed with %d %q and %d %q", calls[3].code, calls[3].reason, calls[4].code, calls[4].reason)
	}
}

// TestPresenceMessage: a presence event is the whole state with the change
// that led to it, at the state's version.
func TestPresenceMessage(t *testing.T) {
	t.Parallel()
	hub := &recordingHub{}
	f := livefeed.New(nil)
	f.Attach(hub)
	ada, ben := presence.Person{ID: "u-ada", Name: "Ada"}, presence.Person{ID: "u-ben", Name: "Ben"}
	f.PresenceChanged(presence.State{Version: 4, Viewers: []presence.Viewer{{Viewer: ada, User: ben, Since: at}}, Holds: []presence.Hold{}},
		presence.Change{Kind: presence.Join, Viewer: ada, User: ben})
	calls := hub.take()
	want := `{"seq":4,"viewers":[{"viewer":{"id":"u-ada","name":"Ada"},"user":{"id":"u-ben","name":"Ben"},"since":"2026-05-01T09:00:00.12Z"}],` +
		`"holds":[],"change":{"kind":"join","viewer":{"id":"u-ada","name":"Ada"},"user":{"id":"u-ben","name":"Ben"}}}`
	if topics(calls) != "presence" || calls[0].payload != want || calls[0].ev.Seq != 4 {
		t.Fatalf("published %v\nwant %s", calls, want)
	}
}

// TestFeedBeforeAttach: until a hub is attached no socket can be open, so
// the hooks publish nothing, and a hub is attached once.
func TestFeedBeforeAttach(t *testing.T) {
	t.Parallel()
	f := livefeed.New(nil)
	f.Committed([]*standin.Event{sampleEvent(1, "")})
	f.Notified(&standin.Notification{ID: "n1"})
	f.PresenceChanged(presence.State{Version: 1}, presence.Change{Kind: presence.Join})
	f.ImpersonationStarted(&standin.Impersonation{ID: "i"}, "s")
	f.SessionEnded("s")
	f.SessionReplaced("s")

	hub := &recordingHub{}
	f.Attach(hub)
	f.Committed([]*standin.Event{sampleEvent(2, ""), sampleEvent(3, "not/valid")})
	if got := topics(hub.take()); got != "activity activity" {
		t.Fatalf("published on %q, want the activity feed only", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second Attach did not panic")
		}
	}()
	f.Attach(&recordingHub{})
}

// TestSignalsRoundTrip: with signals in use, the feed sends what is not
// an audit fact instead of publishing it, and Apply, on any server, does
// what the hook would have done here, and says which sessions are gone;
// Resync makes every socket reconnect.
func TestSignalsRoundTrip(t *testing.T) {
	t.Parallel()
	sender, receiver := &recordingSender{}, &recordingHub{}
	f := livefeed.New(nil)
	f.Attach(&recordingHub{})
	f.UseSignals(sender)
	other := livefeed.New(nil)
	other.Attach(receiver)

	f.SessionEnded("s-1")
	f.SessionReplaced("s-2")
	f.Notified(&standin.Notification{ID: "n1", UserID: "u-ben", Seq: 3, Type: "impersonation.started", At: at})
	for _, s := range sender.sent {
		other.Apply(s.kind, s.data)
	}
	var gone []string
	for _, s := range sender.sent {
		if id, ok := livefeed.SessionGone(s.kind, s.data); ok {
			gone = append(gone, id)
		}
	}
	if got := strings.Join(gone, " "); got != "s-1 s-2" {
		t.Fatalf("the signals say sessions %q are gone, want s-1 s-2", got)
	}
	calls := receiver.take()
	if got := topics(calls); got != "close/s-1 close/s-2 notifications" {
		t.Fatalf("applied as %q", got)
	}
	if calls[0].code != realtime.StatusSessionEnded || calls[1].code != realtime.StatusSessionChanged {
		t.Fatalf("closed with %d and %d", calls[0].code, calls[1].code)
	}
	other.Resync()
	if c := receiver.take(); len(c) != 1 || c[0].topic != "close/*" || c[0].code != realtime.StatusSessionChanged {
		t.Fatalf("resync: %+v", c)
	}
}

// recordingSender records the signals a feed sends.
type recordingSender struct {
	sent []struct {
		kind string
		data []byte
	}
}

func (s *recordingSender) Send(kind string, data []byte) {
	s.sent = append(s.sent, struct {
		kind string
		data []byte
	}{kind, data})
}

// A replaced session's tabs on this server hear the switch sent before
// the replacement, then close: the close travels in order with the
// signals, not ahead of them.
func TestSwitchReachesTabsBeforeTheirClose(t *testing.T) {
	t.Parallel()
	sender, hub := &recordingSender{}, &recordingHub{}
	f := livefeed.New(nil)
	f.Attach(hub)
	f.UseSignals(sender)
	imp := &standin.Impersonation{ID: "imp-1", ActorID: "u-admin", SubjectID: "u-ben", StartedAt: at, ExpiresAt: at.Add(time.Hour)}
	f.ImpersonationStarted(imp, "s-old")
	f.SessionReplaced("s-old")
	if c := hub.take(); len(c) != 0 {
		t.Fatalf("before the signals come back, this server's hub was given %q", topics(c))
	}
	for _, s := range sender.sent {
		f.Apply(s.kind, s.data)
	}
	if got := topics(hub.take()); got != "session/s-old close/s-old" {
		t.Fatalf("applied as %q, want the switch, then the close", got)
	}
}
