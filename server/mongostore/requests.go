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
//
// A request, a vote, an outcome and a settings version are each stored
// first and marked audited once their event is in the audit log; the
// flag is only ever set (an update that cannot make two winners), and
// what never got its event is removed (see the impersonation package).
const (
	// colRequests holds every request as it was made, _id its id.
	colRequests = "impersonation_requests"
	// colPending holds a copy of each request still waiting for its
	// answer, so that listing them reads a small collection.
	colPending = "pending_requests"
	// colRequestMarks holds the unique keys deciding a request's state:
	// "<id>/voter/<user>" and "<id>/vote/<k>" for the k-th approval
	// (audited once its event is written), "<id>/outcome" (audited
	// likewise), "<id>/start" and "<id>/unused".
	colRequestMarks = "request_marks"
	// colGrants holds each user's consent grant, _id the user's id.
	colGrants = "consent_grants"
	// colSettings holds every version of the impersonation settings,
	// _id "impersonation/<version>": a change is the insert of the next
	// version, which two changes at once cannot both make. A version is
	// in force once audited (versions stored before the flag existed
	// have none, and count as audited).
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
	// Audited is set once the request.created event is in the log; a
	// request stored before the flag existed has none and counts as
	// audited.
	Audited *bool `bson:"audited,omitempty"`
}

func requestDocOf(r *standin.AccessRequest, id bson.ObjectID) requestDoc {
	audited := r.Audited
	return requestDoc{ID: id, ActorID: r.ActorID, ActorName: r.ActorName, ActorEmail: r.ActorEmail,
		SubjectID: r.SubjectID, SubjectName: r.SubjectName, SubjectRole: string(r.SubjectRole), Projects: r.Projects,
		Reason: r.Reason, Ticket: r.Ticket, Minutes: r.Minutes, Mode: string(r.Mode), Approvals: r.Approvals,
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), Audited: &audited}
}

func (d *requestDoc) domain() *standin.AccessRequest {
	return &standin.AccessRequest{ID: d.ID.Hex(), ActorID: d.ActorID, ActorName: d.ActorName, ActorEmail: d.ActorEmail,
		SubjectID: d.SubjectID, SubjectName: d.SubjectName, SubjectRole: standin.Role(d.SubjectRole), Projects: d.Projects,
		Reason: d.Reason, Ticket: d.Ticket, Minutes: d.Minutes, Mode: standin.Mode(d.Mode), Approvals: d.Approvals,
		CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC(), Audited: d.Audited == nil || *d.Audited}
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
	// EventID is a vote's event (none on votes stored before votes were
	// audited).
	EventID string `bson:"event_id,omitempty"`
}

// CreateRequest stores a new pending request, audited as r.Audited says
// (false until its event is written: see MarkRequestAudited), and sets
// r.ID.
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

// MarkRequestAudited records that request id's request.created event is
// in the audit log.
func (db *DB) MarkRequestAudited(ctx context.Context, id string) error {
	oid, err := objectID(id, "request")
	if err != nil {
		return err
	}
	set := bson.M{"$set": bson.M{"audited": true}}
	if _, err := db.db.Collection(colRequests).UpdateOne(ctx, bson.M{"_id": oid}, set); err != nil {
		return translate(err, "mark request audited")
	}
	_, err = db.db.Collection(colPending).UpdateOne(ctx, bson.M{"_id": oid}, set)
	return translate(err, "mark request audited")
}

// DeleteRequest removes a request whose audit event could not be
// written. An audited request stays.
func (db *DB) DeleteRequest(ctx context.Context, id string) error {
	oid, err := objectID(id, "request")
	if err != nil {
		return err
	}
	unaudited := bson.M{"_id": oid, "audited": false}
	if _, err := db.db.Collection(colPending).DeleteOne(ctx, unaudited); err != nil {
		return translate(err, "remove request")
	}
	_, err = db.db.Collection(colRequests).DeleteOne(ctx, unaudited)
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
// its _id. Every place is read: a vote undone leaves a gap that a later
// one may fill.
func (db *DB) readMarks(ctx context.Context, r *standin.AccessRequest) error {
	m, err := db.mark(ctx, r.ID+"/outcome")
	if err != nil {
		return err
	}
	if m != nil {
		r.Outcome = &standin.Outcome{Status: m.Status, By: standin.EventUser{ID: m.ByID, Name: m.ByName}, At: m.At.UTC(), Note: m.Note, Audited: m.Audited}
	}
	for k := 1; k <= r.Needed(); k++ {
		m, err := db.mark(ctx, voteKey(r.ID, k))
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		// A vote stored before votes were audited has no event id: it
		// counted when its request was decided; while the request waits,
		// the sweep settles it by the log like any other.
		audited := m.Audited || m.EventID == "" && r.Outcome != nil
		r.Votes = append(r.Votes, standin.Vote{By: standin.EventUser{ID: m.ByID, Name: m.ByName}, At: m.At.UTC(), Note: m.Note,
			K: k, EventID: m.EventID, Audited: audited})
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

func voteKey(id string, k int) string { return fmt.Sprintf("%s/vote/%d", id, k) }

// AddVote records v, unaudited, as an approval of request id, the k-th
// (k from 1 to most). It returns k, or 0 when v's approver approved it
// already (dup true) or all most places are taken.
func (db *DB) AddVote(ctx context.Context, id string, v standin.Vote, most int) (k int, dup bool, err error) {
	voter := id + "/voter/" + v.By.ID
	ok, err := db.putMark(ctx, markDoc{ID: voter, ByID: v.By.ID, At: v.At})
	if err != nil || !ok {
		return 0, !ok && err == nil, err
	}
	for k = 1; k <= most; k++ {
		ok, err := db.putMark(ctx, markDoc{ID: voteKey(id, k), ByID: v.By.ID, ByName: v.By.Name, Note: v.Note, At: v.At, EventID: v.EventID})
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

// voteFilter selects vote v of request id while it is still v: a place
// undone and taken again holds another vote, which is not v's to mark
// or drop.
func voteFilter(id string, v standin.Vote) bson.M {
	f := bson.M{"_id": voteKey(id, v.K), "by_id": v.By.ID}
	if v.EventID != "" {
		f["event_id"] = v.EventID
	}
	return f
}

// MarkVoteAudited records that vote v of request id is in the audit
// log: from now on it counts.
func (db *DB) MarkVoteAudited(ctx context.Context, id string, v standin.Vote) error {
	_, err := db.db.Collection(colRequestMarks).UpdateOne(ctx, voteFilter(id, v), bson.M{"$set": bson.M{"audited": true}})
	return translate(err, "mark request vote audited")
}

// DropVote undoes vote v of request id, whose event was not written, so
// that its approver may approve again. An audited vote stays.
func (db *DB) DropVote(ctx context.Context, id string, v standin.Vote) error {
	f := voteFilter(id, v)
	f["audited"] = false
	res, err := db.db.Collection(colRequestMarks).DeleteOne(ctx, f)
	if err != nil {
		return translate(err, "undo request vote")
	}
	if res.DeletedCount == 0 {
		// Not v any more: its approver's mark belongs to what holds it.
		return nil
	}
	return db.dropMark(ctx, id+"/voter/"+v.By.ID)
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
	Alerts         alertRulesDoc `bson:"alerts"`
	ChangedAt      time.Time     `bson:"changed_at"`
	ChangedByID    string        `bson:"changed_by_id"`
	ChangedByName  string        `bson:"changed_by_name"`
	EventID        string        `bson:"event_id"`
	// Audited is set once the version's event is in the log; a version
	// stored before the flag existed has none and counts as audited.
	Audited *bool `bson:"audited,omitempty"`
}

func (d *settingsDoc) domain() *standin.ImpersonationSettings {
	s := &standin.ImpersonationSettings{Version: d.Version, RequestMinutes: d.RequestMinutes, GraceSeconds: d.GraceSeconds, Unmasked: d.Unmasked,
		ChangedAt: d.ChangedAt.UTC(), ChangedBy: standin.EventUser{ID: d.ChangedByID, Name: d.ChangedByName}, EventID: d.EventID}
	for _, r := range d.Rules {
		s.Rules = append(s.Rules, standin.ModeRule{Scope: r.Scope, Mode: standin.Mode(r.Mode), Approvals: r.Approvals})
	}
	s.Alerts = standin.AlertRules(d.Alerts).WithDefaults()
	return s
}

// alertRulesDoc is standin.AlertRules as stored; zero fields (a version
// stored before alerts) read as the defaults.
type alertRulesDoc struct {
	DayStart       int `bson:"day_start"`
	DayEnd         int `bson:"day_end"`
	Refusals       int `bson:"refusals"`
	RefusalMinutes int `bson:"refusal_minutes"`
	LongMinutes    int `bson:"long_minutes"`
	StartsPerHour  int `bson:"starts_per_hour"`
	RepeatsPerDay  int `bson:"repeats_per_day"`
}

type modeRuleDoc struct {
	Scope     string `bson:"scope"`
	Mode      string `bson:"mode"`
	Approvals int    `bson:"approvals,omitempty"`
}

const settingsPrefix = "impersonation/"

func settingsID(version int64) string { return fmt.Sprintf("%s%012d", settingsPrefix, version) }

// settingsVersions selects every version of the impersonation settings.
func settingsVersions() bson.M {
	return bson.M{"$gte": settingsPrefix, "$lt": strings.TrimSuffix(settingsPrefix, "/") + "0"}
}

// ImpersonationSettings returns the newest audited version of the
// impersonation settings, or the defaults (version 0) when they were
// never changed. A version whose event is not (yet) in the audit log is
// not in force.
func (db *DB) ImpersonationSettings(ctx context.Context) (*standin.ImpersonationSettings, error) {
	var d settingsDoc
	err := db.db.Collection(colSettings).FindOne(ctx, bson.M{"_id": settingsVersions(), "audited": bson.M{"$ne": false}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return standin.DefaultImpersonationSettings(), nil
	case err != nil:
		return nil, translate(err, "read impersonation settings")
	}
	return d.domain(), nil
}

// UnauditedSettings lists the versions of the impersonation settings not
// yet marked audited, oldest first.
func (db *DB) UnauditedSettings(ctx context.Context) ([]*standin.ImpersonationSettings, error) {
	cur, err := db.db.Collection(colSettings).Find(ctx, bson.M{"_id": settingsVersions(), "audited": false},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, translate(err, "list unaudited impersonation settings")
	}
	var docs []settingsDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list unaudited impersonation settings")
	}
	out := make([]*standin.ImpersonationSettings, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	return out, nil
}

// SaveImpersonationSettings stores s, unaudited (see
// MarkSettingsAudited), as the next version after s.Version-1.
//
// Errors: EConflict when that version exists: someone else changed the
// settings since s's author read them, or is changing them.
func (db *DB) SaveImpersonationSettings(ctx context.Context, s *standin.ImpersonationSettings) error {
	audited := false
	d := settingsDoc{ID: settingsID(s.Version), Version: s.Version, Rules: []modeRuleDoc{}, RequestMinutes: s.RequestMinutes,
		GraceSeconds: s.GraceSeconds, Unmasked: s.Unmasked, ChangedAt: s.ChangedAt.UTC(), ChangedByID: s.ChangedBy.ID, ChangedByName: s.ChangedBy.Name,
		EventID: s.EventID, Audited: &audited, Alerts: alertRulesDoc(s.Alerts)}
	for _, r := range s.Rules {
		d.Rules = append(d.Rules, modeRuleDoc{Scope: r.Scope, Mode: string(r.Mode), Approvals: r.Approvals})
	}
	_, err := db.db.Collection(colSettings).InsertOne(ctx, d)
	if mongo.IsDuplicateKeyError(err) {
		return standin.Errorf(standin.EConflict, "Someone changed the impersonation settings meanwhile, or is changing them; load them again in a moment and redo the change.")
	}
	return translate(err, "save impersonation settings")
}

// MarkSettingsAudited puts version s.Version of the impersonation
// settings in force, its event being in the audit log.
func (db *DB) MarkSettingsAudited(ctx context.Context, s *standin.ImpersonationSettings) error {
	_, err := db.db.Collection(colSettings).UpdateOne(ctx, settingsFilter(s), bson.M{"$set": bson.M{"audited": true}})
	return translate(err, "mark impersonation settings audited")
}

// RemoveImpersonationSettings removes version s.Version, unaudited, whose
// audit event was not written, so that the next change may take its
// number.
func (db *DB) RemoveImpersonationSettings(ctx context.Context, s *standin.ImpersonationSettings) error {
	_, err := db.db.Collection(colSettings).DeleteOne(ctx, settingsFilter(s))
	return translate(err, "undo impersonation settings")
}

// settingsFilter selects version s while it is still s, unaudited: once
// removed, its number may hold another change.
func settingsFilter(s *standin.ImpersonationSettings) bson.M {
	return bson.M{"_id": settingsID(s.Version), "event_id": s.EventID, "audited": false}
}
