package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"standin/server/sinks"
)

// received is one record as a receiver got it.
type received struct {
	seq   int64
	event time.Time // the event's "time": when the log stamped it
	at    time.Time // when its batch arrived whole
}

// receiver is a webhook sink's far end, on loopback in this process: it
// checks each batch's signature with the sink's secret, keeps its
// records, and acknowledges at once. A batch whose signature does not
// check is refused with 401, which the console retries.
type receiver struct {
	srv *http.Server
	url string

	mu      sync.Mutex
	secret  string
	recs    []received
	seen    map[int64]bool // the seqs in recs
	batches int
	forged  int
	// checkpoints counts the signed checkpoints of the chain received.
	checkpoints int
	bad         int // records that are neither an event nor a checkpoint
}

// newReceiver starts a receiver on a loopback port.
func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: listening: %w", err)
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/standin", seen: map[int64]bool{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// setSecret sets the secret batches are checked with: the sink's, shown
// once when it is created.
func (r *receiver) setSecret(s string) {
	r.mu.Lock()
	r.secret = s
	r.mu.Unlock()
}

// verify reports whether sig, from the signature header, is what secret
// signs for body at the Unix time ts (the timestamp header).
func verify(secret, ts, sig string, body []byte) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secret == "" {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(sinks.Sign(secret, time.Unix(sec, 0), body)))
}

// parseBatch reads a batch's JSON Lines: each event's seq and time, and
// how many signed checkpoints of the chain came with them. Lines that
// are neither are counted in bad.
func parseBatch(body []byte, at time.Time) (recs []received, checkpoints, bad int) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var rec struct {
			Type string `json:"type"`
			Seq  int64  `json:"seq"`
			Time string `json:"time"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Seq < 1 {
			bad++
			continue
		}
		if rec.Type == sinks.CheckpointType {
			checkpoints++
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, rec.Time)
		if err != nil {
			bad++
			continue
		}
		recs = append(recs, received{seq: rec.Seq, event: t, at: at})
	}
	if sc.Err() != nil {
		bad++
	}
	return recs, checkpoints, bad
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	at := time.Now()
	if err != nil {
		http.Error(w, "reading the body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	secret := r.secret
	r.mu.Unlock()
	if !verify(secret, req.Header.Get(sinks.HeaderTimestamp), req.Header.Get(sinks.HeaderSignature), body) {
		r.mu.Lock()
		r.forged++
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	recs, checkpoints, bad := parseBatch(body, at)
	r.mu.Lock()
	r.checkpoints += checkpoints
	r.recs = append(r.recs, recs...)
	for _, rec := range recs {
		r.seen[rec.seq] = true
	}
	r.batches++
	r.bad += bad
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// counts are a receiver's counts of batches accepted and refused, and
// of checkpoints and unreadable records.
type counts struct {
	batches, forged, checkpoints, bad int
}

// snapshot returns the records received so far, and the counts.
func (r *receiver) snapshot() ([]received, counts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.recs...), counts{r.batches, r.forged, r.checkpoints, r.bad}
}

// has reports whether seq was received.
func (r *receiver) has(seq int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[seq]
}

// waitFor waits until seq was received, for up to d.
func (r *receiver) waitFor(seq int64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !r.has(seq) {
		if time.Now().After(deadline) {
			_, c := r.snapshot()
			return fmt.Errorf("receiver %s: seq %d not received within %v (%d batches accepted, %d refused)", r.url, seq, d, c.batches, c.forged)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (r *receiver) close() { r.srv.Close() }

// deadReceiver accepts connections and batches and never answers: the
// console's send waits until its timeout.
type deadReceiver struct {
	srv  *http.Server
	url  string
	quit chan struct{}

	mu       sync.Mutex
	attempts int
}

// newDeadReceiver starts a dead receiver on a loopback port.
func newDeadReceiver() (*deadReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dead receiver: listening: %w", err)
	}
	d := &deadReceiver{url: "http://" + ln.Addr().String() + "/standin", quit: make(chan struct{})}
	d.srv = &http.Server{Handler: d}
	go d.srv.Serve(ln)
	return d, nil
}

func (d *deadReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	d.mu.Lock()
	d.attempts++
	d.mu.Unlock()
	select {
	case <-req.Context().Done(): // the console gave up
	case <-d.quit:
	}
}

// tried is how many batches it was sent.
func (d *deadReceiver) tried() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.attempts
}

// waitTried waits until it was sent n batches, for up to t.
func (d *deadReceiver) waitTried(n int, t time.Duration) error {
	deadline := time.Now().Add(t)
	for d.tried() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("dead receiver: %d batches within %v, waiting for %d", d.tried(), t, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (d *deadReceiver) close() {
	close(d.quit)
	d.srv.Close()
}
