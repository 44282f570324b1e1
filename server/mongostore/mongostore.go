// Package mongostore keeps the console's state in MongoDB (or the embedded
// FerretDB, which speaks the same protocol). BSON shapes stay private to this
// package; callers see only the domain types of package standin, and driver
// errors are translated into coded domain errors.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/dbfault"
	"standin/server/standin"
)

// Collection names.
const (
	colUsers     = "users"
	colSessions  = "sessions"
	colProjects  = "projects"
	colTrainings = "trainings"
	colResources = "resources"
	colMeta      = "meta"
)

// DB is a connection to one database.
type DB struct {
	client *mongo.Client
	db     *mongo.Database
	ferret bool
	// unfinished is set when a booking write stopped between its steps
	// and could not undo them (the database failed): RepairBookings has
	// work. It starts set, for what an earlier process left.
	unfinished atomic.Bool
	// halfWritten remembers when RepairBookings first saw each booking it
	// left half-written, by this process's monotonic clock: its age for
	// undoing does not trust wall clocks, which jump and differ between
	// servers.
	halfWritten struct {
		sync.Mutex
		seen map[bson.ObjectID]time.Time
	}
	ready readiness
}

// Options tune Open.
type Options struct {
	// Timeout bounds server selection and connecting (default 5s), so a
	// database that is down fails requests quickly with a 503 instead of
	// hanging them.
	Timeout time.Duration
	// AppendOnly marks a connection used only to insert and read, never to
	// update a document in place (the audit log): it keeps a full pool on
	// FerretDB too, so long reads do not queue behind each other.
	AppendOnly bool
}

// Open connects to uri, selects database name, checks that the server
// answers and creates the indexes the stores rely on.
//
// It asks the server what it is: FerretDB (embedded, or reached through
// MONGODB_URI) does not lock read-modify-write updates, so two connections
// updating one document can lose an update. On FerretDB the client keeps a
// pool of one connection, which serializes them. Real MongoDB needs no such
// limit.
func Open(ctx context.Context, uri, name string, o Options) (*DB, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(o.Timeout).
		SetConnectTimeout(o.Timeout).
		SetAppName("standin")
	db, err := connect(ctx, opts, name)
	if err != nil {
		return nil, err
	}
	if db.ferret && !o.AppendOnly {
		_ = db.client.Disconnect(context.WithoutCancel(ctx))
		if db, err = connect(ctx, opts.SetMaxPoolSize(1), name); err != nil {
			return nil, err
		}
	}
	if err := db.ensureIndexes(ctx); err != nil {
		_ = db.client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return db, nil
}

// connect opens a client, checks the server answers and learns whether it
// is FerretDB.
func connect(ctx context.Context, opts *options.ClientOptions, name string) (*DB, error) {
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, translate(err, "connect to database")
	}
	_, ferret := info["ferretdbVersion"]
	db := &DB{client: client, db: client.Database(name), ferret: ferret, ready: readiness{probing: make(chan struct{}, 1)}}
	db.unfinished.Store(true)
	return db, nil
}

// FerretDB reports whether the server is FerretDB rather than MongoDB.
func (db *DB) FerretDB() bool { return db.ferret }

// Ping checks that the database answers. It returns an EUnavailable error
// when it does not.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.client.Ping(ctx, nil); err != nil {
		return translate(err, "ping database")
	}
	return nil
}

// Close disconnects from the server.
func (db *DB) Close(ctx context.Context) error {
	if err := db.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnect from database: %w", err)
	}
	return nil
}

// Drop deletes the whole database. Tests use it to clean up.
func (db *DB) Drop(ctx context.Context) error {
	if err := db.db.Drop(ctx); err != nil {
		return translate(err, "drop database")
	}
	return nil
}

func (db *DB) ensureIndexes(ctx context.Context) error {
	// A fresh options value per index: the driver records the generated
	// index name in the options it is given, so a shared value would give
	// every index the first one's name.
	unique := func() *options.IndexOptionsBuilder { return options.Index().SetUnique(true) }
	indexes := map[string][]mongo.IndexModel{
		colUsers: {
			{Keys: bson.D{{Key: "email", Value: 1}}, Options: unique()},
		},
		colSessions: {
			{Keys: bson.D{{Key: "user_id", Value: 1}}},
			{Keys: bson.D{{Key: "impersonation_id", Value: 1}}},
		},
		colProjects: {
			{Keys: bson.D{{Key: "code", Value: 1}}, Options: unique()},
		},
		colTrainings: {
			{Keys: bson.D{{Key: "name", Value: 1}}, Options: unique()},
		},
		colResources: {
			{Keys: bson.D{{Key: "name", Value: 1}}, Options: unique()},
		},
		colBookings: {
			{Keys: bson.D{{Key: "user_id", Value: 1}, {Key: "_id", Value: -1}}},
			{Keys: bson.D{{Key: "project_id", Value: 1}, {Key: "_id", Value: -1}}},
			{Keys: bson.D{{Key: "resource_id", Value: 1}, {Key: "start", Value: 1}}},
			{Keys: bson.D{{Key: "status", Value: 1}}},
		},
		colSlots: {
			{Keys: bson.D{{Key: "booking_id", Value: 1}}},
		},
		colImpersonations: {
			{Keys: bson.D{{Key: "active", Value: 1}}},
		},
		colHolds: {
			{Keys: bson.D{{Key: "impersonation_id", Value: 1}}},
		},
		colNotices: {
			{Keys: bson.D{{Key: "user_id", Value: 1}, {Key: "_id", Value: -1}}},
			{Keys: bson.D{{Key: "user_id", Value: 1}, {Key: "seq", Value: 1}}},
		},
	}
	if !db.ferret {
		// Real MongoDB removes expired sessions by itself. FerretDB has no
		// TTL indexes; lookups check expiry either way, so an expired
		// session never authenticates on either.
		indexes[colSessions] = append(indexes[colSessions], mongo.IndexModel{
			Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(0),
		})
	}
	for col, models := range indexes {
		// One index per command: FerretDB drops the connection when one
		// createIndexes command names three or more indexes that exist.
		for _, m := range models {
			if _, err := db.db.Collection(col).Indexes().CreateOne(ctx, m); err != nil {
				return translate(err, "create indexes on "+col)
			}
		}
	}
	return nil
}

// translate turns a driver error into a coded domain error that keeps the
// original as its cause, with what names the operation for logs. A
// database that cannot be reached, or that refuses to store anything (its
// disk full or read-only), is EUnavailable: the request may be tried again.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var code, msg string
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		code, msg = standin.ENotFound, "Not found."
	case mongo.IsDuplicateKeyError(err):
		code, msg = standin.EConflict, "That already exists."
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", what, err)
	case dbfault.Unreachable(err):
		code, msg = standin.EUnavailable, "The database is unavailable. Try again shortly."
	case dbfault.WriteRefused(err):
		code, msg = standin.EUnavailable, msgWriteRefused
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
	return &standin.Error{Code: code, Message: msg, Cause: fmt.Errorf("%s: %w", what, err)}
}

// msgWriteRefused is what a person is told when the database answers but
// stores nothing.
const msgWriteRefused = "The database cannot save changes right now (its disk may be full or read-only), so nothing was changed. Try again shortly."

// objectID parses a hex id, answering ENotFound for one that cannot exist
// so malformed and unknown ids look alike to callers.
func objectID(id, what string) (bson.ObjectID, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return oid, notFound(what, id)
	}
	return oid, nil
}

// Name is the database's name.
func (db *DB) Name() string { return db.db.Name() }

// findByID decodes the document of col with the given hex id into out. A
// malformed or unknown id is ENotFound naming what was looked for; extra
// narrows the match further (nil for none).
func (db *DB) findByID(ctx context.Context, col, what, id string, extra bson.M, out any) error {
	oid, err := objectID(id, what)
	if err != nil {
		return err
	}
	filter := bson.M{"_id": oid}
	for k, v := range extra {
		filter[k] = v
	}
	err = db.db.Collection(col).FindOne(ctx, filter).Decode(out)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return notFound(what, id)
	}
	return translate(err, "find "+what+" "+id)
}

// notFound is the one answer for an id that names nothing, malformed or
// unknown alike; an id of no id's shape is not repeated back.
func notFound(what, id string) error {
	if !standin.ValidID(id) {
		return standin.Errorf(standin.ENotFound, "No %s with this id.", what)
	}
	return standin.Errorf(standin.ENotFound, "No %s with id %q.", what, id)
}
