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
	colImpersonations = "impersonations"
	// colHolds has one document per person taking part in an active
	// impersonation: "subject:<id>" for the one impersonated and
	// "actor:<id>" for the one acting. Their _id uniqueness is what makes
	// "one agent per user, no nesting, no chains" hold under concurrent
	// starts, on MongoDB and FerretDB alike.
	colHolds   = "impersonation_holds"
	colNotices = "notifications"
	// colEnds has one document per ended impersonation, _id its id: the
	// insert that creates it decides, on MongoDB and FerretDB alike,
	// which of several concurrent ends (an exit, a revoke, the expiry
	// sweep, on one node or many) is the one that happened.
	colEnds = "impersonation_ends"
	// colClaims holds one document per claimed piece of background work
	// (see Claim).
	colClaims   = "claims"
	holdSubject = "subject:"
	holdActor   = "actor:"
)

type impersonationDoc struct {
	ID          bson.ObjectID `bson:"_id"`
	ActorID     string        `bson:"actor_id"`
	ActorName   string        `bson:"actor_name"`
	ActorEmail  string        `bson:"actor_email,omitempty"`
	SubjectID   string        `bson:"subject_id"`
	SubjectName string        `bson:"subject_name"`
	Reason      string        `bson:"reason"`
	Ticket      string        `bson:"ticket,omitempty"`
	SessionID   string        `bson:"session_id"`
	StartedAt   time.Time     `bson:"started_at"`
	ExpiresAt   time.Time     `bson:"expires_at"`
	Active      bool          `bson:"active"`
	EndedAt     *time.Time    `bson:"ended_at,omitempty"`
	Cause       string        `bson:"cause,omitempty"`
	EndedBy     string        `bson:"ended_by,omitempty"`
	EndedByName string        `bson:"ended_by_name,omitempty"`
	EndedByMail string        `bson:"ended_by_email,omitempty"`
	// EndAudited is false from the end until its audit event is
	// committed; start-up repair writes the events of ends still false.
	EndAudited *bool `bson:"end_audited,omitempty"`
	// GrantID is the consent grant it started under.
	GrantID string `bson:"grant_id,omitempty"`
	// Moderated sessions run only while a moderator watches them.
	Moderated bool `bson:"moderated,omitempty"`
}

type holdDoc struct {
	ID              string    `bson:"_id"`
	ImpersonationID string    `bson:"impersonation_id"`
	At              time.Time `bson:"at"` // when it was claimed
}

// holdGrace is how long a hold may name an impersonation that does not
// exist: a start claims its holds a moment before it writes its record.
// Past it, the hold is left over from a start that failed with the
// database and could not release it.
const holdGrace = time.Minute

func (d *impersonationDoc) domain() *standin.Impersonation {
	i := &standin.Impersonation{
		ID: d.ID.Hex(), ActorID: d.ActorID, ActorName: d.ActorName, ActorEmail: d.ActorEmail, SubjectID: d.SubjectID, SubjectName: d.SubjectName,
		Reason: d.Reason, Ticket: d.Ticket, SessionID: d.SessionID, StartedAt: d.StartedAt, ExpiresAt: d.ExpiresAt,
		Cause: d.Cause, EndedBy: d.EndedBy, EndedByName: d.EndedByName, EndedByEmail: d.EndedByMail, GrantID: d.GrantID,
		Moderated: d.Moderated,
	}
	if d.EndedAt != nil {
		i.EndedAt = *d.EndedAt
	}
	return i
}

// CreateImpersonation stores an active impersonation, claiming the actor
// and the subject for it. If either the actor or the subject already takes
// part in one (as actor or subject: no nesting, no chains), nothing is
// stored and a *standin.HoldConflict is returned. i.ID is set, unless it
// is set already (the id of the request it starts from).
func (db *DB) CreateImpersonation(ctx context.Context, i *standin.Impersonation) error {
	oid := bson.NewObjectID()
	if i.ID != "" {
		var err error
		if oid, err = objectID(i.ID, "impersonation"); err != nil {
			return err
		}
	}
	d := impersonationDoc{
		ID: oid, GrantID: i.GrantID, Moderated: i.Moderated, ActorID: i.ActorID, ActorName: i.ActorName, ActorEmail: i.ActorEmail, SubjectID: i.SubjectID, SubjectName: i.SubjectName,
		Reason: i.Reason, Ticket: i.Ticket, SessionID: i.SessionID, StartedAt: i.StartedAt.UTC(), ExpiresAt: i.ExpiresAt.UTC(), Active: true,
	}
	id := d.ID.Hex()
	// Each person may hold one role in one active impersonation: the
	// actor must not be anyone's subject or actor now, nor the subject.
	// Claims come before probes, so of two starts racing to form a chain
	// (A→B and B→A) at least one sees the other's claim.
	claims := []string{holdActor + i.ActorID, holdSubject + i.SubjectID, holdSubject + i.ActorID, holdActor + i.SubjectID}
	var claimed []string
	release := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if len(claimed) > 0 {
			_, _ = db.db.Collection(colHolds).DeleteMany(cctx, bson.M{"_id": bson.M{"$in": claimed}, "impersonation_id": id})
		}
	}
	for _, key := range claims {
		// The mirrored keys ("subject:" of the actor, "actor:" of the
		// subject) are probed, not claimed: they detect chains.
		probe := key == holdSubject+i.ActorID || key == holdActor+i.SubjectID
		if probe {
			var h holdDoc
			err := db.db.Collection(colHolds).FindOne(ctx, bson.M{"_id": key}).Decode(&h)
			if err == nil && db.freeIfStale(ctx, key) {
				continue
			}
			if err == nil {
				release()
				return db.holdConflict(ctx, key, h)
			}
			if !errors.Is(err, mongo.ErrNoDocuments) {
				release()
				return translate(err, "check impersonation holds")
			}
			continue
		}
		_, err := db.db.Collection(colHolds).InsertOne(ctx, holdDoc{ID: key, ImpersonationID: id, At: time.Now().UTC()})
		if mongo.IsDuplicateKeyError(err) && db.freeIfStale(ctx, key) {
			_, err = db.db.Collection(colHolds).InsertOne(ctx, holdDoc{ID: key, ImpersonationID: id, At: time.Now().UTC()})
		}
		if mongo.IsDuplicateKeyError(err) {
			var h holdDoc
			ferr := db.db.Collection(colHolds).FindOne(ctx, bson.M{"_id": key}).Decode(&h)
			release()
			if ferr != nil {
				return translate(ferr, "read impersonation hold")
			}
			return db.holdConflict(ctx, key, h)
		}
		if err != nil {
			release()
			return translate(err, "claim impersonation hold")
		}
		claimed = append(claimed, key)
	}
	if _, err := db.db.Collection(colImpersonations).InsertOne(ctx, d); err != nil {
		release()
		return translate(err, "create impersonation")
	}
	i.ID = id
	return nil
}

// freeIfStale removes the hold key if its impersonation has ended (an end
// that could not free its holds) or, past holdGrace, does not exist (a
// start that could not release its claims), and reports whether it did.
func (db *DB) freeIfStale(ctx context.Context, key string) bool {
	var h holdDoc
	if err := db.db.Collection(colHolds).FindOne(ctx, bson.M{"_id": key}).Decode(&h); err != nil {
		return false
	}
	imp, err := db.ImpersonationByID(ctx, h.ImpersonationID)
	switch {
	case standin.ErrorCode(err) == standin.ENotFound && time.Since(h.At) > holdGrace:
	case err != nil || imp.EndedAt.IsZero():
		return false
	}
	res, err := db.db.Collection(colHolds).DeleteOne(ctx, bson.M{"_id": key, "impersonation_id": h.ImpersonationID})
	return err == nil && res.DeletedCount == 1
}

func (db *DB) holdConflict(ctx context.Context, key string, h holdDoc) error {
	imp, err := db.ImpersonationByID(ctx, h.ImpersonationID)
	if standin.ErrorCode(err) == standin.ENotFound {
		// A start racing this one has claimed the hold and not yet written
		// its record: it is a conflict all the same.
		imp = &standin.Impersonation{ID: h.ImpersonationID, ActorName: "another agent", SubjectName: "someone"}
		err = nil
	}
	if err != nil {
		return err
	}
	role, person := "actor", key[len(holdActor):]
	if len(key) > len(holdSubject) && key[:len(holdSubject)] == holdSubject {
		role, person = "subject", key[len(holdSubject):]
	}
	return &standin.HoldConflict{PersonID: person, Role: role, Holder: imp}
}

// ImpersonationInSession reports whether a session is in the impersonation
// id: the actor's, once the start switched it.
func (db *DB) ImpersonationInSession(ctx context.Context, id string) (bool, error) {
	err := db.db.Collection(colSessions).FindOne(ctx, bson.M{"impersonation_id": id},
		options.FindOne().SetProjection(bson.M{"_id": 1})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, translate(err, "find the session of an impersonation")
	}
	return true, nil
}

// ImpersonationByID returns an impersonation, or ENotFound.
func (db *DB) ImpersonationByID(ctx context.Context, id string) (*standin.Impersonation, error) {
	var d impersonationDoc
	if err := db.findByID(ctx, colImpersonations, "impersonation", id, nil, &d); err != nil {
		return nil, err
	}
	return d.domain(), nil
}

type endDoc struct {
	ID     string    `bson:"_id"`
	Cause  string    `bson:"cause"`
	By     string    `bson:"by"`
	ByName string    `bson:"by_name,omitempty"`
	ByMail string    `bson:"by_email,omitempty"`
	At     time.Time `bson:"at"`
}

// EndImpersonation ends an active impersonation with a cause, by whom (nil
// when no one ended it: expiry), at at, and frees its holds. Of concurrent ends exactly one succeeds: the
// one whose end record is inserted first; the others get EConflict, as
// does ending one that had already ended. ENotFound for an unknown id.
func (db *DB) EndImpersonation(ctx context.Context, id, cause string, by *standin.User, at time.Time) (*standin.Impersonation, error) {
	cur, err := db.ImpersonationByID(ctx, id)
	if err != nil {
		return nil, err
	}
	ended := standin.Errorf(standin.EConflict, "That impersonation has already ended.")
	if !cur.EndedAt.IsZero() {
		return nil, ended
	}
	at = at.UTC()
	end := endDoc{ID: id, Cause: cause, At: at}
	if by != nil {
		end.By, end.ByName, end.ByMail = by.ID, by.Name, by.Email
	}
	if _, err := db.db.Collection(colEnds).InsertOne(ctx, end); err != nil {
		if !mongo.IsDuplicateKeyError(err) {
			return nil, translate(err, "record the end of an impersonation")
		}
		// Another end won. Its record is the truth; if the database
		// failed before the winner applied it, apply it now.
		if err := db.applyEnd(ctx, id); err != nil {
			return nil, err
		}
		return nil, ended
	}
	d, err := db.setEnded(ctx, end)
	if err != nil {
		return nil, err
	}
	if _, err := db.db.Collection(colHolds).DeleteMany(ctx, bson.M{"impersonation_id": id}); err != nil {
		return d.domain(), translate(err, "free impersonation holds")
	}
	return d.domain(), nil
}

// applyEnd makes impersonation id's document say what its end record
// says, if it does not yet.
func (db *DB) applyEnd(ctx context.Context, id string) error {
	var end endDoc
	if err := db.db.Collection(colEnds).FindOne(ctx, bson.M{"_id": id}).Decode(&end); err != nil {
		return translate(err, "read the end of an impersonation")
	}
	cur, err := db.ImpersonationByID(ctx, id)
	if err != nil || !cur.EndedAt.IsZero() {
		return err
	}
	if _, err := db.setEnded(ctx, end); err != nil {
		return err
	}
	_, err = db.db.Collection(colHolds).DeleteMany(ctx, bson.M{"impersonation_id": id})
	return translate(err, "free impersonation holds")
}

// setEnded writes an end record's fields into its impersonation. Only the
// winner of the end record (or, after a fault, whoever finds it
// unapplied) writes them, and always the same values, so the update needs
// no condition to be exact.
func (db *DB) setEnded(ctx context.Context, end endDoc) (*impersonationDoc, error) {
	oid, err := objectID(end.ID, "impersonation")
	if err != nil {
		return nil, err
	}
	var d impersonationDoc
	err = db.db.Collection(colImpersonations).FindOneAndUpdate(ctx, bson.M{"_id": oid},
		bson.M{"$set": bson.M{"active": false, "ended_at": end.At, "cause": end.Cause, "ended_by": end.By, "ended_by_name": end.ByName, "ended_by_email": end.ByMail, "end_audited": false}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if err != nil {
		return nil, translate(err, "end impersonation")
	}
	return &d, nil
}

// Claim takes the piece of background work named key for this caller, by
// inserting a document with that _id: exactly one of any number of
// callers, on any number of nodes, gets true. Keys that name a time slice
// ("work:<slice>") make a lease: the next slice can be claimed again, by
// anyone, if the work was not done.
func (db *DB) Claim(ctx context.Context, key string, at time.Time) (bool, error) {
	return db.insertOnce(ctx, colClaims, bson.M{"_id": key, "at": at.UTC()}, "claim "+key)
}

// ClaimedAt returns when key was claimed, and false when it was not.
func (db *DB) ClaimedAt(ctx context.Context, key string) (time.Time, bool, error) {
	var c struct {
		At time.Time `bson:"at"`
	}
	err := db.db.Collection(colClaims).FindOne(ctx, bson.M{"_id": key}).Decode(&c)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, translate(err, "read claim "+key)
	}
	return c.At, true, nil
}

// Unclaim gives key back, for work whose claim was made but whose work
// failed, so that it can be claimed again.
func (db *DB) Unclaim(ctx context.Context, key string) error {
	_, err := db.db.Collection(colClaims).DeleteOne(ctx, bson.M{"_id": key})
	return translate(err, "give back claim "+key)
}

// insertOnce inserts doc into col: true when this caller inserted it,
// false when a document with its _id exists already. what names the
// operation in errors.
func (db *DB) insertOnce(ctx context.Context, col string, doc any, what string) (bool, error) {
	_, err := db.db.Collection(col).InsertOne(ctx, doc)
	switch {
	case err == nil:
		return true, nil
	case mongo.IsDuplicateKeyError(err):
		return false, nil
	}
	return false, translate(err, what)
}

// MarkEndAudited records that an impersonation's end is in the audit log.
func (db *DB) MarkEndAudited(ctx context.Context, id string) error {
	oid, err := objectID(id, "impersonation")
	if err != nil {
		return err
	}
	_, err = db.db.Collection(colImpersonations).UpdateOne(ctx, bson.M{"_id": oid}, bson.M{"$set": bson.M{"end_audited": true}})
	return translate(err, "mark impersonation end audited")
}

// UnauditedEnds lists impersonations that ended before before and whose
// end is not yet in the audit log: a stop or a database fault came
// between the two, or the end is still being audited by its request.
func (db *DB) UnauditedEnds(ctx context.Context, before time.Time) ([]*standin.Impersonation, error) {
	cur, err := db.db.Collection(colImpersonations).Find(ctx, bson.M{"end_audited": false, "ended_at": bson.M{"$lt": before.UTC()}})
	if err != nil {
		return nil, translate(err, "list unaudited impersonation ends")
	}
	var docs []impersonationDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list unaudited impersonation ends")
	}
	out := make([]*standin.Impersonation, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	return out, nil
}

// ActiveImpersonations lists impersonations not yet ended, newest first.
// Expired ones are included until the expiry sweep ends them.
func (db *DB) ActiveImpersonations(ctx context.Context) ([]*standin.Impersonation, error) {
	cur, err := db.db.Collection(colImpersonations).Find(ctx, bson.M{"active": true},
		options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}))
	if err != nil {
		return nil, translate(err, "list impersonations")
	}
	var docs []impersonationDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list impersonations")
	}
	out := make([]*standin.Impersonation, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	return out, nil
}

// ClearImpersonationSessions takes every session in impersonation id out
// of it, marks them to get a new token on their next request, and returns
// their ids.
func (db *DB) ClearImpersonationSessions(ctx context.Context, id string) ([]string, error) {
	cur, err := db.db.Collection(colSessions).Find(ctx, bson.M{"impersonation_id": id})
	if err != nil {
		return nil, translate(err, "find impersonating sessions")
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "find impersonating sessions")
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		_, err := db.db.Collection(colSessions).UpdateOne(ctx, bson.M{"_id": d.ID, "impersonation_id": id},
			bson.M{"$unset": bson.M{"impersonation_id": ""}, "$set": bson.M{"rotate_pending": true}})
		if err != nil {
			return ids, translate(err, "clear session impersonation")
		}
		ids = append(ids, d.ID)
	}
	return ids, nil
}

// FreeStaleHolds removes holds whose impersonation has ended or, past
// holdGrace, does not exist: what a crash between ending one and freeing
// its holds leaves, or a start that could not undo its claims. A hold
// younger than that may be a start's, on another node sharing the
// database, that has not yet written its record.
func (db *DB) FreeStaleHolds(ctx context.Context) (int, error) {
	cur, err := db.db.Collection(colHolds).Find(ctx, bson.M{})
	if err != nil {
		return 0, translate(err, "list impersonation holds")
	}
	var holds []holdDoc
	if err := cur.All(ctx, &holds); err != nil {
		return 0, translate(err, "list impersonation holds")
	}
	freed := 0
	for _, h := range holds {
		imp, err := db.ImpersonationByID(ctx, h.ImpersonationID)
		if err == nil && imp.EndedAt.IsZero() {
			continue
		}
		if err != nil && standin.ErrorCode(err) != standin.ENotFound {
			return freed, err
		}
		if err != nil && time.Since(h.At) <= holdGrace {
			continue // a start, perhaps on another node, is still writing it
		}
		if _, err := db.db.Collection(colHolds).DeleteOne(ctx, bson.M{"_id": h.ID, "impersonation_id": h.ImpersonationID}); err != nil {
			return freed, translate(err, "free impersonation hold")
		}
		freed++
	}
	return freed, nil
}

type noticeDoc struct {
	ID        bson.ObjectID `bson:"_id"`
	UserID    string        `bson:"user_id"`
	Seq       int64         `bson:"seq"`
	Type      string        `bson:"type"`
	Title     string        `bson:"title"`
	Body      string        `bson:"body"`
	ActorName string        `bson:"actor_name"`
	ActorMail string        `bson:"actor_email,omitempty"`
	Reason    string        `bson:"reason"`
	Until     time.Time     `bson:"until"`
	At        time.Time     `bson:"at"`
	ImpID     string        `bson:"impersonation_id,omitempty"`
}

// AddNotification stores a notification for its user and sets n.ID.
func (db *DB) AddNotification(ctx context.Context, n *standin.Notification) error {
	d := noticeDoc{ID: bson.NewObjectID(), UserID: n.UserID, Seq: n.Seq, Type: n.Type, Title: n.Title, Body: n.Body,
		ActorName: n.ActorName, ActorMail: n.ActorEmail, Reason: n.Reason, Until: n.Until.UTC(), At: n.At.UTC(), ImpID: n.ImpersonationID}
	if _, err := db.db.Collection(colNotices).InsertOne(ctx, d); err != nil {
		return translate(err, "add notification")
	}
	n.ID = d.ID.Hex()
	return nil
}

// Notifications lists a user's notifications, newest first.
func (db *DB) Notifications(ctx context.Context, userID string, p standin.Page) ([]*standin.Notification, string, error) {
	docs, next, err := page(ctx, db, colNotices, bson.M{"user_id": userID}, p, func(d *noticeDoc) bson.ObjectID { return d.ID })
	if err != nil {
		return nil, "", err
	}
	out := make([]*standin.Notification, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.notification())
	}
	return out, next, nil
}

func (d *noticeDoc) notification() *standin.Notification {
	return &standin.Notification{ID: d.ID.Hex(), UserID: d.UserID, Seq: d.Seq, Type: d.Type, Title: d.Title, Body: d.Body,
		ActorName: d.ActorName, ActorEmail: d.ActorMail, Reason: d.Reason, Until: d.Until.UTC(), At: d.At.UTC(),
		ImpersonationID: d.ImpID}
}

// NotificationsAfter calls fn with each of a user's notifications whose
// seq is above afterSeq, in increasing seq order, and stops at fn's first
// error, which it returns.
func (db *DB) NotificationsAfter(ctx context.Context, userID string, afterSeq int64, fn func(*standin.Notification) error) error {
	cur, err := db.db.Collection(colNotices).Find(ctx,
		bson.D{{Key: "user_id", Value: userID}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: afterSeq}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	if err != nil {
		return translate(err, "read notifications")
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d noticeDoc
		if err := cur.Decode(&d); err != nil {
			return translate(err, "read notifications")
		}
		if err := fn(d.notification()); err != nil {
			return err
		}
	}
	return translate(cur.Err(), "read notifications")
}
