package main

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"standin/server/sinks"
)

func TestQuantiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		ds            []time.Duration
		p50, p99, max float64
	}{
		{"Hundred", hundred(), 50, 99, 100},
		{"One", []time.Duration{3 * time.Millisecond}, 3, 3, 3},
		{"Unsorted", []time.Duration{9 * time.Millisecond, time.Millisecond, 5 * time.Millisecond}, 5, 9, 9},
		{"Empty", nil, -1, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := sample{}
			s.Quantiles("x_", tc.ds)
			if s["x_p50_ms"] != tc.p50 || s["x_p99_ms"] != tc.p99 || s["x_max_ms"] != tc.max {
				t.Fatalf("got %v, want p50 %v p99 %v max %v", s, tc.p50, tc.p99, tc.max)
			}
		})
	}
}

// hundred is 1 ms, 2 ms, … 100 ms, shuffled.
func hundred() []time.Duration {
	out := make([]time.Duration, 100)
	for i := range out {
		out[i] = time.Duration((i*37)%100+1) * time.Millisecond
	}
	return out
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rec := func(seq int64, event, arrived int) received {
		return received{seq: seq, event: at(event), at: at(arrived)}
	}
	recs := []received{
		rec(1, 0, 100),    // before the range
		rec(2, 900, 1000), // first of the range
		rec(3, 950, 1000),
		rec(3, 950, 1500), // again
		rec(5, 1200, 3000),
		rec(6, 2000, 4000), // after the range
	}
	d := summarize(recs, 1, 5)
	if d.events != 3 || d.missing != 1 || d.duplicates != 1 {
		t.Fatalf("events %d, missing %d, duplicates %d; want 3, 1, 1", d.events, d.missing, d.duplicates)
	}
	if !d.first.Equal(at(1000)) || !d.last.Equal(at(3000)) {
		t.Fatalf("first %v, last %v", d.first, d.last)
	}
	if got := d.perSecond(); got != 1.5 {
		t.Fatalf("perSecond = %v, want 1.5 (3 events in 2 s)", got)
	}
	want := []time.Duration{100 * time.Millisecond, 50 * time.Millisecond, 1800 * time.Millisecond}
	if len(d.lags) != len(want) {
		t.Fatalf("lags %v, want %v", d.lags, want)
	}
	for i := range want {
		if d.lags[i] != want[i] {
			t.Fatalf("lags %v, want %v", d.lags, want)
		}
	}

	t.Run("LastMissing", func(t *testing.T) {
		t.Parallel()
		if got := summarize(recs, 1, 4).perSecond(); got != 0 {
			t.Fatalf("perSecond without the last seq = %v, want 0", got)
		}
	})
}

func TestParseBatch(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 12, 0, 1, 0, time.UTC)
	body := []byte(`{"id":"e1","seq":41,"time":"2026-12-04T12:00:00.250Z","type":"action.allowed"}
{"type":"audit.checkpoint","seq":41,"id":"checkpoint:ab","checkpoint":{"seq":41,"time":"2026-12-04T12:00:00.300Z"}}

{"seq":42,"time":"yesterday"}
not json
{"id":"e3","seq":43,"time":"2026-12-04T12:00:00.5Z"}
`)
	recs, checkpoints, bad := parseBatch(body, at)
	if checkpoints != 1 || bad != 2 || len(recs) != 2 {
		t.Fatalf("records %v, checkpoints %d, bad %d; want 2, 1, 2", recs, checkpoints, bad)
	}
	if recs[0].seq != 41 || !recs[0].event.Equal(at.Add(-750*time.Millisecond)) || !recs[0].at.Equal(at) || recs[1].seq != 43 {
		t.Fatalf("records %v", recs)
	}
}

// post sends body to url as the console signs a batch with secret.
func post(t *testing.T, url, secret string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	req.Header.Set(sinks.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(sinks.HeaderSignature, sinks.Sign(secret, now, body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestReceiver(t *testing.T) {
	t.Parallel()
	r, err := newReceiver()
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	batch := []byte(`{"seq":7,"time":"2026-12-04T12:00:00.000Z"}` + "\n")

	t.Run("ErrNoSecretYet", func(t *testing.T) {
		if got := post(t, r.url, "s3cret", batch); got != http.StatusUnauthorized {
			t.Fatalf("status %d before the secret is known", got)
		}
	})
	r.setSecret("s3cret")
	t.Run("ErrForged", func(t *testing.T) {
		if got := post(t, r.url, "another", batch); got != http.StatusUnauthorized {
			t.Fatalf("status %d with another secret", got)
		}
	})
	t.Run("OK", func(t *testing.T) {
		if got := post(t, r.url, "s3cret", batch); got != http.StatusNoContent {
			t.Fatalf("status %d", got)
		}
		if err := r.waitFor(7, time.Second); err != nil {
			t.Fatal(err)
		}
	})
	recs, c := r.snapshot()
	if len(recs) != 1 || c != (counts{batches: 1, forged: 2}) {
		t.Fatalf("records %v, counts %+v", recs, c)
	}
	if err := r.waitFor(8, 50*time.Millisecond); err == nil {
		t.Fatal("waitFor a seq never sent returned nil")
	}
}

func TestDeadReceiver(t *testing.T) {
	t.Parallel()
	d, err := newDeadReceiver()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	res, err := hc.Post(d.url, "application/x-ndjson", bytes.NewReader([]byte("{}\n")))
	if err == nil {
		res.Body.Close()
		t.Fatalf("the dead receiver answered %s", res.Status)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("gave up after %v, before the client's timeout", took)
	}
	if err := d.waitTried(1, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	s := answers([]sent{
		{at: ms(0), answered: ms(4), status: 200},
		{at: ms(500), answered: ms(502), status: 200},
		{at: ms(1000), answered: ms(1010), status: 503},
		{at: ms(1000), err: errors.New("no answer")},
		{at: ms(1500), answered: ms(2000), status: 200},
	})
	if s["actions"] != 5 || s["errors"] != 2 || s["answered_per_s"] != 1.5 {
		t.Fatalf("sample %v: want 5 actions, 2 errors, 1.5 answered/s (3 in 2 s)", s)
	}
	if s["http_p50_ms"] != 4 || s["http_max_ms"] != 500 {
		t.Fatalf("sample %v: want p50 4 ms, max 500 ms", s)
	}
}
