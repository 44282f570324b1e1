package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/standin"
)

// networkError is what the store answers when the connection is lost
// mid-command (package mongostore turns the driver's network errors into
// errors that wrap audit.ErrUnreachable).
var networkError = fmt.Errorf("connection reset (simulated): %w", audit.ErrUnreachable)

// startCalls makes n concurrent single-event Appends and returns their
// events and a function that waits for their results.
func startCalls(l *audit.Log, n int) ([]*standin.Event, func() []error) {
	evs := make([]*standin.Event, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		evs[i] = login(fmt.Sprint(i))
		wg.Go(func() { errs[i] = l.Append(context.Background(), evs[i]) })
	}
	return evs, func() []error { wg.Wait(); return errs }
}

// The appender's handling of inserts that fail part-way, checked by
// simulating the database's answers around real writes.
func TestInsertFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PrefixStoredThenRetried", func(t *testing.T) {
		// The connection drops after the database stored the first
		// documents of an insert: those calls succeed, the rest are
		// written again after them, and nothing is stored twice.
		t.Parallel()
		var rec recorder
		l := mustLog(t, mustDB(t), audit.Config{OnCommit: rec.onCommit})
		mustAppend(t, l, login("before"))
		var faults atomic.Int32
		audit.SetInsert(l, func(real audit.InsertFunc) audit.InsertFunc {
			return func(ctx context.Context, docs []*standin.Event) error {
				if faults.Add(1) == 1 {
					if err := real(ctx, docs[:len(docs)/2+1]); err != nil {
						return err
					}
					return networkError
				}
				return real(ctx, docs)
			}
		})
		multi := []*standin.Event{login("m1"), login("m2"), login("m3"), login("m4")}
		if err := l.Append(ctx, multi...); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if faults.Load() != 2 {
			t.Fatalf("%d inserts", faults.Load())
		}
		if s := seqsOf(multi); !slices.Equal(s, seqRange(2, 5)) {
			t.Fatalf("seqs %v", s)
		}
		if s := rec.seqs(); !slices.Equal(s, seqRange(1, 5)) {
			t.Fatalf("OnCommit saw %v", s)
		}
		mustVerify(t, l, 5)
	})

	t.Run("InDoubtButStored", func(t *testing.T) {
		// The insert is applied but its answer lost, and the database
		// cannot be asked in time. The caller is told it failed; the next
		// append finds the events stored, logs them and publishes them
		// before its own.
		t.Parallel()
		var rec recorder
		var logged counter
		// With a window, which answers ByObject from memory: it must
		// learn of the settled event.
		l := mustLog(t, mustDB(t), audit.Config{OnCommit: rec.onCommit, Logger: slogTo(&logged), Window: 1000})
		var lose, blind atomic.Bool
		audit.SetInsert(l, func(real audit.InsertFunc) audit.InsertFunc {
			return func(ctx context.Context, docs []*standin.Event) error {
				if err := real(ctx, docs); err != nil || !lose.Swap(false) {
					return err
				}
				return networkError
			}
		})
		audit.SetReadHashes(l, func(real audit.ReadHashesFunc) audit.ReadHashesFunc {
			return func(ctx context.Context, from, to int64) (map[int64]string, error) {
				if blind.Swap(false) {
					return nil, networkError
				}
				return real(ctx, from, to)
			}
		})
		mustAppend(t, l, login("before")) // the window holds the log from seq 1
		lose.Store(true)
		blind.Store(true)
		e := login("doubt")
		e.Object = "booking:doubt"
		err := l.Append(ctx, e)
		wantCode(t, err, standin.EUnavailable)
		if !errors.Is(err, standin.ErrInDoubt) {
			t.Fatalf("the append's error %v does not say it is in doubt", err)
		}
		if e.Seq != 0 || e.Hash != "" || !slices.Equal(rec.seqs(), []int64{1}) {
			t.Fatalf("failed event kept seq %d hash %q; published %v", e.Seq, e.Hash, rec.seqs())
		}
		// Until settled, the log does not know of it...
		if got, err := l.ByObject(ctx, e.Type, e.Object); standin.ErrorCode(err) != standin.ENotFound {
			t.Fatalf("before Settle, ByObject = %+v, %v", got, err)
		}
		// ...and settling finds it stored: the log answers for it at once.
		if err := l.Settle(ctx); err != nil {
			t.Fatalf("Settle: %v", err)
		}
		if got, err := l.ByObject(ctx, e.Type, e.Object); err != nil || got.ID != e.ID {
			t.Fatalf("after Settle, ByObject = %+v, %v", got, err)
		}
		next := login("next")
		mustAppend(t, l, next)
		if next.Seq != 3 {
			t.Fatalf("next got seq %d", next.Seq)
		}
		if s := rec.seqs(); !slices.Equal(s, []int64{1, 2, 3}) || rec.evs[1].ID != e.ID {
			t.Fatalf("OnCommit saw %v", s)
		}
		if logged.count("in doubt") != 1 || logged.count("stored although") != 1 {
			t.Fatalf("logged %v", logged.msgs)
		}
		mustVerify(t, l, 3)
	})

	t.Run("InDoubtNotStored", func(t *testing.T) {
		t.Parallel()
		var rec recorder
		l := mustLog(t, mustDB(t), audit.Config{OnCommit: rec.onCommit, Logger: discard(), Window: 1000})
		var fail, blind atomic.Bool
		audit.SetInsert(l, func(real audit.InsertFunc) audit.InsertFunc {
			return func(ctx context.Context, docs []*standin.Event) error {
				if fail.Swap(false) {
					return networkError
				}
				return real(ctx, docs)
			}
		})
		audit.SetReadHashes(l, func(real audit.ReadHashesFunc) audit.ReadHashesFunc {
			return func(ctx context.Context, from, to int64) (map[int64]string, error) {
				if blind.Swap(false) {
					return nil, networkError
				}
				return real(ctx, from, to)
			}
		})
		mustAppend(t, l, login("before")) // the window holds the log from seq 1
		fail.Store(true)
		blind.Store(true)
		lost := login("lost")
		lost.Object = "booking:lost"
		err := l.Append(ctx, lost)
		wantCode(t, err, standin.EUnavailable)
		if !errors.Is(err, standin.ErrInDoubt) {
			t.Fatalf("the append's error %v does not say it is in doubt", err)
		}
		if err := l.Settle(ctx); err != nil {
			t.Fatalf("Settle: %v", err)
		}
		if got, err := l.ByObject(ctx, lost.Type, lost.Object); standin.ErrorCode(err) != standin.ENotFound {
			t.Fatalf("after Settle, the lost event is found: %+v, %v", got, err)
		}
		if !slices.Equal(rec.seqs(), []int64{1}) {
			t.Fatalf("published %v", rec.seqs())
		}
		next := login("next")
		mustAppend(t, l, next)
		if next.Seq != 2 || !slices.Equal(rec.seqs(), []int64{1, 2}) {
			t.Fatalf("next seq %d, published %v", next.Seq, rec.seqs())
		}
		mustVerify(t, l, 2)
	})

	t.Run("RejectedByDatabase", func(t *testing.T) {
		// An error the database answers with is not retried: the calls
		// fail as internal errors, nothing is stored, the log goes on.
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		var fail atomic.Bool
		audit.SetInsert(l, func(real audit.InsertFunc) audit.InsertFunc {
			return func(ctx context.Context, docs []*standin.Event) error {
				if fail.Swap(false) {
					return errors.New("append audit events: bad value (simulated)") // as the store answers an error of the database
				}
				return real(ctx, docs)
			}
		})
		fail.Store(true)
		err := l.Append(ctx, login("a"), login("b"))
		wantCode(t, err, standin.EInternal)
		mustAppend(t, l, login("c"))
		if s := seqsOf(all(t, l)); !slices.Equal(s, []int64{1}) {
			t.Fatalf("stored %v", s)
		}
	})

	t.Run("DatabaseStopsAnswering", func(t *testing.T) {
		// Inserts hang until the commit's timeout: the call fails with
		// EUnavailable in bounded time, and so does everything that queued
		// behind it, without each waiting for its own timeout.
		t.Parallel()
		const timeout = time.Second
		var rec recorder
		l := mustLog(t, mustDB(t), audit.Config{Timeout: timeout, MaxBatch: 1, OnCommit: rec.onCommit})
		var hang atomic.Bool
		entered := make(chan struct{}, 100)
		audit.SetInsert(l, func(real audit.InsertFunc) audit.InsertFunc {
			return func(ctx context.Context, docs []*standin.Event) error {
				if hang.Load() {
					entered <- struct{}{}
					<-ctx.Done()
					return ctx.Err()
				}
				return real(ctx, docs)
			}
		})
		hang.Store(true)
		start := time.Now()
		first := login("first")
		firstErr := make(chan error, 1)
		go func() { firstErr <- l.Append(ctx, first) }()
		<-entered
		_, wait := startCalls(l, 10)
		for deadline := time.Now().Add(10 * time.Second); audit.Pending(l) < 10; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) { // they queue behind the hung insert
				t.Fatal("calls did not queue")
			}
		}
		wantCode(t, <-firstErr, standin.EUnavailable)
		for i, err := range wait() {
			if standin.ErrorCode(err) != standin.EUnavailable {
				t.Errorf("queued call %d: %v", i, err)
			}
		}
		if d := time.Since(start); d > 4*timeout {
			t.Errorf("calls took %v with a %v timeout", d, timeout)
		}
		if len(rec.seqs()) != 0 {
			t.Errorf("published %v", rec.seqs())
		}
		hang.Store(false)
		mustAppend(t, l, login("after"))
		mustVerify(t, l, 1)
	})

	t.Run("WithdrawnWhileQueued", func(t *testing.T) {
		// A call whose context ends while it waits behind a slow commit is
		// withdrawn: it is never stored.
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		release, entered := make(chan struct{}), make(chan struct{})
		var slow atomic.Bool
		audit.SetInsert(l, func(real audit.InsertFunc) audit.InsertFunc {
			return func(ctx context.Context, docs []*standin.Event) error {
				if slow.Swap(false) {
					close(entered)
					<-release
				}
				return real(ctx, docs)
			}
		})
		slow.Store(true)
		firstErr := make(chan error, 1)
		go func() { firstErr <- l.Append(ctx, login("slow")) }()
		<-entered
		cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		gone := login("gone")
		err := l.Append(cctx, gone)
		close(release)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("withdrawn Append = %v", err)
		}
		wantCode(t, err, standin.EUnavailable)
		if err := <-firstErr; err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, login("last"))
		for _, e := range all(t, l) {
			if e.ID == gone.ID {
				t.Fatal("withdrawn event was stored")
			}
		}
		mustVerify(t, l, 2)
	})

	t.Run("CloseGivesUp", func(t *testing.T) {
		// Close with a deadline abandons a hung commit; its caller and
		// everything queued fail rather than wait.
		t.Parallel()
		l, err := audit.Open(ctx, mustDB(t).Events(), audit.Config{Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		entered := make(chan struct{}, 1)
		audit.SetInsert(l, func(real audit.InsertFunc) audit.InsertFunc {
			return func(ctx context.Context, docs []*standin.Event) error {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-ctx.Done()
				return ctx.Err()
			}
		})
		_, wait := startCalls(l, 5)
		<-entered
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := l.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v", err)
		}
		for i, err := range wait() {
			if standin.ErrorCode(err) != standin.EUnavailable {
				t.Errorf("call %d: %v", i, err)
			}
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Close and calls took %v", d)
		}
	})
}

// A Log whose head is stale (another server appended since) collides on
// the next seq, re-reads the head and appends after it.
func TestStaleHead(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	var logged counter
	a := mustLog(t, db, audit.Config{})
	b := mustLog(t, db, audit.Config{Logger: slogTo(&logged)})
	first := []*standin.Event{login("a1"), login("a2"), login("a3")}
	mustAppend(t, a, first...)
	e := login("b1")
	mustAppend(t, b, e)
	if e.Seq != 4 || e.PrevHash != first[2].Hash {
		t.Fatalf("seq %d prev %q", e.Seq, e.PrevHash)
	}
	if logged.count("conflict") != 1 {
		t.Fatalf("logged %v", logged.msgs)
	}
	mustAppend(t, a, login("a4"))
	mustVerify(t, a, 5)
}
