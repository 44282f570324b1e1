package mongostore

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/standin"
)

// The audit log's copies for the servers that follow it (see
// audit.Store's Mirror) are kept in a ring (see ring) of collections
// "recent_0" …, each document {_id: the seq's key, event: the event as
// "events" keeps it}. Mirroring costs one insert per commit (and a
// delete per bucket): on the embedded database every write is a
// transaction of its own, which is what limits appends.
const colRecentPrefix = "recent_"

// RecentKeep is how many of the newest events the copies keep, at least.
const RecentKeep = RingKeep

// copyDoc is the stored shape of a copy.
type copyDoc struct {
	Key   string    `bson:"_id"`
	Event *eventDoc `bson:"event"`
}

// Mirror copies evs, just stored in the log in seq order. A copy stored
// already (a mirror retried) is not an error. Several servers mirror at
// once, each its own seqs.
//
// Errors: EUnavailable when the database cannot be reached.
func (s copies) Mirror(ctx context.Context, evs []*standin.Event) error {
	seqs, docs := make([]int64, len(evs)), make([]any, len(evs))
	for i, e := range evs {
		seqs[i], docs[i] = e.Seq, copyDoc{Key: ringKey(e.Seq), Event: toEventDoc(e)}
	}
	if err := s.recent.insert(ctx, seqs, docs, true); err != nil && !onlyDuplicates(err) {
		return translate(err, "copy recent audit events")
	}
	return nil
}

// Copied reports whether a copy of seq is kept: the cheap probe of a
// follower waiting for seq.
//
// Errors: EUnavailable when the database cannot be reached.
func (s copies) Copied(ctx context.Context, seq int64) (bool, error) {
	ok, err := s.recent.has(ctx, seq)
	return ok, translate(err, "look for a copy of an audit event")
}

// Recent returns the copies of events above after, in seq order, as far
// as they run unbroken. What it returns may be incomplete or stale; the
// caller checks each against the chain before trusting it.
//
// Errors: EUnavailable when the database cannot be reached.
func (s copies) Recent(ctx context.Context, after int64) ([]*standin.Event, error) {
	var out []*standin.Event
	err := s.recent.after(ctx, after, func(_ int64, raw bson.Raw) {
		doc, ok := raw.Lookup("event").DocumentOK()
		if !ok {
			return
		}
		if st := decodeEvent(doc); st.Foreign == "" && st.Damaged == "" {
			out = append(out, st.Event)
		}
	})
	if err != nil {
		return nil, translate(err, "read recent audit events")
	}
	return out, nil
}

// onlyDuplicates reports whether every write error of an unordered
// insert is a duplicate key.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) {
		if bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
			return false
		}
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return false
			}
		}
		return true
	}
	return mongo.IsDuplicateKeyError(err)
}
