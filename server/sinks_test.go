package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"standin/realtime"
	"standin/server"
	"standin/server/sinks"
)

// webhookBatch is one batch a receiver accepted, as it came.
type webhookBatch struct {
	timestamp int64
	signature string
	body      []byte
}

// siem is a SIEM's webhook on loopback: it keeps every batch it accepts
// and its records, answers 503 to all while told to fail, and can hold
// each batch a while before acknowledging it. Signatures are checked
// afterwards (mustBeSignedWith), once the test knows the secret.
type siem struct {
	srv     *httptest.Server
	mu      sync.Mutex
	failing bool
	// slow holds each batch this long before acknowledging it, so that
	// deliveries are in flight.
	slow    time.Duration
	batches []webhookBatch
	recs    []map[string]any
}

func newSIEM(t *testing.T) *siem {
	s := &siem{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		slow, failing := s.slow, s.failing
		s.mu.Unlock()
		time.Sleep(slow)
		if failing {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		ts, _ := strconv.ParseInt(r.Header.Get(sinks.HeaderTimestamp), 10, 64)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.batches = append(s.batches, webhookBatch{timestamp: ts, signature: r.Header.Get(sinks.HeaderSignature), body: body})
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				s.recs = append(s.recs, rec)
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// fail makes the receiver refuse every batch (on) or accept them again.
func (s *siem) fail(on bool) {
	s.mu.Lock()
	s.failing = on
	s.mu.Unlock()
}

// mustBeSignedWith fails unless every batch accepted was signed with
// secret.
func (s *siem) mustBeSignedWith(t *testing.T, secret string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		t.Fatal("the receiver accepted no batch")
	}
	for i, b := range s.batches {
		if want := sinks.Sign(secret, time.Unix(b.timestamp, 0), b.body); b.signature != want {
			t.Fatalf("batch %d of %d is not signed with the sink's secret", i+1, len(s.batches))
		}
	}
}

// count is how many records were received.
func (s *siem) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// seqs are the received records' seqs, in the order received.
func (s *siem) seqs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int64, 0, len(s.recs))
	for _, r := range s.recs {
		if seq, ok := r["seq"].(float64); ok {
			out = append(out, int64(seq))
		}
	}
	return out
}

// waitCount waits until n records were received.
func (s *siem) waitCount(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records received, waiting for %d", s.count(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait returns the records received once match holds for one of them.
func (s *siem) wait(t *testing.T, what string, match func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.mu.Lock()
		recs := append([]map[string]any(nil), s.recs...)
		s.mu.Unlock()
		for _, r := range recs {
			if match(r) {
				return recs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not received; got %d records", what, len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSinksOverHTTP: an admin adds a webhook sink (its secret shown
// once), which receives the events its filter names, signed; a test
// record reaches it at once; a change of format applies to what follows;
// every change is audited; only admins see or change sinks; a
// destination outside the allowlist, and every bad input, is refused.
func TestSinksOverHTTP(t *testing.T) {
	t.Parallel()
	srv := mustStartFacility(t, func(c *server.Config) { c.SinkAllow = "127.0.0.1" })
	admin, support := newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	support.mustLogin("support@example.org")
	receiver := newSIEM(t)

	if r := support.do(http.MethodGet, "/api/v1/sinks", nil); r.Status != http.StatusForbidden {
		t.Fatalf("support lists sinks: %d", r.Status)
	}
	ctx := liveDeadline(t)
	if r := support.mustFeed(ctx, t).subscribe(ctx, realtime.TopicSinks, -1); r["type"] != "error" {
		t.Fatalf("support follows the sinks' health: %v", r)
	}
	live := admin.mustFeed(ctx, t)
	live.mustSubscribe(ctx, realtime.TopicSinks, -1)
	for _, bad := range []map[string]any{
		{"name": "x", "kind": "webhook", "url": "http://10.0.0.1/in"},
		{"name": "x", "kind": "webhook", "url": "ftp://127.0.0.1/in"},
		{"name": "x", "kind": "carrier-pigeon", "url": receiver.srv.URL},
		{"name": "", "kind": "webhook", "url": receiver.srv.URL},
		{"name": "x", "kind": "webhook", "url": receiver.srv.URL, "types": []string{"no.such"}},
		{"name": "x", "kind": "webhook", "url": receiver.srv.URL, "secret": "short"},
		{"name": "x", "kind": "webhook", "url": receiver.srv.URL, "format": "xml"},
		{"name": "x", "kind": "syslog", "address": "no port"},
		{"name": "x", "kind": "syslog", "address": "127.0.0.1:6514", "tls": true, "ca": "not a certificate"},
		{"name": "x", "kind": "syslog", "address": "127.0.0.1:6514", "tls": false, "ca": "-----BEGIN CERTIFICATE-----"},
	} {
		if r := admin.post("/api/v1/sinks", bad); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("sink %v: %d %s", bad, r.Status, r.Body)
		}
	}

	r := admin.post("/api/v1/sinks", map[string]any{"name": "Acme SIEM", "kind": "webhook", "url": receiver.srv.URL + "/standin",
		"types": []string{"auth.login", "sink.created"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	created := r.JSON(t)
	secret, _ := created["secret"].(string)
	id, _ := created["id"].(string)
	if len(secret) < 32 || id == "" || created["enabled"] != true {
		t.Fatalf("created: %v", created)
	}
	if strings.Contains(string(admin.do(http.MethodGet, "/api/v1/sinks", nil).Body), secret) {
		t.Fatal("the secret is shown again")
	}

	// Its own creation, then a sign-in, reach it, signed.
	newClient(t, srv.URL).mustLogin("ben@example.org")
	recs := receiver.wait(t, "Ben's sign-in", func(rec map[string]any) bool {
		return rec["type"] == "auth.login" && rec["actor"].(map[string]any)["name"] == "Ben Okafor"
	})
	// The admin's console hears of the delivery live.
	live.next(ctx, func(m map[string]any) bool {
		ev := event(m, realtime.TopicSinks)
		return ev != nil && ev["sink_id"] == id && ev["delivered_seq"].(float64) > created["from_seq"].(float64)
	})
	if recs[0]["type"] != "sink.created" || recs[0]["seq"] == nil || recs[0]["hash"] == "" {
		t.Fatalf("the first record: %v", recs[0])
	}
	for _, rec := range recs {
		if rec["type"] != "auth.login" && rec["type"] != "sink.created" {
			t.Fatalf("a record the filter leaves out: %v", rec)
		}
	}

	if r := admin.post("/api/v1/sinks/"+id+"/test", nil); r.Status != http.StatusOK {
		t.Fatalf("test send: %d %s", r.Status, r.Body)
	}
	receiver.wait(t, "the test record", func(rec map[string]any) bool { return rec["type"] == "sink.tested" && rec["seq"] == 0.0 })

	// OCSF from now on.
	r = admin.put("/api/v1/sinks/"+id, map[string]any{"name": "Acme SIEM", "kind": "webhook", "url": receiver.srv.URL + "/standin",
		"format": "ocsf", "types": []string{"auth.login"}})
	if r.Status != http.StatusOK || r.JSON(t)["format"] != "ocsf" {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	newClient(t, srv.URL).mustLogin("cleo@example.org")
	receiver.wait(t, "Cleo's sign-in in OCSF", func(rec map[string]any) bool {
		actor, _ := rec["actor"].(map[string]any)
		user, _ := actor["user"].(map[string]any)
		return rec["class_uid"] == 3002.0 && user["name"] == "Cleo Park"
	})

	var health map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		health = admin.do(http.MethodGet, "/api/v1/sinks/"+id, nil).JSON(t)["health"].(map[string]any)
		if health["delivered_seq"].(float64) > created["from_seq"].(float64) && health["delivered_at"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health: %v", health)
		}
	}

	if r := admin.do(http.MethodDelete, "/api/v1/sinks/"+id, nil, "X-CSRF-Token", admin.csrf); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	for _, typ := range []string{"sink.created", "sink.tested", "sink.changed", "sink.removed"} {
		if got := events(t, admin, "type="+typ); len(got) != 1 || got[0]["object"] != "sink:"+id {
			t.Fatalf("%s events: %v", typ, got)
		}
	}
	if got := events(t, admin, "type=sink.changed")[0]["reason"]; got != "format standin → ocsf; types auth.login,sink.created → auth.login" {
		t.Fatalf("the change in words: %v", got)
	}
	receiver.mustBeSignedWith(t, secret)
}
