package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/standin"
)

// Requests to impersonate, their answers and consent grants. Every change
// of a request's state is a unique insert: its approvers' votes, its one
// outcome and its one start. So of an approval and an expiry, two
// approvers, or two starts racing on any number of nodes, exactly one
// wins, on MongoDB and FerretDB alike, and each read is a lookup by _id,
// which stays cheap on FerretDB however many requests were ever made.
const (
	// colRequests holds every request as it was made, _id its id.
	colRequests = "impersonation_requests"
	// colPending holds a copy of each request still waiting for its
	// answer, so that listing them reads a small collection.
	colPending = "pending_requests"
	// colRequestMarks holds the unique keys deciding a request's state:
	// "<id>/voter/<user>" and "<id>/vote/<k>" for the k-th approval,
	// "<id>/outcome" and "<id>/start".
	colRequestMarks = "request_marks"
	// colGrants holds each user's consent grant, _id the user's id.
	colGrants = "consent_grants"
	// colSettings holds every version of the impersonation settings,
	// _id "impersonation/<version>": a change is the insert of the next
	// version, which two changes at once cannot both make.
	colSettings = "settings"
)

type requestDoc struct {
	ID          bson.ObjectID `bson:"_id"`
	ActorID     string        `bson:"actor_id"`
	ActorName   string        `bson:"actor_name"`
	ActorEmail  string        `bson:"actor_email,omitempty"`
	SubjectID   string        `bson:"subject_id"`
	SubjectName string        `bson:"subject_name"`
	SubjectRole string        `bson:"subject_role"`
	Projects    []string      `bson:"projects,omitempty"`
	Reason      string        `bson:"reason"`
	Ticket      string        `bson:"ticket,omitempty"`
	Minutes     int           `bson:"minutes"`
	Mode        string        `bson:"mode"`
	Approvals   int           `bson:"approvals,omitempty"`
	CreatedAt   time.Time     `bson:"created_at"`
	ExpiresAt   time.Time     `bson:"expires_at"`
}

func requestDocOf(r *standin.AccessRequest, id bson.ObjectID) requestDoc {
	return requestDoc{ID: id, ActorID: r.ActorID, ActorName: r.ActorName, ActorEmail: r.ActorEmail,
		SubjectID: r.SubjectID, SubjectName: r.SubjectName, SubjectRole: string(r.SubjectRole), Projects: r.Projects,
		Reason: r.Reason, Ticket: r.Ticket, Minutes: r.Minutes, Mode: string(r.Mode), Approvals: r.Approvals,
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC()}
}

func (d *requestDoc) domain() *standin.AccessRequest {
	return &standin.AccessRequest{ID: d.ID.Hex(), ActorID: d.ActorID, ActorName: d.ActorName, ActorEmail: d.ActorEmail,
		SubjectID: d.SubjectID, SubjectName: d.SubjectName, SubjectRole: standin.Role(d.SubjectRole), Projects: d.Projects,
		Reason: d.Reason, Ticket: d.Ticket, Minutes: d.Minutes, Mode: standin.Mode(d.Mode), Approvals: d.Approvals,
		CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()}
}

// markDoc is one decided piece of a request's state.
type markDoc struct {
	ID      string    `bson:"_id"`
	Status  string    `bson:"status,omitempty"` // an outcome's
	ByID    string    `bson:"by_id,omitempty"`
	ByName  string    `bson:"by_name,omitempty"`
	Note    string    `bson:"note,omitempty"`
	At      time.Time `bson:"at"`
	Audited bool      `bson:"audited"`
}

// CreateRequest stores a new pending request and sets r.ID.
func (db *DB) CreateRequest(ctx context.Context, r *standin.AccessRequest) error {
	d := requestDocOf(r, bson.NewObjectID())
	if _, err := db.db.Collection(colRequests).InsertOne(ctx, d); err != nil {
		return translate(err, "create request")
	}
	if _, err := db.db.Collection(colPending).InsertOne(ctx, d); err != nil {
		_, _ = db.db.Collection(colRequests).DeleteOne(context.WithoutCancel(ctx), bson.M{"_id": d.ID})
		return translate(err, "create request")
	}
	r.ID = d.ID.Hex()
	return nil
}

// DeleteRequest removes a request whose audit event could not be
// written.
func (db *DB) DeleteRequest(ctx context.Context, id string) error {
	oid, err := objectID(id, "request")
	if err != nil {
		return err
	}
	if _, err := db.db.Collection(colPending).DeleteOne(ctx, bson.M{"_id": oid}); err != nil {
		return translate(err, "remove request")
	}
	_, err = db.db.Collection(colRequests).DeleteOne(ctx, bson.M{"_id": oid})
	return translate(err, "remove request")
}

// RequestByID returns a request with its votes, outcome and start.
//
// Errors: ENotFound when there is no such request.
func (db *DB) RequestByID(ctx context.Context, id string) (*standin.AccessRequest, error) {
	oid, err := objectID(id, "request")
	if err != nil {
		return nil, err
	}
	var d requestDoc
	if err := db.db.Collection(colRequests).FindOne(ctx, bson.M{"_id": oid}).Decode(&d); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, notFound("request", id)
		}
		return nil, translate(err, "read request")
	}
	r := d.domain()
	return r, db.readMarks(ctx, r)
}

// readMarks adds a request's votes, outcome and start to r, each read by
// its _id.
func (db *DB) readMarks(ctx context.Context, r *standin.AccessRequest) error {
	for k := 1; k <= max(r.Approvals, 1); k++ {
		m, err := db.mark(ctx, fmt.Sprintf("%s/vote/%d", r.ID, k))
		if err != nil {
			return err
		}
		if m == nil {
			break
		}
		r.Votes = append(r.Votes, standin.Vote{By: standin.EventUser{ID: m.ByID, Name: m.ByName}, At: m.At.UTC(), Note: m.Note})
	}
	m, err := db.mark(ctx, r.ID+"/outcome")
	if err != nil {
		return err
	}
	if m != nil {
		r.Outcome = &standin.Outcome{Status: m.Status, By: standin.EventUser{ID: m.ByID, Name: m.ByName}, At: m.At.UTC(), Note: m.Note, Audited: m.Audited}
	}
	s, err := db.mark(ctx, r.ID+"/start")
	if err != nil {
		return err
	}
	r.Started = s != nil
	return nil
}

func (db *DB) mark(ctx context.Context, key string) (*markDoc, error) {
	var m markDoc
	err := db.db.Collection(colRequestMarks).FindOne(ctx, bson.M{"_id": key}).Decode(&m)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, translate(err, "read request "+key)
	}
	return &m, nil
}

// putMark inserts a mark: true when this caller made it, false when it
// exists already.
func (db *DB) putMark(ctx context.Context, m markDoc) (bool, error) {
	m.At = m.At.UTC()
	return db.insertOnce(ctx, colRequestMarks, m, "mark request "+m.ID)
}

// dropMark removes a mark this caller made and could not see through.
func (db *DB) dropMark(ctx context.Context, key string) error {
	_, err := db.db.Collection(colRequestMarks).DeleteOne(ctx, bson.M{"_id": key})
	return translate(err, "undo request "+key)
}

// AddVote records v as an approval of request id, the k-th (k from 1 to
// most). It returns k, or 0 when v's approver approved it already (dup
// true) or all most places are taken.
func (db *DB) AddVote(ctx context.Context, id string, v standin.Vote, most int) (k int, dup bool, err error) {
	voter := id + "/voter/" + v.By.ID
	ok, err := db.putMark(ctx, markDoc{ID: voter, ByID: v.By.ID, At: v.At})
	if err != nil || !ok {
		return 0, !ok && err == nil, err
	}
	for k = 1; k <= most; k++ {
		ok, err := db.putMark(ctx, markDoc{ID: fmt.Sprintf("%s/vote/%d", id, k), ByID: v.By.ID, ByName: v.By.Name, Note: v.Note, At: v.At})
		if err != nil {
			_ = db.dropMark(context.WithoutCancel(ctx), voter)
			return 0, false, err
		}
		if ok {
			return k, false, nil
		}
	}
	return 0, false, db.dropMark(context.WithoutCancel(ctx), voter)
}

// DropVote undoes the k-th vote of request id, by userID.
func (db *DB) DropVote(ctx context.Context, id string, k int, userID string) error {
	if err := db.dropMark(ctx, fmt.Sprintf("%s/vote/%d", id, k)); err != nil {
		return err
	}
	return db.dropMark(ctx, id+"/voter/"+userID)
}

// SetOutcome decides request id: true when this outcome is the one, false
// when another was decided first.
func (db *DB) SetOutcome(ctx context.Context, id string, o standin.Outcome) (bool, error) {
	return db.putMark(ctx, markDoc{ID: id + "/outcome", Status: o.Status, ByID: o.By.ID, ByName: o.By.Name, Note: o.Note, At: o.At})
}

// MarkOutcomeAudited records that request id's outcome is in the audit
// log.
func (db *DB) MarkOutcomeAudited(ctx context.Context, id string) error {
	_, err := db.db.Collection(colRequestMarks).UpdateOne(ctx, bson.M{"_id": id + "/outcome"}, bson.M{"$set": bson.M{"audited": true}})
	return translate(err, "mark request outcome audited")
}

// DropOutcome undoes an outcome whose audit event could not be written.
func (db *DB) DropOutcome(ctx context.Context, id string) error {
	return db.dropMark(ctx, id+"/outcome")
}

// ClaimStart takes request id's one start: true for exactly one caller.
func (db *DB) ClaimStart(ctx context.Context, id string, at time.Time) (bool, error) {
	return db.putMark(ctx, markDoc{ID: id + "/start", At: at})
}

// DropStart gives back a start that failed, so that it can be tried again.
func (db *DB) DropStart(ctx context.Context, id string) error { return db.dropMark(ctx, id+"/start") }

// MarkUnused records, once, that request id was approved and not
// started in time: true for exactly one caller.
func (db *DB) MarkUnused(ctx context.Context, id string, at time.Time) (bool, error) {
	return db.putMark(ctx, markDoc{ID: id + "/unused", At: at})
}

// DropUnused undoes MarkUnused whose event could not be written.
func (db *DB) DropUnused(ctx context.Context, id string) error { return db.dropMark(ctx, id+"/unused") }

// SettleRequest removes a decided request from the pending ones.
func (db *DB) SettleRequest(ctx context.Context, id string) error {
	oid, err := objectID(id, "request")
	if err != nil {
		return err
	}
	_, err = db.db.Collection(colPending).DeleteOne(ctx, bson.M{"_id": oid})
	return translate(err, "settle request")
}

// PendingRequests lists the requests not yet settled, oldest first, with
// their votes and outcomes (one that is decided but not yet settled has
// its outcome).
func (db *DB) PendingRequests(ctx context.Context) ([]*standin.AccessRequest, error) {
	cur, err := db.db.Collection(colPending).Find(ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, translate(err, "list pending requests")
	}
	var docs []requestDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list pending requests")
	}
	out := make([]*standin.AccessRequest, 0, len(docs))
	for i := range docs {
		r := docs[i].domain()
		if err := db.readMarks(ctx, r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

type grantDoc struct {
	UserID    string    `bson:"_id"`
	GrantID   string    `bson:"grant_id"`
	UserName  string    `bson:"user_name"`
	CreatedAt time.Time `bson:"created_at"`
	ExpiresAt time.Time `bson:"expires_at"`
	// Audited is set once the grant's event is in the audit log; until
	// then the grant does not count.
	Audited bool `bson:"audited"`
}

// PutGrant stores g as its user's consent grant, in place of any other,
// and sets g.ID unless it is set (a grant put back as it was).
func (db *DB) PutGrant(ctx context.Context, g *standin.ConsentGrant) error {
	if g.ID == "" {
		g.ID = bson.NewObjectID().Hex()
	}
	d := grantDoc{UserID: g.UserID, GrantID: g.ID, UserName: g.UserName, CreatedAt: g.CreatedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC()}
	_, err := db.db.Collection(colGrants).ReplaceOne(ctx, bson.M{"_id": d.UserID}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return translate(err, "store consent grant")
	}
	return nil
}

// MarkGrantAudited makes userID's grant grantID count, its event being in
// the audit log.
func (db *DB) MarkGrantAudited(ctx context.Context, userID, grantID string) error {
	_, err := db.db.Collection(colGrants).UpdateOne(ctx, bson.M{"_id": userID, "grant_id": grantID}, bson.M{"$set": bson.M{"audited": true}})
	return translate(err, "mark consent grant audited")
}

// GrantOf returns userID's consent grant, or nil when there is none or it
// is not audited (expired ones included: the caller judges expiry).
func (db *DB) GrantOf(ctx context.Context, userID string) (*standin.ConsentGrant, error) {
	var d grantDoc
	err := db.db.Collection(colGrants).FindOne(ctx, bson.M{"_id": userID}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments) || err == nil && !d.Audited:
		return nil, nil
	case err != nil:
		return nil, translate(err, "read consent grant")
	}
	return &standin.ConsentGrant{ID: d.GrantID, UserID: d.UserID, UserName: d.UserName, CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()}, nil
}

// RemoveGrant removes userID's grant if it is still grantID, and reports
// whether it did.
func (db *DB) RemoveGrant(ctx context.Context, userID, grantID string) (bool, error) {
	res, err := db.db.Collection(colGrants).DeleteOne(ctx, bson.M{"_id": userID, "grant_id": grantID})
	if err != nil {
		return false, translate(err, "remove consent grant")
	}
	return res.DeletedCount > 0, nil
}

type settingsDoc struct {
	ID             string        `bson:"_id"`
	Version        int64         `bson:"version"`
	Rules          []modeRuleDoc `bson:"rules"`
	RequestMinutes int           `bson:"request_minutes"`
	GraceSeconds   int           `bson:"grace_seconds"`
	Unmasked       []string      `bson:"unmasked,omitempty"`
	ChangedAt      time.Time     `bson:"changed_at"`
	ChangedByID    string        `bson:"changed_by_id"`
	ChangedByName  string        `bson:"changed_by_name"`
}

type modeRuleDoc struct {
	Scope     string `bson:"scope"`
	Mode      string `bson:"mode"`
	Approvals int    `bson:"approvals,omitempty"`
}

const settingsPrefix = "impersonation/"

func settingsID(version int64) string { return fmt.Sprintf("%s%012d", settingsPrefix, version) }

// ImpersonationSettings returns the newest version of the impersonation
// settings, or the defaults (version 0) when they were never changed.
func (db *DB) ImpersonationSettings(ctx context.Context) (*standin.ImpersonationSettings, error) {
	var d settingsDoc
	err := db.db.Collection(colSettings).FindOne(ctx, bson.M{"_id": bson.M{"$gte": settingsPrefix, "$lt": strings.TrimSuffix(settingsPrefix, "/") + "0"}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return standin.DefaultImpersonationSettings(), nil
	case err != nil:
		return nil, translate(err, "read impersonation settings")
	}
	s := &standin.ImpersonationSettings{Version: d.Version, RequestMinutes: d.RequestMinutes, GraceSeconds: d.GraceSeconds, Unmasked: d.Unmasked,
		ChangedAt: d.ChangedAt.UTC(), ChangedBy: standin.EventUser{ID: d.ChangedByID, Name: d.ChangedByName}}
	for _, r := range d.Rules {
		s.Rules = append(s.Rules, standin.ModeRule{Scope: r.Scope, Mode: standin.Mode(r.Mode), Approvals: r.Approvals})
	}
	return s, nil
}

// SaveImpersonationSettings stores s as the next version after
// s.Version-1.
//
// Errors: EConflict when that version exists: someone else changed the
// settings since s's author read them.
func (db *DB) SaveImpersonationSettings(ctx context.Context, s *standin.ImpersonationSettings) error {
	d := settingsDoc{ID: settingsID(s.Version), Version: s.Version, Rules: []modeRuleDoc{}, RequestMinutes: s.RequestMinutes,
		GraceSeconds: s.GraceSeconds, Unmasked: s.Unmasked, ChangedAt: s.ChangedAt.UTC(), ChangedByID: s.ChangedBy.ID, ChangedByName: s.ChangedBy.Name}
	for _, r := range s.Rules {
		d.Rules = append(d.Rules, modeRuleDoc{Scope: r.Scope, Mode: string(r.Mode), Approvals: r.Approvals})
	}
	_, err := db.db.Collection(colSettings).InsertOne(ctx, d)
	if mongo.IsDuplicateKeyError(err) {
		return standin.Errorf(standin.EConflict, "Someone changed the impersonation settings meanwhile; load them again and redo the change.")
	}
	return translate(err, "save impersonation settings")
}

// RemoveImpersonationSettings removes a version whose audit event could
// not be written.
func (db *DB) RemoveImpersonationSettings(ctx context.Context, version int64) error {
	_, err := db.db.Collection(colSettings).DeleteOne(ctx, bson.M{"_id": settingsID(version)})
	return translate(err, "undo impersonation settings")
}
