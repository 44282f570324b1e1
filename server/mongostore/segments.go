package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/audit"
	"standin/server/standin"
)

// SegmentSize is how many consecutive seqs one segment of a segmented
// log holds.
const SegmentSize = 1024

// colSegmentPrefix names a segment's collection: "events_" and the
// segment's number in 12 digits, so names sort as segments do.
const colSegmentPrefix = "events_"

// Segments keeps the audit log's events in segment collections of
// SegmentSize consecutive seqs each ("events_000000000000" holds seqs 1 to
// 1024, and so on), one document per event in the shape Events stores,
// _id its seq. The unique _id still decides a race between two servers
// appending at once: both insert the seq into the same segment.
//
// Cost: it is made for FerretDB, which reads and decodes a whole
// collection for nearly every query (see Events). Here a query reads one
// segment at most SegmentSize documents long, so the head, a seq's hash
// or the newest events cost the same at a million events as at a
// thousand; inserts go to a small table. A query that must look through
// many segments (a page deep in the log with a rare filter) reads them one
// after another, newest or oldest first as it asks, and stops once it has
// what it wants.
type Segments struct {
	db   *mongo.Database
	size int64
	copies

	mu     sync.Mutex
	newest int64 // the highest segment known to hold an event; -1: not looked up yet

	chunk   int64      // seqs per sealed chunk (see sealed.go)
	loadMu  sync.Mutex // held while the summaries are read
	sealMu  sync.Mutex
	seals   map[int64]*chunkSummary // by chunk; nil until read
	cache   chunkCache
	packers sync.Pool // of *flate.Writer
}

var (
	_ audit.Store  = (*Segments)(nil)
	_ audit.Sealer = (*Segments)(nil)
)

// Segments returns the audit log's segmented store on db; size is how many
// seqs a segment holds (0: SegmentSize). Only tests choose another size;
// every server on one database must use the same.
func (db *DB) Segments(size int64) *Segments {
	if size <= 0 {
		size = SegmentSize
	}
	chunk := size
	if size%chunksPerSegment == 0 {
		chunk = size / chunksPerSegment
	}
	return &Segments{db: db.db, size: size, chunk: chunk, copies: copies{recent: newRing(db.db, colRecentPrefix)}, newest: -1}
}

// segment returns the segment that holds seq (seq 1 is in segment 0).
func (s *Segments) segment(seq int64) int64 { return (max(seq, 1) - 1) / s.size }

func (s *Segments) coll(seg int64) *mongo.Collection {
	return s.db.Collection(fmt.Sprintf("%s%012d", colSegmentPrefix, seg))
}

// EnsureIndexes creates nothing: every query reads within a segment, by
// _id, which each segment's collection is keyed by.
func (s *Segments) EnsureIndexes(context.Context) error { return nil }

// Insert stores evs (ascending consecutive seqs) in one ordered insert per
// segment they fall in, stopping at the first that fails.
//
// Errors: as Events.Insert; a *audit.StoredBefore counts the events of
// the earlier segments too.
func (s *Segments) Insert(ctx context.Context, evs []*standin.Event) error {
	for done := 0; done < len(evs); {
		seg := s.segment(evs[done].Seq)
		n := 1
		for done+n < len(evs) && s.segment(evs[done+n].Seq) == seg {
			n++
		}
		docs := make([]any, n)
		for i, e := range evs[done : done+n] {
			docs[i] = toEventDoc(e)
		}
		_, err := s.coll(seg).InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
		if k, ok := refusedAt(err); ok {
			return &audit.StoredBefore{N: done + k, Err: eventsError(err, "append audit events")}
		}
		if err != nil {
			return eventsError(err, "append audit events")
		}
		s.saw(seg)
		done += n
	}
	return nil
}

// saw notes that segment seg holds an event.
func (s *Segments) saw(seg int64) {
	s.mu.Lock()
	s.newest = max(s.newest, seg)
	s.mu.Unlock()
}

// newestSegment returns the highest segment that holds an event, -1 for
// none. The first call lists the collections; later ones probe the
// segments after the one known, each probe one document read.
func (s *Segments) newestSegment(ctx context.Context) (int64, error) {
	s.mu.Lock()
	seg := s.newest
	s.mu.Unlock()
	if seg < 0 {
		names, err := s.db.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return 0, eventsError(err, "list audit log segments")
		}
		// Newest first: the first that holds an event is the newest (a
		// segment is made by its first insert, so only a failed one leaves
		// it empty). Each probe is a query, and there may be thousands of
		// segments.
		var segs []int64
		for _, name := range names {
			if n, ok := segmentNumber(name); ok {
				segs = append(segs, n)
			}
		}
		slices.Sort(segs)
		for i := len(segs) - 1; i >= 0 && seg < 0; i-- {
			has, err := s.holdsAny(ctx, segs[i])
			if err != nil {
				return 0, err
			}
			if has {
				seg = segs[i]
			}
		}
	}
	for {
		has, err := s.holdsAny(ctx, seg+1)
		if err != nil {
			return 0, err
		}
		if !has {
			break
		}
		seg++
	}
	if seg >= 0 {
		s.saw(seg)
	}
	return seg, nil
}

// segmentNumber parses a segment collection's name.
func segmentNumber(name string) (int64, bool) {
	digits, ok := strings.CutPrefix(name, colSegmentPrefix)
	if !ok || len(digits) != 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil && n >= 0
}

// holdsAny reports whether segment seg holds a document: a find with a
// limit and no filter, which FerretDB answers from the first row.
func (s *Segments) holdsAny(ctx context.Context, seg int64) (bool, error) {
	err := s.coll(seg).FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, eventsError(err, "read audit log segment")
	}
	return true, nil
}

// Head returns the seq and hash of the newest event, 0 and "" for none:
// one read of the newest segment.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Segments) Head(ctx context.Context) (seq int64, hash string, err error) {
	newest, err := s.newestSegment(ctx)
	if err != nil || newest < 0 {
		return 0, "", err
	}
	for seg := newest; seg >= 0 && seq == 0; seg-- {
		err = s.each(ctx, seg, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "hash", Value: 1}}),
			func(raw bson.Raw) error {
				if q, h, ok := headOf(raw); ok && q > seq {
					seq, hash = q, h
				}
				return nil
			})
		if err != nil {
			return 0, "", eventsError(err, "read audit log head")
		}
	}
	return seq, hash, nil
}

// Hashes returns the hash stored for each seq in [from, to].
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Segments) Hashes(ctx context.Context, from, to int64) (map[int64]string, error) {
	got := make(map[int64]string, min(to-from+1, 1024))
	for seg := s.segment(from); seg <= s.segment(to); seg++ {
		err := s.each(ctx, seg, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: to}}}},
			options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "hash", Value: 1}}),
			func(raw bson.Raw) error {
				if seq, hash, ok := headOf(raw); ok {
					got[seq] = hash
				}
				return nil
			})
		if err != nil {
			return nil, eventsError(err, "read audit hashes")
		}
	}
	return got, nil
}

// Page returns up to q.Limit events matching q.Filter: oldest first above
// q.After when that is above 0, else newest first below q.Before (0: from
// the newest), reading segment after segment until it has them.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Segments) Page(ctx context.Context, q audit.PageQuery) ([]*standin.Event, error) {
	newest, err := s.newestSegment(ctx)
	if err != nil {
		return nil, err
	}
	var out []*standin.Event
	m := audit.NewMatcher(q.Filter)
	keep := func(raw bson.Raw) error {
		if st := decodeEvent(raw); st.Foreign == "" {
			out = append(out, st.Event)
		}
		return nil
	}
	match := eventFilter(q.Filter)
	if q.After > 0 {
		match = append(match, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: q.After}}})
		for seg := s.segment(q.After + 1); seg <= newest && len(out) < q.Limit; seg++ {
			if sums, ok := s.sealedSegment(seg); ok {
				got, err := s.pageSealed(ctx, sums, q.Filter, m, q.After, 0, true, q.Limit, out)
				if err == nil {
					out = got
					continue
				}
				if !errors.Is(err, errChunkUnusable) {
					return nil, err
				}
			}
			opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(q.Limit - len(out)))
			if err := s.each(ctx, seg, match, opts, keep); err != nil {
				return nil, eventsError(err, "query audit log")
			}
		}
		return out, nil
	}
	from := newest
	if q.Before > 0 {
		match = append(match, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Before}}})
		from = min(from, s.segment(q.Before-1))
	}
	for seg := from; seg >= 0 && len(out) < q.Limit; seg-- {
		if sums, ok := s.sealedSegment(seg); ok {
			got, err := s.pageSealed(ctx, sums, q.Filter, m, 0, q.Before, false, q.Limit, out)
			if err == nil {
				out = got
				continue
			}
			if !errors.Is(err, errChunkUnusable) {
				return nil, err
			}
		}
		opts := options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(q.Limit - len(out)))
		if err := s.each(ctx, seg, match, opts, keep); err != nil {
			return nil, eventsError(err, "query audit log")
		}
	}
	return out, nil
}

// Latest returns the newest event about object, of type typ unless typ is
// ""; ok is false when there is none.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Segments) Latest(ctx context.Context, object, typ string) (*standin.Event, bool, error) {
	newest, err := s.newestSegment(ctx)
	if err != nil {
		return nil, false, err
	}
	filter := bson.D{{Key: "object", Value: object}}
	if typ != "" {
		filter = append(filter, bson.E{Key: "type", Value: typ})
	}
	for seg := newest; seg >= 0; seg-- {
		raw, err := s.coll(seg).FindOne(ctx, filter, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Raw()
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, false, eventsError(err, "find audit event by object")
		}
		if st := decodeEvent(raw); st.Foreign == "" {
			return st.Event, true, nil
		}
	}
	return nil, false, nil
}

// Scan calls fn for each event sc selects, in the order it asks for, and
// returns fn's first error as it is. A scan of everything reads the
// segments in order, each in the order the database keeps it, and reports
// documents whose _id is no seq (Stored.Foreign).
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Segments) Scan(ctx context.Context, sc audit.Scan, fn func(audit.Stored) error) error {
	newest, err := s.newestSegment(ctx)
	if err != nil {
		return err
	}
	first, last, filter := int64(0), newest, bson.D{}
	opts := options.Find().SetBatchSize(1000)
	if !sc.All {
		seqs := bson.D{{Key: "$gt", Value: sc.After}}
		first = s.segment(sc.After + 1)
		if sc.To > 0 {
			seqs = append(seqs, bson.E{Key: "$lte", Value: sc.To})
			last = min(last, s.segment(sc.To))
		}
		filter = append(bson.D{{Key: "_id", Value: seqs}}, eventFilter(sc.Filter)...)
		if !sc.Stored {
			opts = options.Find().SetBatchSize(1000).SetSort(bson.D{{Key: "_id", Value: 1}})
		}
	}
	var fnErr error
	for seg := first; seg <= last; seg++ {
		err := s.each(ctx, seg, filter, opts, func(raw bson.Raw) error {
			fnErr = fn(decodeEvent(raw))
			return fnErr
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return eventsError(err, "read audit log")
		}
	}
	return nil
}

// AnyAfter reports whether any event has a seq above seq.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Segments) AnyAfter(ctx context.Context, seq int64) (bool, error) {
	newest, err := s.newestSegment(ctx)
	if err != nil {
		return false, err
	}
	for seg := s.segment(seq + 1); seg <= newest; seg++ {
		err := s.coll(seg).FindOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: seq}}}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return false, eventsError(err, "read audit log")
		}
	}
	return false, nil
}

// each runs one find on segment seg and calls fn for each document, in
// the order returned, stopping at fn's first error. Errors are the
// driver's, for the caller to translate.
func (s *Segments) each(ctx context.Context, seg int64, filter bson.D, opts *options.FindOptionsBuilder, fn func(bson.Raw) error) error {
	return eachRaw(ctx, s.coll(seg), filter, opts, fn)
}

// AuditLog returns the store the audit log is kept in on this database,
// and whether it is Segments. On FerretDB it is Segments, unless the
// database already holds a log in the one collection "events", which is
// read where it is; on MongoDB it is that one collection, whose indexes
// answer every query.
//
// Errors: EUnavailable when the database cannot be reached.
func (db *DB) AuditLog(ctx context.Context) (audit.Store, bool, error) {
	if !db.ferret {
		return db.Events(), false, nil
	}
	err := db.db.Collection(colEvents).FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case err == nil:
		return db.Events(), false, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return db.Segments(0), true, nil
	}
	return nil, false, eventsError(err, "look for the audit log")
}
