package sinks_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/lease"
	"standin/server/mongostore"
	"standin/server/sinks"
	"standin/server/standin"
)

const secret = "a secret of sixteen or more bytes"

// receiver is a webhook a test steers: it acknowledges, fails, or stalls
// (holds the request until released), and keeps every record it
// acknowledged, in the order it got them.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	mode    string // "ok", "fail", "stall"
	got     []int64
	batches int
	bad     []string
	release chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, mode: "ok", release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.set("ok")
		r.srv.Close()
	})
	return r
}

func (r *receiver) set(mode string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == "stall" && mode != "stall" {
		close(r.release)
		r.release = make(chan struct{})
	}
	r.mode = mode
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	mode, release := r.mode, r.release
	r.mu.Unlock()
	switch mode {
	case "fail":
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	case "stall":
		select {
		case <-release:
		case <-req.Context().Done():
		}
		http.Error(w, "stalled", http.StatusGatewayTimeout)
		return
	}
	ts, err := strconv.ParseInt(req.Header.Get(sinks.HeaderTimestamp), 10, 64)
	problem := ""
	switch {
	case err != nil:
		problem = "no timestamp"
	case req.Header.Get(sinks.HeaderSignature) != sinks.Sign(secret, time.Unix(ts, 0), body):
		problem = "bad signature"
	case req.Header.Get("Content-Type") != sinks.ContentType:
		problem = "content type " + req.Header.Get("Content-Type")
	}
	var seqs []int64
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Seq  int64  `json:"seq"`
			ID   string `json:"id"`
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Seq == 0 || e.ID == "" || e.Hash == "" {
			problem = fmt.Sprintf("a record without its seq, id or hash: %s", sc.Bytes())
		}
		seqs = append(seqs, e.Seq)
	}
	if want := fmt.Sprintf("%d-%d", seqs[0], seqs[len(seqs)-1]); problem == "" && req.Header.Get(sinks.HeaderSeqs) != want {
		problem = "seqs header " + req.Header.Get(sinks.HeaderSeqs) + ", want " + want
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if problem != "" {
		r.bad = append(r.bad, problem)
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	r.got = append(r.got, seqs...)
	r.batches++
	w.WriteHeader(http.StatusNoContent)
}

// received returns what was acknowledged so far.
func (r *receiver) received() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.got...)
}

// waitFor waits until every seq in want was received.
func (r *receiver) waitFor(want []int64, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		have := map[int64]bool{}
		for _, s := range r.received() {
			have[s] = true
		}
		missing := 0
		for _, s := range want {
			if !have[s] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d records not delivered within %v (bad: %v)", missing, len(want), within, r.bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOrder checks what r received: each record for the first time in
// seq order, any record again only after it was received (a batch sent
// again after a failure, or after an acknowledgment that was lost), and
// nothing that failed the receiver's checks.
func (r *receiver) checkOrder() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Fatalf("the receiver refused batches: %v", r.bad)
	}
	seen := map[int64]bool{}
	var top int64
	for _, s := range r.got {
		switch {
		case s > top:
			top = s
		case !seen[s]:
			r.t.Fatalf("seq %d arrived for the first time after seq %d", s, top)
		}
		seen[s] = true
	}
}

type fixture struct {
	db  *mongostore.DB
	log *audit.Log
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := dbtest.MustOpen(t)
	// The newest events in memory, as the server keeps them: sinks that
	// keep up read them there.
	l, err := audit.Open(context.Background(), db.Events(), audit.Config{Window: 10000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return &fixture{db: db, log: l}
}

// appendEvents appends n events, alternating two types, and returns
// their seqs.
func (f *fixture) appendEvents(t *testing.T, n int) []int64 {
	t.Helper()
	seqs := make([]int64, 0, n)
	for i := range n {
		typ := standin.EventActionAllowed
		if i%2 == 1 {
			typ = standin.EventLogin
		}
		e := &standin.Event{Type: typ, Time: time.Now(), Actor: standin.EventUser{ID: "u-sam", Name: "Sam"},
			Subject: standin.EventUser{ID: "u-ben", Name: "Ben"}, Action: "test", Outcome: "allowed", Reason: fmt.Sprintf("event %d \"quoted\"", i)}
		if err := f.log.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

// sink stores an enabled webhook sink to r.
func (f *fixture) sink(t *testing.T, r *receiver, types ...string) *standin.Sink {
	t.Helper()
	s := &standin.Sink{Name: "SIEM", Kind: standin.SinkWebhook, URL: r.srv.URL + "/ingest", Format: standin.FormatStandin,
		Secret: secret, Types: types, Enabled: true, CreatedAt: time.Now()}
	if err := f.db.CreateSink(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts a deliverer, as one node's, until the returned stop.
func (f *fixture) run(t *testing.T) (stop func()) {
	t.Helper()
	return f.runAs(t, "")
}

// runAs starts a deliverer as the node holder names ("" for a new name).
func (f *fixture) runAs(t *testing.T, holder string) (stop func()) {
	t.Helper()
	allow, err := sinks.ParseAllowlist("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	d := sinks.NewDeliverer(sinks.Config{
		Store: f.db, Log: f.log, Leases: lease.New(f.db.Leases(), lease.Config{Holder: holder, Logger: slog.New(slog.DiscardHandler)}),
		Allow: allow, Batch: 40, Period: 30 * time.Millisecond, Term: time.Second, Timeout: 500 * time.Millisecond,
		MinBackoff: 40 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestDeliveryLosesNothing: a webhook that fails, then stalls past the
// timeout, then recovers gets every event, in seq order, each batch
// signed; what it sees twice is a batch sent again after a failure. A
// deliverer that stops and another that starts (a restart) go on from
// the last acknowledged seq.
func TestDeliveryLosesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := newReceiver(t)
	f.sink(t, r)
	stop := f.run(t)

	want := f.appendEvents(t, 100)
	r.waitFor(want, 20*time.Second)

	r.set("fail")
	want = append(want, f.appendEvents(t, 60)...)
	time.Sleep(300 * time.Millisecond)
	r.set("stall")
	want = append(want, f.appendEvents(t, 60)...)
	time.Sleep(1200 * time.Millisecond)
	health, err := f.db.Sinks(context.Background())
	if err != nil || len(health) != 1 {
		t.Fatal(health, err)
	}
	if h, err := f.db.SinkHealth(context.Background(), health[0].ID); err != nil || h == nil || h.Failures == 0 || h.LastError == "" {
		t.Fatalf("the health of a failing sink: %+v %v", h, err)
	}
	r.set("ok")
	r.waitFor(want, 20*time.Second)

	// A restart: the next deliverer starts from what was acknowledged.
	stop()
	before := len(r.received())
	more := f.appendEvents(t, 50)
	f.run(t)
	r.waitFor(more, 20*time.Second)
	again := r.received()[before:]
	if len(again) > len(more)+40 {
		t.Fatalf("after the restart %d records came for %d new events", len(again), len(more))
	}
	r.checkOrder()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		h, err := f.db.SinkHealth(context.Background(), health[0].ID)
		if err == nil && h.Delivered == more[len(more)-1] && h.Failures == 0 && h.LastError == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health once caught up: %+v %v", h, err)
		}
	}
}

// TestSinksAreIsolated: a sink that stalls holds up no other sink (the
// log's appends never wait for any: the benchmark measures what sinks
// add to a request), and a filtered sink receives its types alone.
func TestSinksAreIsolated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stalled, healthy, logins := newReceiver(t), newReceiver(t), newReceiver(t)
	stalled.set("stall")
	f.sink(t, stalled)
	f.sink(t, healthy)
	f.sink(t, logins, standin.EventLogin)
	f.run(t)

	seqs := f.appendEvents(t, 80)
	healthy.waitFor(seqs, 20*time.Second)
	var loginSeqs []int64
	for i, s := range seqs {
		if i%2 == 1 {
			loginSeqs = append(loginSeqs, s)
		}
	}
	logins.waitFor(loginSeqs, 20*time.Second)
	if got := logins.received(); len(got) != len(loginSeqs) {
		t.Fatalf("the filtered sink got %d records, want the %d sign-ins", len(got), len(loginSeqs))
	}
	if n := len(stalled.received()); n != 0 {
		t.Fatalf("the stalled sink acknowledged %d", n)
	}
	stalled.set("ok")
	stalled.waitFor(seqs, 20*time.Second)
	for _, r := range []*receiver{stalled, healthy, logins} {
		r.checkOrder()
	}
}

// TestTwoNodesDeliver: two nodes deliver the same sinks, each sink by
// whichever holds its lease term by term: every receiver gets every
// event, in order, repeats only after a handover.
func TestTwoNodesDeliver(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs := []*receiver{newReceiver(t), newReceiver(t), newReceiver(t)}
	for _, r := range rs {
		f.sink(t, r)
	}
	f.runAs(t, "node-a")
	f.runAs(t, "node-b")
	var want []int64
	for range 6 {
		want = append(want, f.appendEvents(t, 25)...)
		time.Sleep(400 * time.Millisecond) // across lease terms of 1 s
	}
	for _, r := range rs {
		r.waitFor(want, 30*time.Second)
		r.checkOrder()
		if got := len(r.received()); got > 2*len(want) {
			t.Fatalf("%d records for %d events: both nodes deliver at once", got, len(want))
		}
	}
}
