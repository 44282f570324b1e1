package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// colCheckpoints holds the newest signed checkpoints of the audit chain,
// from every node, for the sinks to send on: _id the checkpoint's
// digest. It is kept small (PruneCheckpoints).
const colCheckpoints = "checkpoints"

// StoredCheckpoint is a signed checkpoint as the sinks send it: its
// seq, digest and JSON.
type StoredCheckpoint struct {
	Digest string    `bson:"_id"`
	Seq    int64     `bson:"seq"`
	At     time.Time `bson:"at"`
	JSON   []byte    `bson:"json"`
}

// AddCheckpoint stores a checkpoint once (again is harmless).
func (db *DB) AddCheckpoint(ctx context.Context, c StoredCheckpoint) error {
	_, err := db.db.Collection(colCheckpoints).InsertOne(ctx, c)
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return translate(err, "store checkpoint")
}

// Checkpoints lists the stored checkpoints in seq order.
func (db *DB) Checkpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	cur, err := db.db.Collection(colCheckpoints).Find(ctx, bson.M{},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}, {Key: "at", Value: 1}}))
	if err != nil {
		return nil, translate(err, "list checkpoints")
	}
	var out []StoredCheckpoint
	if err := cur.All(ctx, &out); err != nil {
		return nil, translate(err, "list checkpoints")
	}
	return out, nil
}

// PruneCheckpoints keeps the newest keep checkpoints.
func (db *DB) PruneCheckpoints(ctx context.Context, keep int) error {
	all, err := db.Checkpoints(ctx)
	if err != nil || len(all) <= keep {
		return err
	}
	ids := make([]string, 0, len(all)-keep)
	for _, c := range all[:len(all)-keep] {
		ids = append(ids, c.Digest)
	}
	_, err = db.db.Collection(colCheckpoints).DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}})
	return translate(err, "prune checkpoints")
}
