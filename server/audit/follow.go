package audit

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"standin/server/standin"
)

// Following the log (Config.Follow): every server sharing a database
// hands each event of the log, whoever appended it, to its window and
// its OnCommit, in seq order, each once. This is how a server learns what
// the others did: their commits reach its live feed, its caches and its
// window by the same path as its own.
//
// The log itself (Store.Page, a read by seq) is the truth, and on a
// database that scans for every query it is dear to read. So the
// follower reads cheap copies first (Store.Mirror): every Follow it asks
// whether the seq it waits for has a copy (Store.Copied, one look-up by
// key); when it has, or an earlier probe or this server's own commit
// showed that more is stored, it reads the copies of the newest events
// and delivers the run that continues the chain it holds (each copy must
// link to the hash before it and hash to its own hash). Only when a seq
// stays missing for followHoleWait (its writer died before copying it,
// or this server fell far behind) does it read the log from that seq.
// Every followFullEvery probes it reads the copies anyway, so that a
// missing copy whose successors are kept is noticed too. A server's own
// commits are delivered at once when nothing before them is missing, so
// on its own a server delivers as fast as it did before following.

const (
	// followHoleWait is how long a missing seq may stay missing before
	// the log itself is read for it.
	followHoleWait = 300 * time.Millisecond
	// followFullEvery is how many probes pass between two reads of the
	// copies that no probe asked for.
	followFullEvery = 20
	// followChunk is how many events one read of the log for a missing
	// seq asks for.
	followChunk = 500
	// conflictTries is how many times the appender reads the copies for
	// the events another server stored before it reads the log's head,
	// pausing conflictPause more before each (with jitter): about 70 ms
	// in all, while a copy normally lands a millisecond or two after its
	// event.
	conflictTries = 10
	conflictPause = time.Millisecond
	// copyBacklog is how many of the newest events whose copies could
	// not be written are kept to be copied again.
	copyBacklog = 512
)

// follower delivers the events of the log in seq order. Its methods are
// safe for concurrent use; delivery happens under mu, so the appender's
// own commits and what the follower read never interleave out of order.
type follower struct {
	l     *Log
	every time.Duration
	wake  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	next     int64  // the next seq to deliver
	prevHash string // the hash of next-1, "" when next is 1 or unknown
	pending  map[int64]pendingEvent
	known    int64     // the highest seq known to be stored
	missing  time.Time // since when next has been known to be missing; zero if not

	// copyMu guards uncopied: this server's events whose copies could
	// not be written yet (see Log.mirror).
	copyMu   sync.Mutex
	uncopied []*standin.Event
}

// pendingEvent is an event waiting for those before it. trusted events
// come from the log or this server's commits; copies must link.
type pendingEvent struct {
	e       *standin.Event
	trusted bool
}

func newFollower(l *Log, every time.Duration, head int64, headHash string) *follower {
	return &follower{
		l: l, every: every, next: head + 1, prevHash: headHash, known: head,
		pending: make(map[int64]pendingEvent), wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// run probes until ctx ends.
func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	t := time.NewTicker(f.every)
	defer t.Stop()
	for probe := 1; ; probe++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.wake:
		}
		f.poll(ctx, probe%followFullEvery == 0)
	}
}

// offer hands over events this server stored (or read from the log), in
// seq order, and delivers what it can.
func (f *follower) offer(evs []*standin.Event) {
	// The caller's events are its own again once Append returns, which
	// may be before they are delivered (an earlier seq is missing).
	cp := make([]*standin.Event, len(evs))
	for i, e := range evs {
		cp[i] = e.Clone()
	}
	f.take(cp, true, time.Now())
}

// poll probes for the next seq and reads the copies when there is
// something to read, then the log when a seq stays missing.
func (f *follower) poll(ctx context.Context, always bool) {
	f.l.mirror(nil) // copies that failed before, if any
	ctx, cancel := context.WithTimeout(ctx, f.l.timeout)
	defer cancel()
	f.mu.Lock()
	next, behind := f.next, f.known >= f.next || len(f.pending) > 0
	f.mu.Unlock()
	if !behind && !always {
		copied, err := f.l.store.Copied(ctx, next)
		if err != nil {
			f.l.logger.Debug("audit follow: probing for new events failed", "err", err)
			return
		}
		if !copied {
			return
		}
	}
	evs, err := f.l.store.Recent(ctx, next-1)
	if err != nil {
		// The copies cannot be read: a seq missing for long is read
		// from the log all the same.
		f.l.logger.Debug("audit follow: reading recent events failed", "err", err)
		evs = nil
	}
	if f.take(evs, false, time.Now()) {
		f.fill(ctx)
	}
}

// take adds evs to what waits and delivers the run that continues the
// chain. It reports whether a seq has been missing for followHoleWait.
func (f *follower) take(evs []*standin.Event, trusted bool, now time.Time) (overdue bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range evs {
		if e.Seq < f.next {
			continue
		}
		if p, ok := f.pending[e.Seq]; !ok || (trusted && !p.trusted) {
			f.pending[e.Seq] = pendingEvent{e: e, trusted: trusted}
		}
		f.known = max(f.known, e.Seq)
	}
	var run []*standin.Event
	for {
		p, ok := f.pending[f.next]
		if !ok {
			break
		}
		delete(f.pending, f.next)
		if !p.trusted && !f.links(p.e) {
			f.l.logger.Debug("audit follow: a recent copy does not continue the chain; reading the log", "seq", p.e.Seq)
			break
		}
		run = append(run, p.e)
		f.prevHash = p.e.Hash
		f.next++
	}
	if len(run) > 0 {
		f.l.deliver(run)
		f.missing = time.Time{}
	}
	if f.known < f.next && len(f.pending) == 0 {
		f.missing = time.Time{}
		return false
	}
	if f.missing.IsZero() {
		f.missing = now
		select {
		case f.wake <- struct{}{}: // look again soon rather than at the next tick
		default:
		}
	}
	return now.Sub(f.missing) >= followHoleWait
}

// links reports whether e, a copy, continues the chain delivered so far.
func (f *follower) links(e *standin.Event) bool {
	return (f.prevHash == "" || e.PrevHash == f.prevHash) && ComputeHash(e) == e.Hash
}

// fill reads the log from the first missing seq, a chunk at a time,
// while that moves the follower on.
func (f *follower) fill(ctx context.Context) {
	for {
		f.mu.Lock()
		next := f.next
		f.mu.Unlock()
		evs, err := f.l.store.Page(ctx, PageQuery{After: next - 1, Limit: followChunk})
		if err != nil {
			f.l.logger.Warn("audit follow: reading the log for missing events failed", "after", next-1, "err", err)
			return
		}
		if len(evs) == 0 {
			f.l.logger.Debug("audit follow: a copy was ahead of the log", "next", next)
			f.mu.Lock()
			f.known = min(f.known, next-1)
			f.missing = time.Time{}
			f.mu.Unlock()
			return
		}
		evs = inOrder(evs)
		if len(evs) > 0 && evs[0].Seq > next {
			f.skip(next, evs[0])
		}
		f.take(evs, true, time.Now())
		f.mu.Lock()
		moved := f.next > next
		f.mu.Unlock()
		if !moved || len(evs) < followChunk {
			return
		}
	}
}

// inOrder drops, from events read in the order of the seqs they are
// stored under, those whose own seq breaks that order: a damaged document
// whose seq field is not its key. Verify reports it.
func inOrder(evs []*standin.Event) []*standin.Event {
	out := evs[:0:0]
	for i, e := range evs {
		if i+1 < len(evs) && e.Seq >= evs[i+1].Seq {
			continue
		}
		if len(out) > 0 && e.Seq <= out[len(out)-1].Seq {
			continue
		}
		out = append(out, e)
	}
	return out
}

// skip moves the follower past seqs the log itself lacks (deleted, or
// damaged beyond reading): next is missing and first is the next event
// stored. Verify reports the gap; the follower must not wait for it.
func (f *follower) skip(next int64, first *standin.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next != next {
		return
	}
	f.l.logger.Error("audit follow: the log lacks events; following goes on after them",
		"from", next, "to", first.Seq-1)
	f.next, f.prevHash, f.missing = first.Seq, first.PrevHash, time.Time{}
	if f.l.win != nil {
		f.l.win.restart() // its run ends before the gap
	}
	for seq := range f.pending {
		if seq < f.next {
			delete(f.pending, seq)
		}
	}
}

// deliver hands run, the next events of the log in seq order, to the
// window and OnCommit.
func (l *Log) deliver(run []*standin.Event) {
	l.noteCommitted(run[len(run)-1].Seq)
	l.publish(run)
}

// learnHead learns, after another server took the next seq, where the log
// now ends from the copies of its newest events: the run that continues
// the chain from the head. The other server mirrors just after it
// stores, so a missing copy is waited for briefly. It reports whether it
// moved the head; if not, the caller reads the head from the log.
func (l *Log) learnHead(ctx context.Context) bool {
	for try := range conflictTries {
		evs, err := l.store.Recent(ctx, l.head)
		if err != nil {
			return false
		}
		seq, hash := l.head, l.headHash
		for _, e := range evs {
			if e.Seq != seq+1 || (hash != "" && e.PrevHash != hash) || ComputeHash(e) != e.Hash {
				break
			}
			seq, hash = e.Seq, e.Hash
		}
		if seq > l.head {
			l.head, l.headHash, l.headKnown = seq, hash, true
			return true
		}
		pause := time.Duration(try+1)*conflictPause + rand.N(conflictPause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return false
		}
	}
	return false
}

// mirror keeps copies of evs, just stored, for the servers that follow
// the log, unless this Log is the database's one writer. Copies that
// cannot be written are kept and written again before the next ones and
// at every probe of this server's follower, until they are: a follower
// learns of new events from their copies, so events whose copies were
// lost would reach the others only after a later commit.
func (l *Log) mirror(evs []*standin.Event) {
	if l.sole {
		return // no other server reads them
	}
	f := l.follow
	f.copyMu.Lock()
	todo := append(f.uncopied, evs...)
	f.uncopied = nil
	f.copyMu.Unlock()
	if len(todo) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), l.timeout)
	defer cancel()
	err := l.store.Mirror(ctx, todo)
	if err == nil {
		return
	}
	again := len(todo) > len(evs) // earlier copies had failed already
	f.copyMu.Lock()
	f.uncopied = keepUncopied(append(todo, f.uncopied...))
	f.copyMu.Unlock()
	log := l.logger.Warn
	if again {
		log = l.logger.Debug // said when the copies first failed
	}
	log("audit: copying new events for the other servers failed; they are copied again shortly",
		"first_seq", todo[0].Seq, "last_seq", todo[len(todo)-1].Seq, "err", err)
}

// keepUncopied orders evs by seq without repeats and keeps the newest
// copyBacklog of them: older copies would have left the others' reach
// anyway, and a follower that sees a later copy reads the gap from the
// log.
func keepUncopied(evs []*standin.Event) []*standin.Event {
	slices.SortFunc(evs, func(a, b *standin.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	evs = slices.CompactFunc(evs, func(a, b *standin.Event) bool { return a.Seq == b.Seq })
	if len(evs) > copyBacklog {
		evs = evs[len(evs)-copyBacklog:]
	}
	return slices.Clip(evs)
}
