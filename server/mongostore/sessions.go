package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/standin"
)

type sessionDoc struct {
	ID         string        `bson:"_id"`
	UserID     bson.ObjectID `bson:"user_id"`
	CSRFToken  string        `bson:"csrf_token"`
	CreatedAt  time.Time     `bson:"created_at"`
	LastSeenAt time.Time     `bson:"last_seen_at"`
	ExpiresAt  time.Time     `bson:"expires_at"`
	IP         string        `bson:"ip"`
	UserAgent  string        `bson:"user_agent"`
	// ImpersonationID is kept as a string: it names an impersonation
	// document but is only ever compared and looked up by the service.
	ImpersonationID string `bson:"impersonation_id,omitempty"`
	RotatePending   bool   `bson:"rotate_pending,omitempty"`
}

func (d *sessionDoc) domain() *standin.Session {
	return &standin.Session{
		ID:         d.ID,
		UserID:     d.UserID.Hex(),
		CSRFToken:  d.CSRFToken,
		CreatedAt:  d.CreatedAt,
		LastSeenAt: d.LastSeenAt,
		ExpiresAt:  d.ExpiresAt,
		IP:         d.IP,
		UserAgent:  d.UserAgent,

		ImpersonationID: d.ImpersonationID,
		RotatePending:   d.RotatePending,
	}
}

// CreateSession stores s; s.ID must be set by the caller (a digest of the
// client's token). It returns EConflict if the id is taken.
func (db *DB) CreateSession(ctx context.Context, s *standin.Session) error {
	uid, err := objectID(s.UserID, "user")
	if err != nil {
		return err
	}
	d := sessionDoc{
		ID: s.ID, UserID: uid, CSRFToken: s.CSRFToken,
		CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt,
		IP: s.IP, UserAgent: s.UserAgent, ImpersonationID: s.ImpersonationID,
	}
	if _, err := db.db.Collection(colSessions).InsertOne(ctx, d); err != nil {
		return translate(err, "create session")
	}
	return nil
}

// SessionByID returns the session with the given id, or ENotFound. Expiry
// is the caller's to judge: it knows the time.
func (db *DB) SessionByID(ctx context.Context, id string) (*standin.Session, error) {
	var d sessionDoc
	if err := db.db.Collection(colSessions).FindOne(ctx, bson.M{"_id": id}).Decode(&d); err != nil {
		return nil, translate(err, "find session")
	}
	return d.domain(), nil
}

// TouchSession records activity on a session and moves its expiry.
func (db *DB) TouchSession(ctx context.Context, id string, seen, expires time.Time) error {
	_, err := db.db.Collection(colSessions).UpdateOne(ctx, bson.M{"_id": id},
		bson.M{"$set": bson.M{"last_seen_at": seen, "expires_at": expires}})
	return translate(err, "touch session")
}

// SetSessionImpersonation records (or, with "", clears) the impersonation a
// session is in.
func (db *DB) SetSessionImpersonation(ctx context.Context, id, impersonationID string) error {
	update := bson.M{"$set": bson.M{"impersonation_id": impersonationID}}
	if impersonationID == "" {
		update = bson.M{"$unset": bson.M{"impersonation_id": ""}}
	}
	res, err := db.db.Collection(colSessions).UpdateOne(ctx, bson.M{"_id": id}, update)
	if err != nil {
		return translate(err, "set session impersonation")
	}
	if res.MatchedCount == 0 {
		return standin.Errorf(standin.ENotFound, "The session has ended.")
	}
	return nil
}

// DeleteSession removes a session; removing one that is gone is not an error.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	_, err := db.db.Collection(colSessions).DeleteOne(ctx, bson.M{"_id": id})
	return translate(err, "delete session")
}

// DeleteUserSessions removes every session of a user and returns their ids,
// so their open sockets can be closed too.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) ([]string, error) {
	uid, err := objectID(userID, "user")
	if err != nil {
		return nil, err
	}
	return db.deleteSessions(ctx, bson.M{"user_id": uid}, "sessions of user")
}

// deleteSessions removes the sessions matching filter and returns their
// ids; what names them in errors.
func (db *DB) deleteSessions(ctx context.Context, filter bson.M, what string) ([]string, error) {
	cur, err := db.db.Collection(colSessions).Find(ctx, filter)
	if err != nil {
		return nil, translate(err, "find "+what)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "find "+what)
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	if len(ids) == 0 {
		return ids, nil
	}
	if _, err := db.db.Collection(colSessions).DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}}); err != nil {
		return nil, translate(err, "delete "+what)
	}
	return ids, nil
}

// DeleteExpiredSessions removes sessions that expired before now and
// returns their ids. Real MongoDB's TTL index does this on its own;
// FerretDB has none, so the server sweeps on both.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) ([]string, error) {
	return db.deleteSessions(ctx, bson.M{"expires_at": bson.M{"$lte": now.UTC()}}, "expired sessions")
}
