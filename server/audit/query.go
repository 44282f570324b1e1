package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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
	match, none, err := matchFilter(f)
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
	if l.win != nil {
		evs, err = l.queryWindow(ctx, f, match, cursor, limit+1)
	} else {
		evs, err = l.queryDB(ctx, match, f.AfterSeq, cursor, limit+1)
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

// queryDB reads up to n events matching match from the database: newest
// first below cursor (0: from the head), or oldest first above
// max(afterSeq, cursor) when afterSeq > 0.
func (l *Log) queryDB(ctx context.Context, match bson.D, afterSeq, cursor int64, n int) ([]*standin.Event, error) {
	order := -1
	match = slices.Clone(match)
	if afterSeq > 0 {
		order = 1
		match = append(match, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: max(afterSeq, cursor)}}})
	} else if cursor > 0 {
		match = append(match, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: cursor}}})
	}
	cur, err := l.coll.Find(ctx, match, options.Find().
		SetSort(bson.D{{Key: "_id", Value: order}}).
		SetLimit(int64(n)))
	if err != nil {
		return nil, translate(err, "query audit log")
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var out []*standin.Event
	for cur.Next(ctx) {
		if d, ok := decodeEvent(cur.Current); ok {
			out = append(out, d.event())
		}
	}
	if err := cur.Err(); err != nil {
		return nil, translate(err, "query audit log")
	}
	return out, nil
}

// queryWindow is queryDB answered from the window as far as it reaches:
// a newest-first page that runs past the window's oldest event continues
// in the database below it.
func (l *Log) queryWindow(ctx context.Context, f standin.EventFilter, match bson.D, cursor int64, n int) ([]*standin.Event, error) {
	m := newMatcher(f)
	if f.AfterSeq > 0 {
		if out, ok := l.win.after(m, max(f.AfterSeq, cursor), n); ok {
			return out, nil
		}
		return l.queryDB(ctx, match, f.AfterSeq, cursor, n)
	}
	out, from, complete, ok := l.win.newest(m.match, cursor, n)
	if !ok {
		return l.queryDB(ctx, match, 0, cursor, n)
	}
	if complete {
		return out, nil
	}
	older, err := l.queryDB(ctx, match, 0, from, n-len(out))
	if err != nil {
		return nil, err
	}
	return append(out, older...), nil
}

// matchFilter turns f, but for AfterSeq, into a query. none reports a
// filter that matches nothing whatever is stored.
func matchFilter(f standin.EventFilter) (match bson.D, none bool, err error) {
	if f.AfterSeq < 0 {
		return nil, false, standin.Errorf(standin.EInvalid, "after_seq cannot be negative.")
	}
	if f.Projects != nil && len(f.Projects) == 0 {
		return nil, true, nil
	}
	match = bson.D{}
	for _, c := range []struct{ key, value string }{
		{"type", f.Type},
		{"actor.id", f.ActorID},
		{"subject.id", f.SubjectID},
		{"impersonation_id", f.ImpersonationID},
	} {
		if c.value != "" {
			match = append(match, bson.E{Key: c.key, Value: c.value})
		}
	}
	if f.Project != "" {
		match = append(match, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "project", Value: f.Project}},
			bson.D{{Key: "projects", Value: f.Project}},
		}})
	}
	if f.Projects != nil {
		match = append(match, bson.E{Key: "projects", Value: bson.D{{Key: "$in", Value: f.Projects}}})
	}
	var span bson.D
	if !f.Since.IsZero() {
		span = append(span, bson.E{Key: "$gte", Value: f.Since})
	}
	if !f.Until.IsZero() {
		span = append(span, bson.E{Key: "$lt", Value: f.Until})
	}
	if span != nil {
		match = append(match, bson.E{Key: "time", Value: span})
	}
	return match, false, nil
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
	if l.win != nil {
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
	filter := bson.D{{Key: "object", Value: object}}
	if typ != "" {
		filter = append(filter, bson.E{Key: "type", Value: typ})
	}
	raw, err := l.coll.FindOne(ctx, filter, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, standin.Errorf(standin.ENotFound, "No %s event about %q.", typ, object)
	}
	if err != nil {
		return nil, translate(err, "find audit event by object")
	}
	d, ok := decodeEvent(raw)
	if !ok {
		return nil, standin.Errorf(standin.ENotFound, "No %s event about %q.", typ, object)
	}
	return d.event(), nil
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
	match, none, err := matchFilter(f)
	if err != nil || none {
		return err
	}
	after := f.AfterSeq
	if l.win != nil {
		m := newMatcher(f)
		for {
			evs, ok := l.win.after(m, after, replayChunk)
			if !ok {
				break // the window has moved on; the database has the rest
			}
			if len(evs) == 0 {
				return nil
			}
			for _, e := range evs {
				if err := fn(e); err != nil {
					return err
				}
			}
			after = evs[len(evs)-1].Seq
		}
	}
	return l.walk(ctx, after, match, false, func(d *eventDoc) error { return fn(d.event()) })
}

// walk calls fn for each stored event with seq above after that matches
// match, in ascending seq order. It reads one range of seqs per query:
// each range is found by _id on MongoDB, and on FerretDB, which scans for
// any query, the database sorts only that range rather than all the rest
// of the log.
//
// Ranges below the head this Log knows of are always read. Past it, the
// walk must learn where the log ends, which may be beyond that head when
// other servers append. Unfiltered, a range that is not full shows the
// end, because a seq is only ever stored after its predecessor. Filtered,
// or when thorough (Verify, which must not stop at a gap left by a deleted
// event), it asks the database whether anything lies beyond the range.
func (l *Log) walk(ctx context.Context, after int64, match bson.D, thorough bool, fn func(*eventDoc) error) error {
	if l.stored {
		return l.walkStored(ctx, after, match, fn)
	}
	for from := after; ; {
		to := from + l.chunk
		if to < from { // overflow
			to = math.MaxInt64
		}
		filter := append(bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: from}, {Key: "$lte", Value: to}}}}, match...)
		last := from
		err := l.each(ctx, "read audit log", filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}), func(d *eventDoc) error {
			last = d.Seq
			return fn(d)
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
		case len(match) == 0 && !thorough:
			if last < to {
				return nil
			}
			continue
		}
		more, err := l.anyAfter(ctx, to)
		if err != nil || !more {
			return err
		}
	}
}

// walkStored is walk in one query, in the order the database keeps the
// events (Config.StoredOrder), which must be ascending seq order. It is
// thorough by nature: it reads to the end of the collection.
func (l *Log) walkStored(ctx context.Context, after int64, match bson.D, fn func(*eventDoc) error) error {
	filter := append(bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}}, match...)
	last := after
	return l.each(ctx, "read audit log", filter, options.Find().SetBatchSize(1000), func(d *eventDoc) error {
		if d.Seq <= last {
			return fmt.Errorf("read audit log in stored order: event %d is stored after event %d", d.Seq, last)
		}
		last = d.Seq
		return fn(d)
	})
}

// each runs one find and calls fn for each event it returns, in that
// order, stopping at fn's first error, which it returns as it is. Errors
// of the database are translated, saying what was being done.
func (l *Log) each(ctx context.Context, what string, filter bson.D, opts *options.FindOptionsBuilder, fn func(*eventDoc) error) error {
	cur, err := l.coll.Find(ctx, filter, opts)
	if err != nil {
		return translate(err, what)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	for cur.Next(ctx) {
		d, ok := decodeEvent(cur.Current)
		if !ok {
			l.logger.Warn("audit: a document of the events collection without a seq for _id is not an event; skipped",
				"_id", cur.Current.Lookup("_id").String())
			continue
		}
		if err := fn(&d); err != nil {
			return err
		}
	}
	return translate(cur.Err(), what)
}

// anyAfter reports whether any event has a seq above seq.
func (l *Log) anyAfter(ctx context.Context, seq int64) (bool, error) {
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: seq}}}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, translate(err, "read audit log")
	}
	return true, nil
}
