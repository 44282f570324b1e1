package mongostore

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// colPolicies holds the authorization policy rules, one document per rule,
// and the marker saying the default policies were written once.
const colPolicies = "policies"

// policySeedMarker is the _id of the document recording that the default
// policies were written once. It has no ptype, so it is never a rule.
const policySeedMarker = "seeded:defaults"

// policyDoc is one stored rule: its policy type and its fields. The _id is
// derived from both (see ruleID), so writing a rule twice leaves one
// document, on MongoDB and FerretDB alike, without transactions or extra
// indexes.
type policyDoc struct {
	ID    string   `bson:"_id"`
	PType string   `bson:"ptype"`
	Rule  []string `bson:"rule"`
}

// policyDocOf returns the document of a rule given as its policy type
// followed by its fields.
func policyDocOf(row []string) policyDoc {
	d := policyDoc{Rule: []string{}}
	if len(row) > 0 {
		d.PType, d.Rule = row[0], row[1:]
	}
	d.ID = ruleID(d.PType, d.Rule)
	return d
}

// ruleID derives a document id from a rule: the ptype and the fields joined
// by commas, like a line of Casbin's CSV policy format, with '%' and ','
// escaped so that distinct rules never share an id. It stays readable for
// whoever inspects the collection.
func ruleID(ptype string, rule []string) string {
	var b strings.Builder
	b.WriteString(escapeField(ptype))
	for _, f := range rule {
		b.WriteByte(',')
		b.WriteString(escapeField(f))
	}
	return b.String()
}

var fieldEscaper = strings.NewReplacer("%", "%25", ",", "%2C")

func escapeField(s string) string { return fieldEscaper.Replace(s) }

// isRule selects rule documents, leaving markers alone.
var isRule = bson.D{{Key: "ptype", Value: bson.D{{Key: "$exists", Value: true}}}}

// PolicyRules returns every stored authorization rule as its policy type
// followed by its fields, in no particular order.
//
// Errors: EUnavailable when the database cannot be reached; an internal
// error for a document that is not a rule's shape.
func (db *DB) PolicyRules(ctx context.Context) ([][]string, error) {
	cur, err := db.db.Collection(colPolicies).Find(ctx, isRule)
	if err != nil {
		return nil, translate(err, "load policies")
	}
	var docs []policyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "load policies")
	}
	rows := make([][]string, 0, len(docs))
	for _, d := range docs {
		rows = append(rows, append([]string{d.PType}, d.Rule...))
	}
	return rows, nil
}

// AddPolicyRules stores authorization rules, each given as its policy type
// followed by its fields, in one round trip. A rule stored already stays
// stored once, and two writers storing one rule together both succeed.
//
// Errors: EUnavailable when the database cannot be reached or refuses
// writes.
func (db *DB) AddPolicyRules(ctx context.Context, rows [][]string) error {
	if len(rows) == 0 {
		return nil
	}
	writes := make([]mongo.WriteModel, 0, len(rows))
	for _, row := range rows {
		d := policyDocOf(row)
		writes = append(writes, mongo.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "_id", Value: d.ID}}).
			SetReplacement(d).
			SetUpsert(true))
	}
	// Two writers racing to create the same id can make one of them fail
	// with a duplicate key (FerretDB does not lock an upsert); the document
	// exists either way, which is all an idempotent write promises.
	_, err := db.db.Collection(colPolicies).BulkWrite(ctx, writes, options.BulkWrite().SetOrdered(false))
	if err != nil && !onlyDuplicateKeys(err) {
		return translate(err, "store policies")
	}
	return nil
}

// RemovePolicyRules deletes authorization rules, each given as its policy
// type followed by its fields. Deleting a rule that is not stored is not an
// error.
//
// Errors: EUnavailable when the database cannot be reached or refuses
// writes.
func (db *DB) RemovePolicyRules(ctx context.Context, rows [][]string) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make(bson.A, 0, len(rows))
	for _, row := range rows {
		ids = append(ids, policyDocOf(row).ID)
	}
	_, err := db.db.Collection(colPolicies).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	return translate(err, "delete policies")
}

// DefaultPoliciesSeeded reports whether MarkDefaultPoliciesSeeded was
// called before, by any process.
//
// Errors: EUnavailable when the database cannot be reached.
func (db *DB) DefaultPoliciesSeeded(ctx context.Context) (bool, error) {
	n, err := db.db.Collection(colPolicies).CountDocuments(ctx, bson.D{{Key: "_id", Value: policySeedMarker}})
	if err != nil {
		return false, translate(err, "look for the policy seed marker")
	}
	return n > 0, nil
}

// MarkDefaultPoliciesSeeded records that the default policies were
// written, so that removing every policy later does not bring them back.
// Marking twice is not an error.
//
// Errors: EUnavailable when the database cannot be reached or refuses
// writes.
func (db *DB) MarkDefaultPoliciesSeeded(ctx context.Context) error {
	_, err := db.db.Collection(colPolicies).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: policySeedMarker}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "at", Value: time.Now().UTC()}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return translate(err, "record the policy seed marker")
	}
	return nil
}

// PolicySetSeeded reports whether MarkPolicySetSeeded(name) was called
// before, by any process.
//
// Errors: EUnavailable when the database cannot be reached.
func (db *DB) PolicySetSeeded(ctx context.Context, name string) (bool, error) {
	n, err := db.db.Collection(colPolicies).CountDocuments(ctx, bson.D{{Key: "_id", Value: policySeedMarker + ":" + name}})
	if err != nil {
		return false, translate(err, "look for the seed marker of "+name)
	}
	return n > 0, nil
}

// MarkPolicySetSeeded records that the defaults added as set name were
// written. Marking twice is not an error.
//
// Errors: EUnavailable when the database cannot be reached or refuses
// writes.
func (db *DB) MarkPolicySetSeeded(ctx context.Context, name string) error {
	_, err := db.db.Collection(colPolicies).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: policySeedMarker + ":" + name}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "at", Value: time.Now().UTC()}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return translate(err, "record the seed marker of "+name)
	}
	return nil
}

// onlyDuplicateKeys reports whether err is a bulk write whose every
// failure is a duplicate key.
func onlyDuplicateKeys(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 && we.Code != 11001 && we.Code != 12582 {
			return false
		}
	}
	return true
}
