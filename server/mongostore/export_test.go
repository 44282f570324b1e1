package mongostore

import (
	"context"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/standin"
)

// Reopened returns a new Segments on s's database, as a server started
// afresh opens it: nothing read yet.
func (s *Segments) Reopened() *Segments {
	return &Segments{db: s.db, size: s.size, chunk: s.chunk, copies: copies{recent: newRing(s.db, colRecentPrefix)}, newest: -1}
}

// ReadChunk reads sealed chunk k from the database, past the cache, and
// returns how many events it holds.
func (s *Segments) ReadChunk(ctx context.Context, k int64) (int, error) {
	s.cache = chunkCache{}
	c, err := s.readChunk(ctx, k)
	if err != nil {
		return 0, err
	}
	return len(c.raw), nil
}

// PackEvents is the chunk's encoding.
func PackEvents(evs []*standin.Event) ([]byte, error) { return packEvents(new(sync.Pool), evs) }

// UnpackChunk decodes it as a page reads it.
func UnpackChunk(data []byte) error {
	_, _, err := unpackChunk(data)
	return err
}

// SpoilChunk replaces the stored bytes of sealed chunk k with some that
// do not inflate, and empties the cache.
func (s *Segments) SpoilChunk(ctx context.Context, k int64) error {
	s.cache = chunkCache{}
	res, err := s.sealedColl(k/chunksPerSegment).UpdateOne(ctx, bson.D{{Key: "_id", Value: chunkKey(k)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "events", Value: []byte("not a chunk")}}}})
	if err == nil && res.ModifiedCount != 1 {
		return fmt.Errorf("chunk %d: %d changed", k, res.ModifiedCount)
	}
	return err
}
