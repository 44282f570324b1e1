package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// feed is one real WebSocket client of /ws: every message it receives goes
// to msgs, in order, and the close status to closed.
type feed struct {
	t      *testing.T
	conn   *websocket.Conn
	msgs   chan map[string]any
	closed chan error
}

func (c *client) mustFeed(ctx context.Context, t *testing.T) *feed {
	t.Helper()
	conn, _, err := c.dialWS(ctx)
	if err != nil {
		t.Fatalf("open /ws: %v", err)
	}
	conn.SetReadLimit(1 << 22)
	f := &feed{t: t, conn: conn, msgs: make(chan map[string]any, 100_000), closed: make(chan error, 1)}
	t.Cleanup(func() { conn.CloseNow() })
	go func() {
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				f.closed <- err
				close(f.msgs)
				return
			}
			for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					f.closed <- fmt.Errorf("frame line is not JSON: %q", line)
					close(f.msgs)
					return
				}
				f.msgs <- m
			}
		}
	}()
	return f
}

// subscribe subscribes to topic, replaying after afterSeq when it is not
// negative, and returns the reply (subscribed or error).
func (f *feed) subscribe(ctx context.Context, topic string, afterSeq int64) map[string]any {
	f.t.Helper()
	m := map[string]any{"type": "subscribe", "topic": topic}
	if afterSeq >= 0 {
		m["after_seq"] = afterSeq
	}
	data, _ := json.Marshal(m)
	if err := f.conn.Write(ctx, websocket.MessageText, data); err != nil {
		f.t.Fatalf("subscribe to %s: %v", topic, err)
	}
	return f.next(ctx, func(m map[string]any) bool {
		return m["topic"] == topic && (m["type"] == "subscribed" || m["type"] == "error")
	})
}

func (f *feed) mustSubscribe(ctx context.Context, topic string, afterSeq int64) {
	f.t.Helper()
	if r := f.subscribe(ctx, topic, afterSeq); r["type"] != "subscribed" {
		f.t.Fatalf("subscribe to %s: %v", topic, r)
	}
}

// next returns the first message matching want, skipping others.
func (f *feed) next(ctx context.Context, want func(map[string]any) bool) map[string]any {
	f.t.Helper()
	for {
		select {
		case m, ok := <-f.msgs:
			if !ok {
				f.t.Fatalf("socket closed while waiting: %v", <-f.closed)
			}
			if want(m) {
				return m
			}
		case <-ctx.Done():
			f.t.Fatalf("no expected message: %v", ctx.Err())
		}
	}
}

// event returns the event of an event message on topic, nil for others.
func event(m map[string]any, topic string) map[string]any {
	if m["type"] != "event" || m["topic"] != topic {
		return nil
	}
	ev, _ := m["event"].(map[string]any)
	return ev
}

func eventOf(topic, typ string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		ev := event(m, topic)
		return ev != nil && (typ == "" || ev["type"] == typ)
	}
}

func seqOf(ev map[string]any) int64 {
	n, _ := ev["seq"].(float64)
	return int64(n)
}

func liveDeadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLiveActivity: the activity feed is scoped per recipient, replays
// what a client missed without gap or duplicate while events keep being
// committed, and stops delivering when the viewer loses the right.
func TestLiveActivity(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ctx := liveDeadline(t)
	admin := newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	ben, cleo := userID(t, admin, "ben@example.org"), userID(t, admin, "cleo@example.org")

	manager := newClient(t, srv.URL)
	manager.mustLogin("manager@example.org")
	mf := manager.mustFeed(ctx, t)
	mf.mustSubscribe(ctx, "activity", -1)

	// Something happens in each project: the admin acts as Cleo (CELL),
	// then as Ben (NEURO).
	act := func(target, marker string) {
		t.Helper()
		if r := startImpersonation(admin, target, marker); r.Status != http.StatusCreated {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		session(t, admin)
		admin.do(http.MethodGet, "/api/v1/resources", nil)
		if r := admin.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", admin.csrf); r.Status != http.StatusOK {
			t.Fatalf("stop: %d %s", r.Status, r.Body)
		}
		session(t, admin)
	}
	act(cleo, "cell work")
	act(ben, "neuro work")

	t.Run("ManagerSeesOnlyTheirProject", func(t *testing.T) {
		var seen []map[string]any
		for {
			ev := event(mf.next(ctx, eventOf("activity", "")), "activity")
			seen = append(seen, ev)
			if ev["type"] == "impersonation.ended" && ev["subject"].(map[string]any)["id"] == ben {
				break
			}
		}
		var types []string
		for _, ev := range seen {
			if ev["subject"].(map[string]any)["id"] != ben {
				t.Errorf("the NEURO lead received an event about someone else: %v", ev)
			}
			types = append(types, fmt.Sprint(ev["type"], " ", ev["object"]))
		}
		got := strings.Join(types, "; ")
		if !strings.HasPrefix(got, "impersonation.started") || !strings.Contains(got, "action.allowed GET /api/v1/resources") ||
			!strings.HasSuffix(got, "impersonation.ended ended_by:"+userID(t, admin, "admin@example.org")+" Adrian Admin (admin@example.org)") {
			t.Fatalf("received %s", got)
		}
	})

	t.Run("UsersCannotSubscribe", func(t *testing.T) {
		c := newClient(t, srv.URL)
		c.mustLogin("ben@example.org")
		r := c.mustFeed(ctx, t).subscribe(ctx, "activity", 0)
		if r["type"] != "error" || r["code"] != "forbidden" {
			t.Fatalf("Ben subscribing to activity: %v", r)
		}
	})

	t.Run("ReplayThenLiveWithoutGapOrDuplicate", func(t *testing.T) {
		// Events keep being committed while the backlog is replayed.
		writer := newClient(t, srv.URL)
		writer.mustLogin("support@example.org")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				writer.mustLogin("support@example.org") // each sign-in is an event
			}
		})
		f := admin.mustFeed(ctx, t)
		f.mustSubscribe(ctx, "activity", 0)
		var last int64
		check := func(until int64) {
			t.Helper()
			for last < until {
				ev := event(f.next(ctx, eventOf("activity", "")), "activity")
				if seq := seqOf(ev); seq != last+1 {
					t.Fatalf("seq %d after %d", seq, last)
				}
				last++
			}
		}
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()
		head := seqOf(items(t, admin.do(http.MethodGet, "/api/v1/activity?limit=1", nil))[0])
		check(head)
		if last < 10 {
			t.Fatalf("only %d events", last)
		}
	})

	t.Run("LosingTheRightStopsDelivery", func(t *testing.T) {
		rule := map[string]any{"role": "project:lead", "domain": "*", "object": "activity", "action": "list"}
		if r := admin.do(http.MethodDelete, "/api/v1/policies", rule, "X-CSRF-Token", admin.csrf); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
			t.Fatalf("remove policy: %d %s", r.Status, r.Body)
		}
		act(ben, "after the lead lost the right") // not for the manager any more
		if r := admin.post("/api/v1/policies", rule); r.Status != http.StatusCreated {
			t.Fatalf("restore policy: %d %s", r.Status, r.Body)
		}
		act(ben, "with the right back")
		// Events reach a socket in order: the first the manager receives
		// after the removal must be of the session started after the
		// right came back.
		ev := event(mf.next(ctx, eventOf("activity", "impersonation.started")), "activity")
		if ev["reason"] != "with the right back" {
			t.Fatalf("the manager received %q after losing the right", ev["reason"])
		}
	})
}

// TestLiveNotifications: Ben is told live when support starts and ends a
// session on his account, and a reconnecting tab gets what it missed.
func TestLiveNotifications(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ctx := liveDeadline(t)
	admin := newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	ben := newClient(t, srv.URL)
	ben.mustLogin("ben@example.org")
	bf := ben.mustFeed(ctx, t)
	bf.mustSubscribe(ctx, "notifications", -1)
	cleo := newClient(t, srv.URL)
	cleo.mustLogin("cleo@example.org")
	cf := cleo.mustFeed(ctx, t)
	cf.mustSubscribe(ctx, "notifications", -1)

	if r := startImpersonation(admin, userID(t, admin, "ben@example.org"), "printer queue stuck"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	started := event(bf.next(ctx, eventOf("notifications", "")), "notifications")
	if started["type"] != "impersonation.started" || started["reason"] != "printer queue stuck" ||
		started["actor_name"] != "Adrian Admin" || started["until"] == "" || seqOf(started) == 0 {
		t.Fatalf("start notification: %v", started)
	}
	session(t, admin)
	if r := admin.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", admin.csrf); r.Status != http.StatusOK {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	ended := event(bf.next(ctx, eventOf("notifications", "")), "notifications")
	if ended["type"] != "impersonation.ended" || seqOf(ended) <= seqOf(started) {
		t.Fatalf("end notification: %v after %v", ended, started)
	}

	// The inbox lists the same notifications with the same seqs.
	inbox := items(t, ben.do(http.MethodGet, "/api/v1/notifications", nil))
	if len(inbox) != 2 || seqOf(inbox[0]) != seqOf(ended) || seqOf(inbox[1]) != seqOf(started) {
		t.Fatalf("inbox %v", inbox)
	}

	// A tab that saw only the first catches up on reconnecting.
	again := ben.mustFeed(ctx, t)
	again.mustSubscribe(ctx, "notifications", seqOf(started))
	if got := event(again.next(ctx, eventOf("notifications", "")), "notifications"); seqOf(got) != seqOf(ended) {
		t.Fatalf("replayed %v, want the end notification", got)
	}

	// Cleo heard nothing: a marker notification of her own comes first.
	session(t, admin)
	if r := startImpersonation(admin, userID(t, admin, "cleo@example.org"), "marker"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	if got := event(cf.next(ctx, eventOf("notifications", "")), "notifications"); got["reason"] != "marker" {
		t.Fatalf("Cleo received %v", got)
	}
}

// TestLiveSessionAndChannel: every tab of the admin hears its session
// switch to and from the impersonation with the session's details; the
// impersonation's channel reaches the actor and a supervisor, not others,
// and ends with the final event.
func TestLiveSessionAndChannel(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ctx := liveDeadline(t)
	admin := newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	benID := userID(t, admin, "ben@example.org")
	var tabs []*feed
	for range 2 {
		f := admin.mustFeed(ctx, t)
		f.mustSubscribe(ctx, "session", -1)
		tabs = append(tabs, f)
	}
	r := startImpersonation(admin, benID, "two tabs")
	if r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	impID := r.JSON(t)["id"].(string)
	for _, f := range tabs {
		ev := event(f.next(ctx, eventOf("session", "impersonation.started")), "session")
		if ev["subject"].(map[string]any)["id"] != benID || ev["impersonation"].(map[string]any)["id"] != impID {
			t.Fatalf("session event %v", ev)
		}
		if err := <-f.closed; websocket.CloseStatus(err) != 4002 {
			t.Fatalf("tab closed with %v, want 4002", err)
		}
	}
	session(t, admin)

	// The actor's reconnected tab follows its own session's channel.
	tab := admin.mustFeed(ctx, t)
	tab.mustSubscribe(ctx, "session", -1)
	tab.mustSubscribe(ctx, "impersonation:"+impID, 0)
	if ev := event(tab.next(ctx, eventOf("impersonation:"+impID, "")), "impersonation:"+impID); ev["type"] != "impersonation.started" {
		t.Fatalf("first event of the channel: %v", ev)
	}
	// The owner and the lead of Ben's project may follow it; support, who
	// may not end it, may not.
	owner := newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	of := owner.mustFeed(ctx, t)
	of.mustSubscribe(ctx, "impersonation:"+impID, 0)
	manager := newClient(t, srv.URL)
	manager.mustLogin("manager@example.org")
	manager.mustFeed(ctx, t).mustSubscribe(ctx, "impersonation:"+impID, -1)
	support := newClient(t, srv.URL)
	support.mustLogin("support@example.org")
	if r := support.mustFeed(ctx, t).subscribe(ctx, "impersonation:"+impID, 0); r["type"] != "error" || r["code"] != "forbidden" {
		t.Fatalf("support following another agent's session: %v", r)
	}

	stop := admin.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", admin.csrf)
	if stop.Status != http.StatusOK {
		t.Fatalf("stop: %d %s", stop.Status, stop.Body)
	}
	ev := event(tab.next(ctx, eventOf("session", "impersonation.ended")), "session")
	if cause := stop.JSON(t)["cause"]; cause == "" || ev["cause"] != cause {
		t.Fatalf("session end event %v, the stop said %v", ev, cause)
	}
	if got := event(of.next(ctx, eventOf("impersonation:"+impID, "impersonation.ended")), "impersonation:"+impID); got == nil {
		t.Fatal("the supervisor did not see the end")
	}
}

// TestLivePresence: support staff see who looks at which user, joins and
// leaves live, and who holds an impersonation; users may not watch.
func TestLivePresence(t *testing.T) {
	t.Parallel()
	srv := mustStart(t, "")
	ctx := liveDeadline(t)
	support := newClient(t, srv.URL)
	support.mustLogin("support@example.org")
	sf := support.mustFeed(ctx, t)
	sf.mustSubscribe(ctx, "presence", 0)
	admin := newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	benID := userID(t, admin, "ben@example.org")

	change := func(kind string) map[string]any {
		t.Helper()
		return event(sf.next(ctx, func(m map[string]any) bool {
			ev := event(m, "presence")
			c, _ := ev["change"].(map[string]any)
			return c != nil && c["kind"] == kind
		}), "presence")
	}
	if r := admin.do(http.MethodPut, "/api/v1/presence", map[string]any{"view_id": "tab-1", "user_id": benID},
		"X-CSRF-Token", admin.csrf); r.Status != http.StatusNoContent {
		t.Fatalf("view: %d %s", r.Status, r.Body)
	}
	joined := change("join")
	viewers := joined["viewers"].([]any)
	if len(viewers) != 1 || viewers[0].(map[string]any)["user"].(map[string]any)["id"] != benID ||
		viewers[0].(map[string]any)["viewer"].(map[string]any)["name"] != "Adrian Admin" {
		t.Fatalf("after the join: %v", joined)
	}

	// A late subscriber gets the state at once.
	late := newClient(t, srv.URL)
	late.mustLogin("owner@example.org")
	lf := late.mustFeed(ctx, t)
	lf.mustSubscribe(ctx, "presence", 0)
	if st := event(lf.next(ctx, eventOf("presence", "")), "presence"); len(st["viewers"].([]any)) != 1 {
		t.Fatalf("snapshot %v", st)
	}

	if r := startImpersonation(admin, benID, "presence"); r.Status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	if held := change("hold"); len(held["holds"].([]any)) != 1 {
		t.Fatalf("after the start: %v", held)
	}
	session(t, admin)
	// While impersonating, the admin is Ben: no presence.
	if r := admin.do(http.MethodPut, "/api/v1/presence", map[string]any{"view_id": "tab-2", "user_id": benID},
		"X-CSRF-Token", admin.csrf); r.Status != http.StatusForbidden {
		t.Fatalf("view while impersonating: %d %s", r.Status, r.Body)
	}
	if r := admin.do(http.MethodDelete, "/api/v1/impersonations/current", nil, "X-CSRF-Token", admin.csrf); r.Status != http.StatusOK {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	change("release")
	session(t, admin)
	if r := admin.do(http.MethodDelete, "/api/v1/presence/tab-1", nil, "X-CSRF-Token", admin.csrf); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d %s", r.Status, r.Body)
	}
	if left := change("leave"); len(left["viewers"].([]any)) != 0 {
		t.Fatalf("after the leave: %v", left)
	}

	for _, tc := range []struct {
		name string
		body any
		code int
	}{
		{"NoView", map[string]any{"user_id": benID}, http.StatusUnprocessableEntity},
		{"BadView", map[string]any{"view_id": "a b", "user_id": benID}, http.StatusUnprocessableEntity},
		{"NoUser", map[string]any{"view_id": "x"}, http.StatusUnprocessableEntity},
		{"UnknownUser", map[string]any{"view_id": "x", "user_id": "000000000000000000000000"}, http.StatusNotFound},
		{"UnknownField", map[string]any{"view_id": "x", "user_id": benID, "extra": 1}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := admin.do(http.MethodPut, "/api/v1/presence", tc.body, "X-CSRF-Token", admin.csrf); r.Status != tc.code {
				t.Fatalf("got %d %s, want %d", r.Status, r.Body, tc.code)
			}
		})
	}

	ben := newClient(t, srv.URL)
	ben.mustLogin("ben@example.org")
	if r := ben.mustFeed(ctx, t).subscribe(ctx, "presence", 0); r["type"] != "error" {
		t.Fatalf("Ben watching presence: %v", r)
	}
}
