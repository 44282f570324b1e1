package mongostore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/lease"
)

// colLeases holds one document per claimed term of a background job's
// lease, _id "<job>|<term>": the insert that creates it decides which node
// runs the job for that term. Documents are never updated; each term's
// winner deletes those of terms long past, so the collection stays a few
// documents per job, and a holder that stops deletes its own.
const colLeases = "leases"

type leaseDoc struct {
	ID     string    `bson:"_id"`
	Job    string    `bson:"job"`
	Term   int64     `bson:"term"`
	Holder string    `bson:"holder"`
	Until  time.Time `bson:"until"`
}

// Leases keeps background jobs' leases in the collection "leases".
type Leases struct {
	coll *mongo.Collection
}

var _ lease.Store = (*Leases)(nil)

// Leases returns the lease store on db.
func (db *DB) Leases() *Leases { return &Leases{coll: db.db.Collection(colLeases)} }

func leaseID(job string, term int64) string { return job + "|" + strconv.FormatInt(term, 10) }

// Claim inserts job's record for term naming holder: of any number of
// claims, on any number of connections, exactly one insert succeeds. It
// reports true when that insert is this one, or when the record already
// names holder (a retry whose first answer was lost). Its errors are
// EUnavailable when the database cannot be reached or refuses writes.
func (s *Leases) Claim(ctx context.Context, job string, term int64, holder string, until time.Time) (bool, error) {
	id := leaseID(job, term)
	for range 2 {
		_, err := s.coll.InsertOne(ctx, leaseDoc{ID: id, Job: job, Term: term, Holder: holder, Until: until.UTC()})
		if err == nil {
			return true, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return false, translate(err, "claim lease "+id)
		}
		var d leaseDoc
		err = s.coll.FindOne(ctx, bson.M{"_id": id}).Decode(&d)
		if err == nil {
			return d.Holder == holder, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return false, translate(err, "read lease "+id)
		}
		// Released (or pruned) between the insert and the read: the
		// term is free again, or long past.
	}
	return false, nil
}

// Prune deletes job's records of terms before before and returns how
// many it deleted. Records are immutable and only past terms are
// deleted here, so a delete racing a claim of the current term cannot
// touch it. The filter reads the whole collection on FerretDB, which the
// pruning keeps small.
func (s *Leases) Prune(ctx context.Context, job string, before int64) (int, error) {
	res, err := s.coll.DeleteMany(ctx, bson.M{"job": job, "term": bson.M{"$lt": before}})
	if err != nil {
		return 0, translate(err, "prune leases of "+job)
	}
	return int(res.DeletedCount), nil
}

// Release deletes job's record of term if it names holder. Its errors are
// EUnavailable when the database cannot be reached or refuses writes.
func (s *Leases) Release(ctx context.Context, job string, term int64, holder string) error {
	_, err := s.coll.DeleteOne(ctx, bson.M{"_id": leaseID(job, term), "holder": holder})
	return translate(err, "release lease "+leaseID(job, term))
}

// List returns every lease record, in no particular order: a few per job.
func (s *Leases) List(ctx context.Context) ([]lease.Record, error) {
	cur, err := s.coll.Find(ctx, bson.M{})
	if err != nil {
		return nil, translate(err, "list leases")
	}
	var docs []leaseDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list leases")
	}
	out := make([]lease.Record, 0, len(docs))
	for _, d := range docs {
		out = append(out, lease.Record{Job: d.Job, Term: d.Term, Holder: d.Holder, Until: d.Until})
	}
	return out, nil
}
