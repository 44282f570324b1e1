package signals_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/clustertest"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/signals"
)

func TestMain(m *testing.M) {
	code := dbtest.Main(m)
	clustertest.RemoveBinary() // built for the test of several servers
	os.Exit(code)
}

// received collects what a stream hands its handler.
type received struct {
	mu     sync.Mutex
	seqs   []int64
	data   []string
	missed atomic.Int64
}

func (r *received) handle(s signals.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, s.Seq)
	r.data = append(r.data, s.Kind+":"+string(s.Data))
}

func (r *received) snapshot() ([]int64, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seqs), slices.Clone(r.data)
}

func open(t *testing.T, store signals.Store, r *received) *signals.Stream {
	t.Helper()
	s, err := signals.Open(context.Background(), store, signals.Config{
		Handle: r.handle, Missed: func() { r.missed.Add(1) }, Every: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// waitFor waits until r holds n signals, or fails.
func waitFor(t *testing.T, what string, r *received, n int) ([]int64, []string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		seqs, data := r.snapshot()
		if len(seqs) >= n || time.Now().After(deadline) {
			if len(seqs) != n {
				t.Fatalf("%s received %d signals, want %d: %v", what, len(seqs), n, seqs)
			}
			return seqs, data
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Three servers sending at once each receive every signal, theirs and the
// others', in one order, each once, under seqs 1..n; each server's own
// signals keep the order it sent them in.
func TestEveryServerReceivesEverySignal(t *testing.T) {
	t.Parallel()
	// The database runs as a process of its own, at its own speed.
	uri := clustertest.StartDatabase(t)
	const servers, each = 3, 40
	var recs [servers]received
	streams := make([]*signals.Stream, servers)
	for i := range streams {
		conn, err := mongostore.Open(context.Background(), uri, "standin", mongostore.Options{AppendOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		streams[i] = open(t, conn.Signals(), &recs[i])
	}
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() {
			for k := range each {
				s.Send("test", fmt.Appendf(nil, "%d-%03d", i, k))
			}
		})
	}
	wg.Wait()
	var first []string
	for i := range recs {
		seqs, data := waitFor(t, fmt.Sprintf("server %d", i), &recs[i], servers*each)
		for k, seq := range seqs {
			if seq != int64(k+1) {
				t.Fatalf("server %d received seqs %v", i, seqs)
			}
		}
		if i == 0 {
			first = data
		} else if !slices.Equal(data, first) {
			t.Fatalf("server %d received another order than server 0", i)
		}
	}
	for i := range servers {
		var own []string
		for _, d := range first {
			if d[len("test:")] == byte('0'+i) {
				own = append(own, d)
			}
		}
		if len(own) != each || !slices.IsSorted(own) {
			t.Errorf("server %d's signals arrived as %v", i, own)
		}
	}
}

// A server that falls behind by more than the store keeps is told it
// missed signals and carries on with those kept.
func TestMissedSignals(t *testing.T) {
	t.Parallel()
	db := dbtest.MustOpen(t)
	var rec received
	// A stream that starts now, then signals stored behind its back with
	// a gap a writer could never leave but a pruned ring can.
	open(t, db.Signals(), &rec)
	for _, seq := range []int64{1, 3, 4} {
		if err := db.Signals().Insert(context.Background(), signals.Signal{Seq: seq, Kind: "k", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	seqs, _ := waitFor(t, "the server", &rec, 3)
	if !slices.Equal(seqs, []int64{1, 3, 4}) || rec.missed.Load() != 1 {
		t.Fatalf("received %v and was told of %d misses, want [1 3 4] and 1", seqs, rec.missed.Load())
	}
}

// A server that falls further behind than the store keeps is told it
// missed signals and carries on with the newest; a signal it then sends
// goes after the newest, where the other servers see it.
func TestFarBehind(t *testing.T) {
	t.Parallel()
	db := dbtest.MustOpen(t)
	var slowRec, fastRec received
	// The server behind is held in its handler by the first signal while
	// the others store more than the ring keeps.
	holding, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow, err := signals.Open(context.Background(), db.Signals(), signals.Config{
		Handle: func(s signals.Signal) {
			once.Do(func() { close(holding); <-release })
			slowRec.handle(s)
		},
		Missed: func() { slowRec.missed.Add(1) }, Every: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close(context.Background()) })
	const n = mongostore.RingKeep + 60
	for seq := int64(1); seq <= n; seq++ {
		if err := db.Signals().Insert(context.Background(), signals.Signal{Seq: seq, Kind: "k", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if seq == 1 {
			<-holding
		}
	}
	close(release)
	deadline := time.Now().Add(60 * time.Second)
	for slowRec.missed.Load() == 0 || slowRec.last() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the server behind reached seq %d and was told of %d misses", slowRec.last(), slowRec.missed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fast := open(t, dbtest.MustConnect(t, db, mongostore.Options{AppendOnly: true}).Signals(), &fastRec)
	_ = fast
	slow.Send("late", []byte("from behind"))
	_, data := waitFor(t, "another server", &fastRec, 1)
	if data[0] != "late:from behind" {
		t.Fatalf("another server received %v", data)
	}
}

func (r *received) last() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seqs) == 0 {
		return 0
	}
	return r.seqs[len(r.seqs)-1]
}
