package mongostore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ring is a short ordered stream of documents, one per seq, that stays
// cheap to read on FerretDB, which decodes every document of a
// collection for any query but a lone equality on a string _id (that one
// it filters inside SQLite).
//
// A document's _id is its seq as 20 decimal digits (ringKey), so keys
// sort as seqs do and the probe "is seq there?" is such an equality. The
// documents are spread over ringSize small collections, "<prefix>0" …:
// seq s belongs to bucket s/ringBucket, kept in the collection of that
// bucket's number modulo ringSize, so a range read decodes at most two
// buckets' worth of documents for each bucket it needs. Whoever stores a
// bucket's first seq first deletes what that collection held from its
// previous turn. A ring keeps the last RingKeep documents at least.
type ring struct {
	colls []*mongo.Collection
}

const (
	// ringBucket is how many consecutive seqs one bucket holds.
	ringBucket = 16
	// ringSize is how many collections the buckets turn through.
	ringSize = 16
	// RingKeep is how many of the newest documents a ring keeps, at
	// least.
	RingKeep = ringBucket * (ringSize - 1)
)

func newRing(db *mongo.Database, prefix string) ring {
	r := ring{colls: make([]*mongo.Collection, ringSize)}
	for i := range r.colls {
		r.colls[i] = db.Collection(prefix + strconv.Itoa(i))
	}
	return r
}

// ringKey is the _id of seq's document.
func ringKey(seq int64) string { return fmt.Sprintf("%020d", seq) }

func bucketOf(seq int64) int64 { return seq / ringBucket }

// coll returns the collection of seq's bucket.
func (r ring) coll(seq int64) *mongo.Collection { return r.colls[bucketOf(seq)%ringSize] }

// insert stores docs, whose _ids are the ringKeys of seqs (consecutive,
// ascending), in one unordered insert per bucket, first clearing a
// bucket's collection of its previous turn when seqs hold the bucket's
// first seq. It returns the driver's error of the first insert that
// failed, for the caller to judge (a duplicate key is a seq taken). With
// copies, documents stored already are no error (a copy mirrored again)
// and the later buckets are still written.
func (r ring) insert(ctx context.Context, seqs []int64, docs []any, copies bool) error {
	for len(seqs) > 0 {
		b := bucketOf(seqs[0])
		n := 1
		for n < len(seqs) && bucketOf(seqs[n]) == b {
			n++
		}
		coll := r.coll(seqs[0])
		if seqs[0] == b*ringBucket {
			_, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: ringKey(b * ringBucket)}}}})
			if err != nil {
				return err
			}
		}
		if _, err := coll.InsertMany(ctx, docs[:n], options.InsertMany().SetOrdered(false)); err != nil && !(copies && onlyDuplicates(err)) {
			return err
		}
		seqs, docs = seqs[n:], docs[n:]
	}
	return nil
}

// has reports whether seq's document is kept.
func (r ring) has(ctx context.Context, seq int64) (bool, error) {
	err := r.coll(seq).FindOne(ctx, bson.D{{Key: "_id", Value: ringKey(seq)}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// after calls fn with the documents above seq after, in seq order, as far
// as they run through whole buckets (at most ringSize-1 of them). When
// the ring has moved on past after+1 (a reader that fell more than
// RingKeep behind), the documents of that bucket's collection are of a
// later turn: fn gets those, so that the reader sees the gap and deals
// with it. The driver's errors are returned as they are.
func (r ring) after(ctx context.Context, after int64, fn func(seq int64, doc bson.Raw)) error {
	for b, reads := bucketOf(after+1), 0; reads < ringSize-1; b, reads = b+1, reads+1 {
		last, lapped, err := r.readBucket(ctx, b, after, fn)
		if err != nil || lapped {
			return err
		}
		// Go on to the next bucket only when this one ran to its end.
		if last != (b+1)*ringBucket-1 {
			return nil
		}
		after = last
	}
	return nil
}

// readBucket calls fn with bucket b's documents above after, in seq
// order, and returns the last seq it saw (0 for none). When the bucket
// holds none but its collection holds documents of a later turn, it calls
// fn with those instead and reports lapped.
func (r ring) readBucket(ctx context.Context, b, after int64, fn func(int64, bson.Raw)) (last int64, lapped bool, err error) {
	// The collection is small: it is read whole above after (FerretDB
	// decodes all of it for any range anyway), later turns included, and
	// sorted here: a sort on the server costs FerretDB a second pass over
	// every document it decoded.
	cur, err := r.colls[b%ringSize].Find(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gt", Value: ringKey(max(after, b*ringBucket-1))}}}})
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	type copied struct {
		seq int64
		doc bson.Raw
	}
	var docs []copied
	for cur.Next(ctx) {
		key, _ := cur.Current.Lookup("_id").StringValueOK()
		seq, perr := strconv.ParseInt(key, 10, 64)
		if perr != nil {
			continue
		}
		docs = append(docs, copied{seq, slices.Clone(cur.Current)})
	}
	if err := cur.Err(); err != nil {
		return 0, false, err
	}
	slices.SortFunc(docs, func(a, b copied) int { return cmp.Compare(a.seq, b.seq) })
	end := (b + 1) * ringBucket
	for _, d := range docs {
		if d.seq >= end {
			if last != 0 {
				break // this bucket had documents: later turns are not its
			}
			lapped = true
		}
		last = d.seq
		fn(d.seq, d.doc)
	}
	return last, lapped, nil
}

// lapped reports whether seq's collection already holds a later turn than
// seq's bucket: a writer that fell behind must not store seq there.
func (r ring) lapped(ctx context.Context, seq int64) (bool, error) {
	end := (bucketOf(seq) + 1) * ringBucket
	err := r.coll(seq).FindOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: ringKey(end)}}}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}
