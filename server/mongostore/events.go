package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/audit"
	"standin/server/dbfault"
	"standin/server/standin"
)

// colEvents holds the audit log, one document per event whose _id is its
// seq.
const colEvents = "events"

// Events keeps the audit log's events in the collection "events": each
// event is one document whose _id is its seq (a number), so the unique
// _id decides a race between two servers appending at once.
//
// Cost: on MongoDB, queries use the indexes EnsureIndexes creates and
// walks read _id ranges. FerretDB 1.x on SQLite reads and decodes the
// whole collection for every query on it: even equality on a string or
// ObjectID _id, the one query it pushes down to SQLite, is a table scan
// there (its expression does not match the index's), and numeric _id
// ranges are not pushed down at all. The audit log plans around that
// (its window, stored-order walks); this store answers every query as
// asked.
type Events struct {
	coll *mongo.Collection
	copies
}

// copies are the cheap copies of the newest events that the servers
// following the log read (Mirror, Copied, Recent), whichever way the log
// itself is stored.
type copies struct {
	recent ring
}

var _ audit.Store = (*Events)(nil)

// Events returns the audit log's store on db.
func (db *DB) Events() *Events {
	return &Events{coll: db.db.Collection(colEvents), copies: copies{recent: newRing(db.db, colRecentPrefix)}}
}

// EnsureIndexes creates the indexes queries use on MongoDB. Each pairs a
// filter field with _id so an equality filter plus the newest-first order
// reads the index in order, without sorting in memory. FerretDB scans for
// these queries whatever the indexes; they are correct there all the same.
func (s *Events) EnsureIndexes(ctx context.Context) error {
	for _, field := range []string{"type", "actor.id", "subject.id", "impersonation_id", "projects", "object"} {
		// One index per command: FerretDB drops the connection when one
		// createIndexes command names three or more existing indexes.
		m := mongo.IndexModel{Keys: bson.D{{Key: field, Value: 1}, {Key: "_id", Value: 1}}}
		if _, err := s.coll.Indexes().CreateOne(ctx, m); err != nil {
			return eventsError(err, "create audit index on "+field)
		}
	}
	return nil
}

// Insert stores evs in one ordered insert: it stops at the first document
// that fails, so a prefix of evs may be stored when it returns an error.
//
// Errors: EConflict wrapping audit.ErrSeqTaken when a seq is taken;
// EUnavailable when the database cannot be reached (wrapping
// audit.ErrUnreachable) or refuses writes.
func (s *Events) Insert(ctx context.Context, evs []*standin.Event) error {
	docs := make([]any, len(evs))
	for i, e := range evs {
		docs[i] = toEventDoc(e)
	}
	_, err := s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	if k, ok := refusedAt(err); ok {
		return &audit.StoredBefore{N: k, Err: eventsError(err, "append audit events")}
	}
	return eventsError(err, "append audit events")
}

// refusedAt returns the index of the document an ordered insert refused
// for its key, when that is all that went wrong: the documents before it
// are stored, the rest were not tried.
func refusedAt(err error) (int, bool) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) != 1 ||
		!mongo.IsDuplicateKeyError(bwe.WriteErrors[0]) {
		return 0, false
	}
	return bwe.WriteErrors[0].Index, true
}

// Head returns the seq and hash of the newest event, 0 and "" for none.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Events) Head(ctx context.Context) (seq int64, hash string, err error) {
	// Only numeric _ids are seqs: a stray document with another _id
	// (which sorts above numbers) is no part of the chain.
	raw, err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: int64(1)}}}}, options.FindOne().
		SetSort(bson.D{{Key: "_id", Value: -1}}).
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "hash", Value: 1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", eventsError(err, "read audit log head")
	}
	seq, hash, _ = headOf(raw)
	return seq, hash, nil
}

// Hashes returns the hash stored for each seq in [from, to].
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Events) Hashes(ctx context.Context, from, to int64) (map[int64]string, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: to}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "hash", Value: 1}}))
	if err != nil {
		return nil, eventsError(err, "read audit hashes")
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	got := make(map[int64]string, min(to-from+1, 1024))
	for cur.Next(ctx) {
		if seq, hash, ok := headOf(cur.Current); ok {
			got[seq] = hash
		}
	}
	if err := cur.Err(); err != nil {
		return nil, eventsError(err, "read audit hashes")
	}
	return got, nil
}

// Page returns up to q.Limit events matching q.Filter: oldest first above
// q.After when that is above 0, else newest first below q.Before (0: from
// the newest).
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Events) Page(ctx context.Context, q audit.PageQuery) ([]*standin.Event, error) {
	match := eventFilter(q.Filter)
	order := -1
	if q.After > 0 {
		order = 1
		match = append(match, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: q.After}}})
	} else if q.Before > 0 {
		match = append(match, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Before}}})
	}
	var out []*standin.Event
	err := s.each(ctx, match, options.Find().SetSort(bson.D{{Key: "_id", Value: order}}).SetLimit(int64(q.Limit)),
		func(st audit.Stored) error {
			if st.Foreign == "" {
				out = append(out, st.Event)
			}
			return nil
		})
	if err != nil {
		return nil, eventsError(err, "query audit log")
	}
	return out, nil
}

// Latest returns the newest event about object, of type typ unless typ is
// ""; ok is false when there is none.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Events) Latest(ctx context.Context, object, typ string) (*standin.Event, bool, error) {
	filter := bson.D{{Key: "object", Value: object}}
	if typ != "" {
		filter = append(filter, bson.E{Key: "type", Value: typ})
	}
	raw, err := s.coll.FindOne(ctx, filter, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, eventsError(err, "find audit event by object")
	}
	st := decodeEvent(raw)
	if st.Foreign != "" {
		return nil, false, nil
	}
	return st.Event, true, nil
}

// Scan calls fn for each event sc selects, in the order it asks for, and
// returns fn's first error as it is.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Events) Scan(ctx context.Context, sc audit.Scan, fn func(audit.Stored) error) error {
	var filter bson.D
	opts := options.Find().SetBatchSize(1000)
	switch {
	case sc.All:
		filter = bson.D{}
	default:
		seqs := bson.D{{Key: "$gt", Value: sc.After}}
		if sc.To > 0 {
			seqs = append(seqs, bson.E{Key: "$lte", Value: sc.To})
		}
		filter = append(bson.D{{Key: "_id", Value: seqs}}, eventFilter(sc.Filter)...)
		if !sc.Stored {
			opts = options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
		}
	}
	var fnErr error
	err := s.each(ctx, filter, opts, func(st audit.Stored) error {
		fnErr = fn(st)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return eventsError(err, "read audit log")
}

// AnyAfter reports whether any event has a seq above seq.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Events) AnyAfter(ctx context.Context, seq int64) (bool, error) {
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: seq}}}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, eventsError(err, "read audit log")
	}
	return true, nil
}

// each runs one find and calls fn for each document it returns, decoded,
// in that order, stopping at fn's first error. Errors are the driver's,
// for the caller to translate.
func (s *Events) each(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder, fn func(audit.Stored) error) error {
	return eachRaw(ctx, s.coll, filter, opts, func(raw bson.Raw) error { return fn(decodeEvent(raw)) })
}

// eachRaw runs one find on coll and calls fn for each document it
// returns, in that order, stopping at fn's first error. Errors are the
// driver's, for the caller to translate.
func eachRaw(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder, fn func(bson.Raw) error) error {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

// eventFilter turns f, but for AfterSeq, into a query. It selects what
// the audit log's in-memory matcher selects: Type, ActorID, SubjectID and
// ImpersonationID match exactly; Project matches the project or any of
// the projects; Projects, when not nil, any of the projects; Since is
// inclusive and Until exclusive.
func eventFilter(f standin.EventFilter) bson.D {
	match := bson.D{}
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
	return match
}

// eventsError is translate for the events collection. It also marks the
// two faults the audit log's appender tells apart: a seq taken
// (audit.ErrSeqTaken), on which it re-reads the head at once, and a
// database that could not be reached (audit.ErrUnreachable), which it
// tries again after a pause; a database that refuses writes is
// EUnavailable at once.
func eventsError(err error, what string) error {
	if err == nil {
		return nil
	}
	coded := translate(err, what)
	switch {
	case mongo.IsDuplicateKeyError(err):
		return fmt.Errorf("%w: %w", audit.ErrSeqTaken, coded)
	case !errors.Is(err, context.Canceled) && dbfault.Unreachable(err):
		return fmt.Errorf("%w: %w", audit.ErrUnreachable, coded)
	}
	return coded
}

// eventDoc is the stored shape of an event. Every field is always present,
// so documents have one shape whatever the event says. _id and seq are
// both the seq: _id orders and keys the collection, seq is what the hash
// covers.
type eventDoc struct {
	Seq             int64        `bson:"_id"`
	ID              string       `bson:"id"`
	SeqField        int64        `bson:"seq"`
	Time            time.Time    `bson:"time"`
	Type            string       `bson:"type"`
	Actor           eventUserDoc `bson:"actor"`
	Subject         eventUserDoc `bson:"subject"`
	ImpersonationID string       `bson:"impersonation_id"`
	Action          string       `bson:"action"`
	Object          string       `bson:"object"`
	Project         string       `bson:"project"`
	Outcome         string       `bson:"outcome"`
	Reason          string       `bson:"reason"`
	IP              string       `bson:"ip"`
	UserAgent       string       `bson:"user_agent"`
	Projects        []string     `bson:"projects"`
	PrevHash        string       `bson:"prev_hash"`
	Hash            string       `bson:"hash"`
}

// eventUserDoc is a person an event names.
type eventUserDoc struct {
	ID   string `bson:"id"`
	Name string `bson:"name"`
}

func toEventDoc(e *standin.Event) *eventDoc {
	projects := e.Projects
	if projects == nil {
		projects = []string{} // an empty array, not null, so $in and shape stay uniform
	}
	return &eventDoc{
		Seq: e.Seq, ID: e.ID, SeqField: e.Seq, Time: e.Time, Type: e.Type,
		Actor:           eventUserDoc{ID: e.Actor.ID, Name: e.Actor.Name},
		Subject:         eventUserDoc{ID: e.Subject.ID, Name: e.Subject.Name},
		ImpersonationID: e.ImpersonationID, Action: e.Action, Object: e.Object, Project: e.Project,
		Outcome: e.Outcome, Reason: e.Reason, IP: e.IP, UserAgent: e.UserAgent,
		Projects: projects, PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

// event converts a stored document. Seq comes from the seq field, which
// is what the hash covers; Verify separately checks it equals _id.
func (d *eventDoc) event() *standin.Event {
	return &standin.Event{
		ID: d.ID, Seq: d.SeqField, Time: d.Time.UTC(), Type: d.Type,
		Actor:           standin.EventUser{ID: d.Actor.ID, Name: d.Actor.Name},
		Subject:         standin.EventUser{ID: d.Subject.ID, Name: d.Subject.Name},
		ImpersonationID: d.ImpersonationID, Action: d.Action, Object: d.Object, Project: d.Project,
		Outcome: d.Outcome, Reason: d.Reason, IP: d.IP, UserAgent: d.UserAgent,
		Projects: d.Projects, PrevHash: d.PrevHash, Hash: d.Hash,
	}
}
