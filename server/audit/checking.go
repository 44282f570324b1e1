package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Checking is a verification of the whole log run for those who ask
// (Log.Check): one at a time, shared by everyone who asks while it runs,
// since on a large log it takes minutes and reads every event.
type Checking struct {
	// Run numbers the verification: ask for it again by it.
	Run int64
	// Done says it has finished: Result, or Err, is its outcome.
	Done   bool
	Result Verification
	Err    error
	// Checked is how many events it has read so far, of about Head (the
	// head when it started).
	Checked, Head int64
	Started       time.Time
}

// checkRun is one shared verification.
type checkRun struct {
	n       int64
	head    int64
	started time.Time
	checked atomic.Int64
	done    chan struct{}
	result  Verification
	err     error
}

// checker holds the verification running and the last one finished.
type checker struct {
	wg      sync.WaitGroup // the run going on, waited for at Close
	mu      sync.Mutex
	next    int64
	running *checkRun
	last    *checkRun
}

// Check returns a verification of the whole log (see Verify): run, when it
// is the number of the one running or of the last one finished, else the
// one running, else a new one. It waits up to wait for it to finish; if it
// has not, Done is false and Checked says how far it has got, and it goes
// on for a later call to collect by its Run. It runs until it finishes or
// the Log closes, whoever stops waiting.
func (l *Log) Check(ctx context.Context, run int64, wait time.Duration) Checking {
	r := l.checkRun(run)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
	case <-ctx.Done():
	}
	c := Checking{Run: r.n, Head: r.head, Started: r.started, Checked: r.checked.Load()}
	select {
	case <-r.done:
		c.Done, c.Result, c.Err, c.Checked = true, r.result, r.err, r.result.Checked
	default:
	}
	return c
}

// checkRun returns the run asked for, or the one running, or starts one.
func (l *Log) checkRun(n int64) *checkRun {
	k := &l.checks
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.last != nil && n == k.last.n:
		return k.last
	case k.running != nil:
		return k.running
	}
	k.next++
	r := &checkRun{n: k.next, head: l.committed.Load(), started: time.Now(), done: make(chan struct{})}
	if err := l.checkCtx.Err(); err != nil { // closed: Close waits for no new run
		r.err = unavailable(fmt.Errorf("verify the audit log: %w", err))
		close(r.done)
		return r
	}
	k.running = r
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		r.result, r.err = l.verify(l.checkCtx, &r.checked)
		k.mu.Lock()
		k.running, k.last = nil, r
		k.mu.Unlock()
		close(r.done)
	}()
	return r
}
