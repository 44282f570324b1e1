package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/standin"
)

const (
	// colSinks holds the audit log's sinks, _id the sink's id; a handful
	// of documents, read whole.
	colSinks = "sinks"
	// colSinkHealth holds how each sink's delivery stands, _id the sink's
	// id, written only by the node delivering it.
	colSinkHealth = "sink_health"
)

type sinkDoc struct {
	ID            bson.ObjectID `bson:"_id"`
	Name          string        `bson:"name"`
	Kind          string        `bson:"kind"`
	URL           string        `bson:"url,omitempty"`
	Address       string        `bson:"address,omitempty"`
	TLS           bool          `bson:"tls"`
	CA            string        `bson:"ca,omitempty"`
	Format        string        `bson:"format"`
	Types         []string      `bson:"types"`
	Projects      []string      `bson:"projects"`
	Secret        string        `bson:"secret,omitempty"`
	FromSeq       int64         `bson:"from_seq"`
	Enabled       bool          `bson:"enabled"`
	CreatedAt     time.Time     `bson:"created_at"`
	CreatedByID   string        `bson:"created_by_id"`
	CreatedByName string        `bson:"created_by_name"`
	ChangedAt     time.Time     `bson:"changed_at"`
	ChangedByID   string        `bson:"changed_by_id"`
	ChangedByName string        `bson:"changed_by_name"`
}

func sinkDocOf(s *standin.Sink, id bson.ObjectID) sinkDoc {
	return sinkDoc{ID: id, Name: s.Name, Kind: string(s.Kind), URL: s.URL, Address: s.Address, TLS: s.TLS, CA: s.CA, Format: string(s.Format),
		Types: s.Types, Projects: s.Projects, Secret: s.Secret, FromSeq: s.FromSeq, Enabled: s.Enabled,
		CreatedAt: s.CreatedAt.UTC(), CreatedByID: s.CreatedBy.ID, CreatedByName: s.CreatedBy.Name,
		ChangedAt: s.ChangedAt.UTC(), ChangedByID: s.ChangedBy.ID, ChangedByName: s.ChangedBy.Name}
}

func (d *sinkDoc) domain() *standin.Sink {
	return &standin.Sink{ID: d.ID.Hex(), Name: d.Name, Kind: standin.SinkKind(d.Kind), URL: d.URL, Address: d.Address, TLS: d.TLS, CA: d.CA,
		Format: standin.SinkFormat(d.Format), Types: d.Types, Projects: d.Projects, Secret: d.Secret, FromSeq: d.FromSeq,
		Enabled: d.Enabled, CreatedAt: d.CreatedAt, CreatedBy: standin.EventUser{ID: d.CreatedByID, Name: d.CreatedByName},
		ChangedAt: d.ChangedAt, ChangedBy: standin.EventUser{ID: d.ChangedByID, Name: d.ChangedByName}}
}

// CreateSink stores a new sink and sets its ID.
func (db *DB) CreateSink(ctx context.Context, s *standin.Sink) error {
	id := bson.NewObjectID()
	if _, err := db.db.Collection(colSinks).InsertOne(ctx, sinkDocOf(s, id)); err != nil {
		return translate(err, "create sink")
	}
	s.ID = id.Hex()
	return nil
}

// CreateSinkAs stores sink s under its own ID, as it was before a
// removal that is undone.
func (db *DB) CreateSinkAs(ctx context.Context, s *standin.Sink) error {
	oid, err := objectID(s.ID, "sink")
	if err != nil {
		return err
	}
	_, err = db.db.Collection(colSinks).InsertOne(ctx, sinkDocOf(s, oid))
	return translate(err, "restore sink")
}

// SaveSink replaces sink s as it is stored. ENotFound when it is gone.
func (db *DB) SaveSink(ctx context.Context, s *standin.Sink) error {
	oid, err := objectID(s.ID, "sink")
	if err != nil {
		return err
	}
	res, err := db.db.Collection(colSinks).ReplaceOne(ctx, bson.M{"_id": oid}, sinkDocOf(s, oid))
	if err != nil {
		return translate(err, "save sink")
	}
	if res.MatchedCount == 0 {
		return notFound("sink", s.ID)
	}
	return nil
}

// DeleteSink removes sink id and its health. ENotFound when it is gone.
func (db *DB) DeleteSink(ctx context.Context, id string) error {
	oid, err := objectID(id, "sink")
	if err != nil {
		return err
	}
	res, err := db.db.Collection(colSinks).DeleteOne(ctx, bson.M{"_id": oid})
	if err != nil {
		return translate(err, "delete sink")
	}
	if res.DeletedCount == 0 {
		return notFound("sink", id)
	}
	_, err = db.db.Collection(colSinkHealth).DeleteOne(ctx, bson.M{"_id": id})
	return translate(err, "delete sink health")
}

// SinkByID returns sink id. ENotFound when there is none.
func (db *DB) SinkByID(ctx context.Context, id string) (*standin.Sink, error) {
	var d sinkDoc
	if err := db.findByID(ctx, colSinks, "sink", id, nil, &d); err != nil {
		return nil, err
	}
	return d.domain(), nil
}

// Sinks lists every sink, oldest first.
func (db *DB) Sinks(ctx context.Context) ([]*standin.Sink, error) {
	cur, err := db.db.Collection(colSinks).Find(ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, translate(err, "list sinks")
	}
	var docs []sinkDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list sinks")
	}
	out := make([]*standin.Sink, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	return out, nil
}

type sinkHealthDoc struct {
	ID          string    `bson:"_id"`
	Delivered   int64     `bson:"delivered"`
	DeliveredAt time.Time `bson:"delivered_at"`
	LastError   string    `bson:"last_error,omitempty"`
	LastErrorAt time.Time `bson:"last_error_at"`
	Failures    int       `bson:"failures"`
	Checkpoint  int64     `bson:"checkpoint"`
}

// SaveSinkHealth records how a sink's delivery stands: its node is the
// only writer while it holds the sink's lease.
func (db *DB) SaveSinkHealth(ctx context.Context, h *standin.SinkHealth) error {
	d := sinkHealthDoc{ID: h.SinkID, Delivered: h.Delivered, DeliveredAt: h.DeliveredAt.UTC(), LastError: h.LastError,
		LastErrorAt: h.LastErrorAt.UTC(), Failures: h.Failures, Checkpoint: h.Checkpoint}
	_, err := db.db.Collection(colSinkHealth).ReplaceOne(ctx, bson.M{"_id": h.SinkID}, d, options.Replace().SetUpsert(true))
	return translate(err, "save sink health")
}

// SinkHealth returns how sink id's delivery stands; nil before its
// first delivery or failure.
func (db *DB) SinkHealth(ctx context.Context, id string) (*standin.SinkHealth, error) {
	var d sinkHealthDoc
	err := db.db.Collection(colSinkHealth).FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, translate(err, "read sink health")
	}
	return &standin.SinkHealth{SinkID: d.ID, Delivered: d.Delivered, DeliveredAt: d.DeliveredAt, LastError: d.LastError,
		LastErrorAt: d.LastErrorAt, Failures: d.Failures, Checkpoint: d.Checkpoint}, nil
}
