package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/dbfault"
	"standin/server/standin"
)

// readyFor is how long an answer of Ready stands. /readyz is public and
// may be asked often; within this time it is answered without another
// write.
const readyFor = time.Second

// readyProbeID is the _id of the document Ready writes in the meta
// collection: a string, which FerretDB matches in SQLite without decoding
// the collection.
const readyProbeID = "readiness-probe"

// readiness is Ready's last answer. probing holds one token: the caller
// that takes it writes the probe while the others wait for its answer.
type readiness struct {
	probing chan struct{}
	at      time.Time // zero before the first answer; guarded by probing
	err     error     // guarded by probing
}

// Ready reports whether the database can serve requests now: that it
// answers and stores a write. A ping is not enough: a database whose
// files cannot be written (a full or read-only disk) still answers pings
// and reads while every change fails. Ready writes one small probe
// document and keeps the answer for a second, so a flood of callers
// costs at most one write a second; callers arriving during a probe wait
// for its answer.
//
// It returns nil when the write succeeded, an EUnavailable error when the
// database cannot be reached or refuses the write, ctx's error when ctx
// ends first, and another error for any other fault.
func (db *DB) Ready(ctx context.Context) error {
	select {
	case db.ready.probing <- struct{}{}:
	case <-ctx.Done():
		return &standin.Error{Code: standin.EUnavailable, Message: "The database did not answer in time.", Cause: ctx.Err()}
	}
	defer func() { <-db.ready.probing }()
	if !db.ready.at.IsZero() && time.Since(db.ready.at) < readyFor {
		return db.ready.err
	}
	err := db.probe(ctx)
	if ctx.Err() == nil {
		// An answer cut short by the caller's deadline says nothing about
		// the database to the next caller.
		db.ready.at, db.ready.err = time.Now(), err
	}
	return err
}

// probe writes the readiness probe document: an increment, so that every
// probe really changes it.
func (db *DB) probe(ctx context.Context) error {
	_, err := db.db.Collection(colMeta).UpdateOne(ctx, bson.M{"_id": readyProbeID},
		bson.M{"$inc": bson.M{"probes": 1}}, options.UpdateOne().SetUpsert(true))
	switch {
	case err == nil, mongo.IsDuplicateKeyError(err):
		// A duplicate key: another server created the document at the
		// same moment, and the database checked it, so writes work.
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return &standin.Error{Code: standin.EUnavailable, Message: "The database did not answer in time.", Cause: err}
	case dbfault.WriteRefused(err):
		return &standin.Error{Code: standin.EUnavailable, Message: "The database answers but cannot save changes (its disk may be full or read-only).",
			Cause: fmt.Errorf("write the readiness probe: %w", err)}
	}
	return translate(err, "write the readiness probe")
}
