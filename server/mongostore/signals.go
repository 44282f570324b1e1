package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/signals"
)

// colSignalsPrefix names the ring (see ring) that holds the signals:
// what every server must learn that is not an audit fact (package
// signals). The unique key of a signal's seq decides which of two
// servers signalling at once gets it.
const colSignalsPrefix = "signals_"

// Signals keeps the signals of the servers sharing the database.
type Signals struct {
	ring ring
}

var _ signals.Store = (*Signals)(nil)

// Signals returns the signals' store on db.
func (db *DB) Signals() *Signals { return &Signals{ring: newRing(db.db, colSignalsPrefix)} }

// signalDoc is the stored shape of a signal.
type signalDoc struct {
	Key  string    `bson:"_id"`
	At   time.Time `bson:"at"`
	Kind string    `bson:"kind"`
	Data []byte    `bson:"data"`
}

// Insert stores s under s.Seq.
//
// Errors: EConflict wrapping signals.ErrSeqTaken when the seq is taken;
// EUnavailable when the database cannot be reached.
func (s *Signals) Insert(ctx context.Context, sig signals.Signal) error {
	// A sender that fell further behind than the ring keeps would store
	// its signal among the pruned seqs, where no other server looks: that
	// seq counts as taken, and the sender learns where the stream is.
	lapped, err := s.ring.lapped(ctx, sig.Seq)
	if err != nil {
		return translate(err, "store a signal")
	}
	if lapped {
		return fmt.Errorf("%w: the stream has moved past seq %d", signals.ErrSeqTaken, sig.Seq)
	}
	err = s.ring.insert(ctx, []int64{sig.Seq}, []any{signalDoc{Key: ringKey(sig.Seq), At: sig.At.UTC(), Kind: sig.Kind, Data: sig.Data}}, false)
	if mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("%w: %w", signals.ErrSeqTaken, translate(err, "store a signal"))
	}
	return translate(err, "store a signal")
}

// Has reports whether the signal at seq is kept.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Signals) Has(ctx context.Context, seq int64) (bool, error) {
	ok, err := s.ring.has(ctx, seq)
	return ok, translate(err, "look for a signal")
}

// After returns the signals kept above after, in seq order, as far as
// they run through whole buckets.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Signals) After(ctx context.Context, after int64) ([]signals.Signal, error) {
	var out []signals.Signal
	err := s.ring.after(ctx, after, func(seq int64, raw bson.Raw) {
		var d signalDoc
		if bson.Unmarshal(raw, &d) == nil {
			out = append(out, signals.Signal{Seq: seq, At: d.At.UTC(), Kind: d.Kind, Data: d.Data})
		}
	})
	if err != nil {
		return nil, translate(err, "read signals")
	}
	return out, nil
}

// Last returns the highest seq kept, 0 when none is: one read of each
// collection of the ring, for a server that starts.
//
// Errors: EUnavailable when the database cannot be reached.
func (s *Signals) Last(ctx context.Context) (int64, error) {
	var last int64
	for _, c := range s.ring.colls {
		var d struct {
			Key string `bson:"_id"`
		}
		err := c.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}).
			SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return 0, translate(err, "read the last signal")
		}
		var seq int64
		if _, err := fmt.Sscanf(d.Key, "%d", &seq); err == nil {
			last = max(last, seq)
		}
	}
	return last, nil
}
