package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Marked reports whether a one-time step named key (such as seeding the
// demo facility) has been recorded as done.
func (db *DB) Marked(ctx context.Context, key string) (bool, error) {
	err := db.db.Collection(colMeta).FindOne(ctx, bson.M{"_id": key}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, translate(err, "read marker "+key)
	}
	return true, nil
}

// Mark records the one-time step named key as done.
func (db *DB) Mark(ctx context.Context, key string) error {
	_, err := db.db.Collection(colMeta).UpdateOne(ctx, bson.M{"_id": key},
		bson.M{"$setOnInsert": bson.M{"at": time.Now().UTC()}}, options.UpdateOne().SetUpsert(true))
	return translate(err, "write marker "+key)
}
