package sinks_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/lease"
	"standin/server/sinks"
	"standin/server/standin"
)

// TestCheckpointsReachSinks: the signed checkpoints of the chain reach a
// sink after the events they attest, and verify with the log's public
// key: a copy of the log's head outside the database.
func TestCheckpointsReachSinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	key, err := audit.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := sinks.NewPublisher(db, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	an, err := audit.OpenAnchor(audit.AnchorConfig{Key: key, Dir: t.TempDir(), Events: 10, Every: time.Hour,
		Sinks: []audit.CheckpointSink{pub}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, db.Events(), audit.Config{Window: 10000, Anchor: an})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })

	var mu sync.Mutex
	var lines []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sc := bufio.NewScanner(bytes.NewReader(body))
		mu.Lock()
		defer mu.Unlock()
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines = append(lines, m)
			}
		}
	}))
	t.Cleanup(srv.Close)
	if err := db.CreateSink(ctx, &standin.Sink{Name: "SIEM", Kind: standin.SinkWebhook, URL: srv.URL, Format: standin.FormatStandin,
		Secret: secret, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	allow, _ := sinks.ParseAllowlist("127.0.0.1")
	d := sinks.NewDeliverer(sinks.Config{Store: db, Log: l, Checkpoints: db, Allow: allow, Period: 30 * time.Millisecond, Term: time.Second,
		Leases: lease.New(db.Leases(), lease.Config{Logger: slog.New(slog.DiscardHandler)})})
	dctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(dctx) }()
	t.Cleanup(func() { stop(); <-done })

	f := &fixture{db: db, log: l}
	f.appendEvents(t, 35)
	wantKey, _ := base64.StdEncoding.DecodeString(key.Public().PublicKey)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := append([]map[string]any(nil), lines...)
		mu.Unlock()
		var top float64
		var checkpoints []audit.Checkpoint
		for _, m := range got {
			seq, _ := m["seq"].(float64)
			if m["type"] != sinks.CheckpointType {
				top = max(top, seq)
				continue
			}
			if seq > top {
				t.Fatalf("checkpoint %v came before the event it attests (newest event %v)", seq, top)
			}
			raw, _ := json.Marshal(m["checkpoint"])
			var c audit.Checkpoint
			if err := json.Unmarshal(raw, &c); err != nil || c.Seq != int64(seq) {
				t.Fatalf("checkpoint record %v: %v", m, err)
			}
			if err := c.Verify(ed25519.PublicKey(wantKey)); err != nil {
				t.Fatalf("checkpoint %d does not verify: %v", c.Seq, err)
			}
			checkpoints = append(checkpoints, c)
		}
		if len(checkpoints) >= 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d checkpoints reached the sink among %d records", len(checkpoints), len(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
