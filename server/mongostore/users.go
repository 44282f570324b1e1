package mongostore

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/standin"
)

type userDoc struct {
	ID           bson.ObjectID    `bson:"_id"`
	Name         string           `bson:"name"`
	Email        string           `bson:"email"`
	PasswordHash string           `bson:"password_hash"`
	Role         string           `bson:"role"`
	Status       string           `bson:"status"`
	Memberships  []membershipDoc  `bson:"memberships"`
	Trainings    []trainingRecDoc `bson:"trainings"`
	Personal     personalDoc      `bson:"personal,omitempty"`
	CreatedAt    time.Time        `bson:"created_at"`
	UpdatedAt    time.Time        `bson:"updated_at"`
}

type membershipDoc struct {
	ProjectID bson.ObjectID `bson:"project_id"`
	Role      string        `bson:"role"`
}

type trainingRecDoc struct {
	TrainingID  bson.ObjectID `bson:"training_id"`
	CompletedAt time.Time     `bson:"completed_at"`
	ExpiresAt   *time.Time    `bson:"expires_at,omitempty"`
}

type personalDoc struct {
	Phone            string `bson:"phone,omitempty"`
	EmergencyContact string `bson:"emergency_contact,omitempty"`
	DateOfBirth      string `bson:"date_of_birth,omitempty"`
}

func (d *userDoc) domain() *standin.User {
	u := &standin.User{
		ID:           d.ID.Hex(),
		Name:         d.Name,
		Email:        d.Email,
		PasswordHash: d.PasswordHash,
		Role:         standin.Role(d.Role),
		Status:       standin.Status(d.Status),
		CreatedAt:    d.CreatedAt,
		UpdatedAt:    d.UpdatedAt,
		Personal:     standin.PersonalData(d.Personal),
	}
	for _, m := range d.Memberships {
		u.Memberships = append(u.Memberships, standin.Membership{ProjectID: m.ProjectID.Hex(), Role: standin.ProjectRole(m.Role)})
	}
	for _, t := range d.Trainings {
		rec := standin.TrainingRecord{TrainingID: t.TrainingID.Hex(), CompletedAt: t.CompletedAt}
		if t.ExpiresAt != nil {
			rec.ExpiresAt = *t.ExpiresAt
		}
		u.Trainings = append(u.Trainings, rec)
	}
	return u
}

func userToDoc(u *standin.User) (*userDoc, error) {
	d := &userDoc{
		Name:         u.Name,
		Email:        standin.NormalizeEmail(u.Email),
		PasswordHash: u.PasswordHash,
		Role:         string(u.Role),
		Status:       string(u.Status),
		Memberships:  []membershipDoc{},
		Personal:     personalDoc(u.Personal),
		CreatedAt:    u.CreatedAt,
		UpdatedAt:    u.UpdatedAt,
	}
	if u.ID != "" {
		id, err := objectID(u.ID, "user")
		if err != nil {
			return nil, err
		}
		d.ID = id
	}
	for _, m := range u.Memberships {
		pid, err := objectID(m.ProjectID, "project")
		if err != nil {
			return nil, err
		}
		d.Memberships = append(d.Memberships, membershipDoc{ProjectID: pid, Role: string(m.Role)})
	}
	trainings, err := trainingDocs(u.Trainings)
	if err != nil {
		return nil, err
	}
	d.Trainings = trainings
	return d, nil
}

func trainingDocs(recs []standin.TrainingRecord) ([]trainingRecDoc, error) {
	docs := make([]trainingRecDoc, 0, len(recs))
	for _, t := range recs {
		tid, err := objectID(t.TrainingID, "training")
		if err != nil {
			return nil, err
		}
		rec := trainingRecDoc{TrainingID: tid, CompletedAt: t.CompletedAt}
		if !t.ExpiresAt.IsZero() {
			exp := t.ExpiresAt
			rec.ExpiresAt = &exp
		}
		docs = append(docs, rec)
	}
	return docs, nil
}

// UserByID returns the user with the given id, or an ENotFound error.
func (db *DB) UserByID(ctx context.Context, id string) (*standin.User, error) {
	var d userDoc
	if err := db.findByID(ctx, colUsers, "user", id, nil, &d); err != nil {
		return nil, err
	}
	return d.domain(), nil
}

// UserByEmail returns the user with the given address (compared after
// standin.NormalizeEmail), or an ENotFound error.
func (db *DB) UserByEmail(ctx context.Context, email string) (*standin.User, error) {
	var d userDoc
	err := db.db.Collection(colUsers).FindOne(ctx, bson.M{"email": standin.NormalizeEmail(email)}).Decode(&d)
	if err != nil {
		return nil, translate(err, "find user by email")
	}
	return d.domain(), nil
}

// CountUsers returns how many accounts exist.
func (db *DB) CountUsers(ctx context.Context) (int64, error) {
	n, err := db.db.Collection(colUsers).CountDocuments(ctx, bson.M{})
	if err != nil {
		return 0, translate(err, "count users")
	}
	return n, nil
}

// EnsureUser creates u unless an account with its email exists, and sets
// u.ID to the stored account's id either way. An existing account is left
// untouched, so running it twice changes nothing.
func (db *DB) EnsureUser(ctx context.Context, u *standin.User) error {
	now := time.Now().UTC()
	if u.CreatedAt.IsZero() {
		u.CreatedAt, u.UpdatedAt = now, now
	}
	d, err := userToDoc(u)
	if err != nil {
		return err
	}
	d.ID = bson.NewObjectID()
	id, err := db.ensure(ctx, colUsers, bson.M{"email": d.Email}, d)
	if err != nil {
		return fmt.Errorf("ensure user %s: %w", d.Email, err)
	}
	u.ID = id
	return nil
}

// ensure inserts doc into col unless a document matches filter, and returns
// the id of the document that is there afterwards.
func (db *DB) ensure(ctx context.Context, col string, filter bson.M, doc any) (string, error) {
	var got struct {
		ID bson.ObjectID `bson:"_id"`
	}
	err := db.db.Collection(col).FindOneAndUpdate(ctx, filter, bson.M{"$setOnInsert": doc},
		// No projection: FerretDB's findAndModify does not implement one.
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&got)
	if err != nil {
		return "", translate(err, "upsert into "+col)
	}
	return got.ID.Hex(), nil
}

// AllUsers returns every account. Authorization loads its grouping rules
// from it at start-up.
func (db *DB) AllUsers(ctx context.Context) ([]*standin.User, error) {
	cur, err := db.db.Collection(colUsers).Find(ctx, bson.M{})
	if err != nil {
		return nil, translate(err, "list users")
	}
	var docs []userDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "list users")
	}
	out := make([]*standin.User, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	return out, nil
}

// SearchUsers lists accounts whose name or email contains q (any case),
// in order of name (accounts of one name in the order they were created),
// one page at a time.
func (db *DB) SearchUsers(ctx context.Context, q string, p standin.Page) ([]*standin.User, string, error) {
	limit := p.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	var conds bson.A
	if q = strings.TrimSpace(q); q != "" {
		pattern := bson.Regex{Pattern: regexp.QuoteMeta(q), Options: "i"}
		conds = append(conds, bson.M{"$or": bson.A{bson.M{"name": pattern}, bson.M{"email": pattern}}})
	}
	if p.Cursor != "" {
		name, id, err := decodeNameCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		conds = append(conds, bson.M{"$or": bson.A{bson.M{"name": bson.M{"$gt": name}}, bson.M{"name": name, "_id": bson.M{"$gt": id}}}})
	}
	filter := bson.M{}
	if len(conds) > 0 {
		filter["$and"] = conds
	}
	cur, err := db.db.Collection(colUsers).Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "name", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, "", translate(err, "list users")
	}
	var docs []userDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, "", translate(err, "list users")
	}
	next := ""
	if len(docs) > limit {
		docs = docs[:limit]
		next = encodeNameCursor(docs[limit-1].Name, docs[limit-1].ID)
	}
	out := make([]*standin.User, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].domain())
	}
	return out, next, nil
}

// encodeNameCursor is the cursor of a page in order of name that ended
// at the account id named name.
func encodeNameCursor(name string, id bson.ObjectID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id.Hex() + name))
}

func decodeNameCursor(cursor string) (string, bson.ObjectID, error) {
	bad := standin.Errorf(standin.EInvalid, "The cursor %q is not one this server gave out.", cursor)
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) < 24 {
		return "", bson.ObjectID{}, bad
	}
	id, err := bson.ObjectIDFromHex(string(raw[:24]))
	if err != nil {
		return "", bson.ObjectID{}, bad
	}
	return string(raw[24:]), id, nil
}

// UpdateUserName changes an account's display name.
func (db *DB) UpdateUserName(ctx context.Context, id, name string, at time.Time) (*standin.User, error) {
	return db.updateUser(ctx, id, bson.M{"name": name, "updated_at": at.UTC()})
}

// SetPasswordHash replaces an account's password hash.
func (db *DB) SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	_, err := db.updateUser(ctx, id, bson.M{"password_hash": hash, "updated_at": at.UTC()})
	return err
}

// SetUserStatus suspends or reactivates an account.
func (db *DB) SetUserStatus(ctx context.Context, id string, status standin.Status, at time.Time) (*standin.User, error) {
	return db.updateUser(ctx, id, bson.M{"status": string(status), "updated_at": at.UTC()})
}

// SetTrainings replaces an account's training records.
func (db *DB) SetTrainings(ctx context.Context, id string, recs []standin.TrainingRecord, at time.Time) (*standin.User, error) {
	docs, err := trainingDocs(recs)
	if err != nil {
		return nil, err
	}
	return db.updateUser(ctx, id, bson.M{"trainings": docs, "updated_at": at.UTC()})
}

func (db *DB) updateUser(ctx context.Context, id string, set bson.M) (*standin.User, error) {
	oid, err := objectID(id, "user")
	if err != nil {
		return nil, err
	}
	var d userDoc
	err = db.db.Collection(colUsers).FindOneAndUpdate(ctx, bson.M{"_id": oid}, bson.M{"$set": set},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if err != nil {
		return nil, translate(err, "update user "+id)
	}
	return d.domain(), nil
}
