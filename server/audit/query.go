package audit

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"standin/server/standin"
)

// replayChunk is how many events EventsAfter copies out of the window at
// a time.
const replayChunk = 1000

// Page sizes of Query.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Query returns one page of the events matching f and the cursor of the
// next page ("" on the last).
//
// Without f.AfterSeq the page is newest first and the cursor is the seq
// (in decimal) of its last event: the next page holds older events. With
// f.AfterSeq > 0 the page is oldest first, starting at AfterSeq+1, for a
// client catching up; its cursor is again the seq of the last event and
// the next page continues above it.
//
// p.Limit outside 1..MaxLimit becomes DefaultLimit (0 or less) or MaxLimit.
// Filters: Type, ActorID, SubjectID and ImpersonationID match exactly;
// Project matches events whose project is it or whose projects include
// it; Projects, when not nil, keeps events whose projects include any of
// them (an empty slice matches nothing); Since is inclusive and Until
// exclusive.
//
// Errors: EInvalid for a cursor this server did not give out or a
// negative AfterSeq; EUnavailable when the database cannot be reached.
func (l *Log) Query(ctx context.Context, f standin.EventFilter, p standin.Page) ([]*standin.Event, string, error) {
	none, err := checkFilter(f)
	if err != nil {
		return nil, "", err
	}
	limit := p.Limit
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var cursor int64
	if p.Cursor != "" {
		cursor, err = strconv.ParseInt(p.Cursor, 10, 64)
		if err != nil || cursor <= 0 {
			return nil, "", standin.Errorf(standin.EInvalid, "The cursor %q is not one this server gave out.", p.Cursor)
		}
	}
	if none {
		return []*standin.Event{}, "", nil
	}
	var evs []*standin.Event
	if l.windowCurrent() {
		evs, err = l.queryWindow(ctx, f, cursor, limit+1)
	} else {
		evs, err = l.queryDB(ctx, f, f.AfterSeq, cursor, limit+1)
	}
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(evs) > limit {
		evs = evs[:limit]
		next = strconv.FormatInt(evs[limit-1].Seq, 10)
	}
	return evs, next, nil
}

// windowCurrent reports whether the window holds every event this Log
// knows to be stored: a follower holds back this server's own commits
// while an earlier seq is missing, and a query must see them.
func (l *Log) windowCurrent() bool {
	return l.win != nil && l.win.last() >= l.committed.Load()
}

// queryDB reads up to n events matching f from the database: newest
// first below cursor (0: from the head), or oldest first above
// max(afterSeq, cursor) when afterSeq > 0.
func (l *Log) queryDB(ctx context.Context, f standin.EventFilter, afterSeq, cursor int64, n int) ([]*standin.Event, error) {
	q := PageQuery{Filter: f, Before: cursor, Limit: n}
	if afterSeq > 0 {
		q.After, q.Before = max(afterSeq, cursor), 0
	}
	evs, err := l.store.Page(ctx, q)
	if err != nil {
		return nil, fault(err, "query audit log")
	}
	return evs, nil
}

// queryWindow is queryDB answered from the window as far as it reaches:
// a newest-first page that runs past the window's oldest event continues
// in the database below it.
func (l *Log) queryWindow(ctx context.Context, f standin.EventFilter, cursor int64, n int) ([]*standin.Event, error) {
	m := NewMatcher(f)
	if f.AfterSeq > 0 {
		if out, ok := l.win.after(m, max(f.AfterSeq, cursor), n); ok {
			return out, nil
		}
		return l.queryDB(ctx, f, f.AfterSeq, cursor, n)
	}
	out, from, complete, ok := l.win.newest(m.Match, cursor, n)
	if !ok {
		return l.queryDB(ctx, f, 0, cursor, n)
	}
	if complete {
		return out, nil
	}
	older, err := l.queryDB(ctx, f, 0, from, n-len(out))
	if err != nil {
		return nil, err
	}
	return append(out, older...), nil
}

// ByObject returns the latest event of type typ (any type if typ is empty)
// whose object is object. Start-up repair uses it to learn what was last
// recorded about something.
//
// Errors: EInvalid for an empty object; ENotFound when there is no such
// event; EUnavailable when the database cannot be reached.
func (l *Log) ByObject(ctx context.Context, typ, object string) (*standin.Event, error) {
	if object == "" {
		return nil, standin.Errorf(standin.EInvalid, "An object is required to find its events.")
	}
	if l.windowCurrent() {
		found, _, complete, ok := l.win.newest(func(e *standin.Event) bool {
			return e.Object == object && (typ == "" || e.Type == typ)
		}, 0, 1)
		if ok && len(found) == 1 {
			return found[0], nil
		}
		if ok && complete {
			return nil, standin.Errorf(standin.ENotFound, "No %s event about %q.", typ, object)
		}
	}
	e, ok, err := l.store.Latest(ctx, object, typ)
	if err != nil {
		return nil, fault(err, "find audit event by object")
	}
	if !ok {
		return nil, standin.Errorf(standin.ENotFound, "No %s event about %q.", typ, object)
	}
	return e, nil
}

// EventsAfter calls fn with every event whose seq is above afterSeq, in
// ascending order, reading them in chunks so that a long replay never
// holds much in memory. It stops at the first error fn returns and
// returns that error unchanged. Events stored while it runs may or may not
// be included; a realtime subscriber should subscribe first, replay
// second, and drop seqs it has already seen.
//
// Errors: EUnavailable when the database cannot be reached.
func (l *Log) EventsAfter(ctx context.Context, afterSeq int64, fn func(*standin.Event) error) error {
	return l.EventsMatching(ctx, standin.EventFilter{AfterSeq: max(afterSeq, 0)}, fn)
}

// EventsMatching is EventsAfter(f.AfterSeq) for the events matching f.
//
// Errors: EInvalid for a negative f.AfterSeq; EUnavailable when the
// database cannot be reached.
func (l *Log) EventsMatching(ctx context.Context, f standin.EventFilter, fn func(*standin.Event) error) error {
	none, err := checkFilter(f)
	if err != nil || none {
		return err
	}
	after := f.AfterSeq
	if l.win != nil {
		m := NewMatcher(f)
		for {
			evs, ok := l.win.after(m, after, replayChunk)
			if !ok {
				break // the window has moved on; the database has the rest
			}
			if len(evs) == 0 {
				if l.windowCurrent() {
					return nil
				}
				break // events this server stored wait for earlier ones: the database has them
			}
			for _, e := range evs {
				if err := fn(e); err != nil {
					return err
				}
			}
			after = evs[len(evs)-1].Seq
		}
	}
	return l.walk(ctx, after, f, false, func(s Stored) error { return fn(s.Event) })
}

// walk calls fn for each stored event with seq above after that matches
// f (but for its AfterSeq), in ascending seq order. It reads one range of
// seqs per query: each range is found by seq on MongoDB, and on FerretDB,
// which scans for any query, the database sorts only that range rather
// than all the rest of the log.
//
// Ranges below the head this Log knows of are always read. Past it, the
// walk must learn where the log ends, which may be beyond that head when
// other servers append. Unfiltered, a range that is not full shows the
// end, because a seq is only ever stored after its predecessor. Filtered,
// or when thorough (Verify, which must not stop at a gap left by a deleted
// event), it asks the database whether anything lies beyond the range.
func (l *Log) walk(ctx context.Context, after int64, f standin.EventFilter, thorough bool, fn func(Stored) error) error {
	if l.stored {
		return l.walkStored(ctx, after, f, fn)
	}
	for from := after; ; {
		to := from + l.chunk
		if to < from { // overflow
			to = math.MaxInt64
		}
		last := from
		err := l.scan(ctx, "read audit log", Scan{After: from, To: to, Filter: f}, func(s Stored) error {
			last = s.Seq
			return fn(s)
		})
		if err != nil {
			return err
		}
		if to == math.MaxInt64 {
			return nil
		}
		from = to
		switch {
		case to < l.committed.Load():
			continue
		case !filtered(f) && !thorough:
			if last < to {
				return nil
			}
			continue
		}
		more, err := l.store.AnyAfter(ctx, to)
		if err != nil {
			return fault(err, "read audit log")
		}
		if !more {
			return nil
		}
	}
}

// walkStored is walk in one query, in the order the database keeps the
// events (Config.StoredOrder), which must be ascending seq order. It is
// thorough by nature: it reads to the end of the collection.
func (l *Log) walkStored(ctx context.Context, after int64, f standin.EventFilter, fn func(Stored) error) error {
	last := after
	return l.scan(ctx, "read audit log", Scan{After: after, Filter: f, Stored: true}, func(s Stored) error {
		if s.Seq <= last {
			return fmt.Errorf("read audit log in stored order: event %d is stored after event %d", s.Seq, last)
		}
		last = s.Seq
		return fn(s)
	})
}

// scan runs one Scan of the store and calls fn for each event it reads,
// in that order, stopping at fn's first error, which it returns as it
// is. A document that is no event is logged and skipped. Errors of the
// store are translated, saying what was being done.
func (l *Log) scan(ctx context.Context, what string, s Scan, fn func(Stored) error) error {
	var fnErr error
	err := l.store.Scan(ctx, s, func(st Stored) error {
		if st.Foreign != "" {
			l.logger.Warn("audit: a document of the events collection without a seq for _id is not an event; skipped",
				"_id", st.Foreign)
			return nil
		}
		fnErr = fn(st)
		return fnErr
	})
	if fnErr != nil {
		return fnErr // the store returns it as it is
	}
	return fault(err, what)
}
