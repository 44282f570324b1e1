package audit

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"standin/server/standin"
)

// window keeps the newest events of the log in memory, in seq order, so
// that queries about recent activity, realtime replays and start-up
// repair never wait for a database that scans (FerretDB reads and decodes
// every document of the collection for any query, even one by _id;
// see package mongostore).
//
// It is exact only while its Log is the one writer of the collection,
// which the server guarantees for the embedded database it owns. Should
// it ever see a seq it did not expect (another writer appended, or
// events were found stored after a failed insert out of order), it turns
// itself off and every query goes to the database again.
// windowFillPage is how many events one read of fillWindow asks for.
const windowFillPage = 1024

type window struct {
	mu   sync.RWMutex
	max  int
	fill int              // how many events loadNewest reads (Config.WindowFill)
	evs  []*standin.Event // evs[i].Seq == evs[0].Seq+i; the last is the head
	off  bool
}

func newWindow(max int) *window { return &window{max: max, fill: max} }

// loadNewest fills the window with one page of the newest fill events,
// for a Log that reads the log by seq range rather than in stored order
// (one query, where a pass over the collection would read all of it). It
// returns the head.
func (w *window) loadNewest(ctx context.Context, l *Log) (head int64, hash string, err error) {
	evs, err := l.store.Page(ctx, PageQuery{Limit: w.fill})
	if err != nil {
		return 0, "", fault(err, "load recent audit events")
	}
	if len(evs) == 0 {
		return 0, "", nil
	}
	slices.Reverse(evs)
	head, hash = evs[len(evs)-1].Seq, evs[len(evs)-1].Hash
	// Keep the contiguous run that ends at the head, as load does.
	w.mu.Lock()
	w.evs = evs[runEndingAt(evs, head):]
	w.mu.Unlock()
	return head, hash, nil
}

// runEndingAt returns where, in evs (ascending seqs), the run of
// consecutive seqs that ends with seq end begins: len(evs) when the last
// event is not end.
func runEndingAt(evs []*standin.Event, end int64) int {
	i := len(evs)
	for i > 0 && evs[i-1].Seq == end-int64(len(evs)-i) {
		i--
	}
	return i
}

// restart empties the window: the next events added start it again. The
// follower calls it when it steps over seqs the log lacks.
func (w *window) restart() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.evs = nil
}

// load fills the window from the database in one pass in stored order,
// which is seq order since a seq is only ever inserted after its
// predecessor, keeping the newest max events. It returns the head.
func (w *window) load(ctx context.Context, l *Log) (head int64, hash string, err error) {
	ring := make([]*standin.Event, 0, min(w.max, 4096))
	start := 0 // ring is full when len == max; then start is its oldest slot
	err = l.scan(ctx, "load recent audit events", Scan{All: true}, func(s Stored) error {
		e := s.Event
		if s.Seq > head {
			head, hash = s.Seq, e.Hash
		}
		if len(ring) < w.max {
			ring = append(ring, e)
			return nil
		}
		ring[start] = e
		start = (start + 1) % w.max
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	evs := append(slices.Clone(ring[start:]), ring[:start]...)
	slices.SortFunc(evs, func(a, b *standin.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	// Keep the contiguous run that ends at the head; anything older than
	// a gap is left to the database.
	w.mu.Lock()
	w.evs = evs[runEndingAt(evs, head):]
	w.mu.Unlock()
	return head, hash, nil
}

// last returns the seq of the newest event the window holds, 0 when it
// holds none or is off.
func (w *window) last() int64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.off || len(w.evs) == 0 {
		return 0
	}
	return w.evs[len(w.evs)-1].Seq
}

// add appends stored events, in seq order, after the head.
func (w *window) add(evs []*standin.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off {
		return nil
	}
	for _, e := range evs {
		if n := len(w.evs); n > 0 && e.Seq != w.evs[n-1].Seq+1 {
			last := w.evs[n-1].Seq
			w.off, w.evs = true, nil
			return fmt.Errorf("event %d follows event %d: another writer shares the audit log", e.Seq, last)
		}
		w.evs = append(w.evs, e.Clone())
	}
	if len(w.evs) >= 2*w.max {
		// Dropping the oldest half at once keeps appends amortized O(1).
		w.evs = slices.Clone(w.evs[len(w.evs)-w.max:])
	}
	return nil
}

// size returns how many events the window holds.
func (w *window) size() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.evs)
}

// oldest returns the seq of the oldest event the window holds and whether
// it has room for older ones: it is on, not empty, not full and does not
// reach back to seq 1.
func (w *window) oldest() (seq int64, room bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.off || len(w.evs) == 0 {
		return 0, false
	}
	return w.evs[0].Seq, w.evs[0].Seq > 1 && len(w.evs) < w.max
}

// prepend puts older, events in seq order read from the store, before the
// window's oldest event, which must be before: as many of the newest of
// them as run contiguously up to it and fit under max. It reports whether
// it added any.
func (w *window) prepend(older []*standin.Event, before int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off || len(w.evs) == 0 || w.evs[0].Seq != before {
		return false // restarted, or the log moved on past it
	}
	run := older[runEndingAt(older, before-1):]
	if room := w.max - len(w.evs); len(run) > room {
		run = run[len(run)-max(room, 0):]
	}
	if len(run) == 0 {
		return false
	}
	evs := make([]*standin.Event, 0, len(run)+len(w.evs))
	for _, e := range run {
		evs = append(evs, e.Clone())
	}
	w.evs = append(evs, w.evs...)
	return true
}

// fillWindow reads, in the background, the events before the window's
// oldest into it, a page at a time, until it is full or reaches seq 1:
// Open filled it with only the newest Config.WindowFill events, and the
// queries it can answer grow as it fills. It stops when ctx ends, the
// store fails, or the window restarts.
func (l *Log) fillWindow(ctx context.Context) {
	for {
		before, room := l.win.oldest()
		if !room {
			return
		}
		evs, err := l.store.Page(ctx, PageQuery{Before: before, Limit: windowFillPage})
		if err != nil {
			if ctx.Err() == nil {
				l.logger.Warn("audit: older events could not be read into memory; queries for them read the database", "err", err)
			}
			return
		}
		slices.Reverse(evs)
		if !l.win.prepend(evs, before) {
			return
		}
	}
}

// newest collects, newest first, up to n events matching keep with seq below
// before (0: from the head). complete reports that nothing older than the
// window could still match: either n were found or the window reaches
// back to seq 1. from is the oldest seq examined.
func (w *window) newest(keep func(*standin.Event) bool, before int64, n int) (out []*standin.Event, from int64, complete, ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.off || len(w.evs) == 0 {
		return nil, 0, false, false
	}
	first := w.evs[0].Seq
	i := len(w.evs) - 1
	if before > 0 {
		if before <= first {
			return nil, 0, false, false
		}
		i = min(i, int(before-first)-1)
	}
	for ; i >= 0 && len(out) < n; i-- {
		if keep(w.evs[i]) {
			out = append(out, w.evs[i].Clone())
		}
	}
	return out, w.evs[i+1].Seq, len(out) == n || first == 1, true
}

// after returns, oldest first, up to n events matching m (all if n < 0)
// with seq above seq. ok is false when events above seq are missing from
// the window.
func (w *window) after(m *Matcher, seq int64, n int) (out []*standin.Event, ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.off || len(w.evs) == 0 || seq+1 < w.evs[0].Seq {
		return nil, false
	}
	for i := max(int(seq+1-w.evs[0].Seq), 0); i < len(w.evs) && (n < 0 || len(out) < n); i++ {
		if m.Match(w.evs[i]) {
			out = append(out, w.evs[i].Clone())
		}
	}
	return out, true
}

// Matcher is an EventFilter, but for AfterSeq, evaluated in memory. It
// selects exactly what a Store's queries select (see Log.Query); a Store
// that answers from events it holds decoded uses it to agree with them.
type Matcher struct {
	f        standin.EventFilter
	projects map[string]bool
}

// NewMatcher returns the Matcher of f.
func NewMatcher(f standin.EventFilter) *Matcher {
	m := &Matcher{f: f}
	if f.Projects != nil {
		m.projects = make(map[string]bool, len(f.Projects))
		for _, p := range f.Projects {
			m.projects[p] = true
		}
	}
	return m
}

// Match reports whether e is selected.
func (m *Matcher) Match(e *standin.Event) bool {
	f := &m.f
	switch {
	case f.Type != "" && e.Type != f.Type,
		f.ActorID != "" && e.Actor.ID != f.ActorID,
		f.SubjectID != "" && e.Subject.ID != f.SubjectID,
		f.ImpersonationID != "" && e.ImpersonationID != f.ImpersonationID,
		f.Project != "" && e.Project != f.Project && !slices.Contains(e.Projects, f.Project),
		!f.Since.IsZero() && e.Time.Before(StoredTime(f.Since)),
		!f.Until.IsZero() && !e.Time.Before(StoredTime(f.Until)):
		return false
	}
	if m.projects != nil {
		return slices.ContainsFunc(e.Projects, func(p string) bool { return m.projects[p] })
	}
	return true
}

// hashAt returns the hash of the event at seq; ok is false when the
// window does not hold it.
func (w *window) hashAt(seq int64) (hash string, ok bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.off || len(w.evs) == 0 || seq < w.evs[0].Seq || seq > w.evs[len(w.evs)-1].Seq {
		return "", false
	}
	return w.evs[seq-w.evs[0].Seq].Hash, true
}
