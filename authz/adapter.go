package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"standin/server/dbfault"
	"standin/server/standin"
)

// PolicyCollection is the collection that holds policy rules.
const PolicyCollection = "policies"

// seedMarkerID is the _id of the document recording that the default
// policies were written once. It has no ptype, so it is never a rule.
const seedMarkerID = "seeded:defaults"

// defaultAdapterTimeout bounds each storage call made through the
// context-free persist.Adapter methods.
const defaultAdapterTimeout = 10 * time.Second

// Adapter keeps Casbin policy rules (the p section) in a MongoDB
// collection, one document per rule. It implements persist.Adapter,
// persist.ContextAdapter and persist.BatchAdapter, so a plain Casbin
// enforcer can use it too.
//
// A document's _id is derived from the rule itself, so writing a rule twice
// leaves one document, on MongoDB and FerretDB alike, without transactions
// or extra indexes. Grouping rules (the g section) are never stored: they
// are derived from the users, which are their single source of truth, so
// the adapter ignores them on every write.
//
// Errors are coded: EUnavailable when the database cannot be reached or
// times out, EInvalid for a stored document Casbin's model cannot hold, and
// an uncoded (internal) error for anything else.
type Adapter struct {
	col     *mongo.Collection
	timeout time.Duration
}

var (
	_ persist.Adapter        = (*Adapter)(nil)
	_ persist.ContextAdapter = (*Adapter)(nil)
	_ persist.BatchAdapter   = (*Adapter)(nil)
)

// NewAdapter returns an adapter over db's PolicyCollection.
func NewAdapter(db *mongo.Database) *Adapter {
	return &Adapter{col: db.Collection(PolicyCollection), timeout: defaultAdapterTimeout}
}

// policyDoc is one stored rule.
type policyDoc struct {
	ID    string   `bson:"_id"`
	PType string   `bson:"ptype"`
	Rule  []string `bson:"rule"`
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

// stored reports whether rules of sec are kept by the adapter.
func stored(sec string) bool { return sec == "p" }

// isRule selects rule documents, leaving markers alone.
var isRule = bson.D{{Key: "ptype", Value: bson.D{{Key: "$exists", Value: true}}}}

// LoadPolicyCtx loads every stored rule into m. A rule whose type m does
// not define, or whose length does not fit it, is an EInvalid error: an
// enforcer holding it would fail on every decision.
func (a *Adapter) LoadPolicyCtx(ctx context.Context, m model.Model) error {
	cur, err := a.col.Find(ctx, isRule)
	if err != nil {
		return storageError(err, "load policies")
	}
	var docs []policyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return storageError(err, "load policies")
	}
	for _, d := range docs {
		if d.PType == "" {
			return standin.Errorf(standin.EInvalid, "The stored policy %q has no type.", d.ID)
		}
		sec := d.PType[:1]
		if !stored(sec) {
			continue
		}
		ast, ok := m[sec][d.PType]
		if !ok {
			return standin.Errorf(standin.EInvalid, "The stored policy %q has type %q, which the model does not define.", d.ID, d.PType)
		}
		if len(d.Rule) != len(ast.Tokens) {
			return standin.Errorf(standin.EInvalid, "The stored policy %q has %d fields; its type has %d.", d.ID, len(d.Rule), len(ast.Tokens))
		}
		if err := persist.LoadPolicyArray(append([]string{d.PType}, d.Rule...), m); err != nil {
			return fmt.Errorf("load policy %q: %w", d.ID, err)
		}
	}
	return nil
}

// SavePolicyCtx replaces the stored rules with those of m. It never drops
// the collection: it first writes every rule of m (idempotently, by id),
// then deletes the stored rules m does not hold. A failure half-way leaves
// the old and new rules together, never an empty collection.
func (a *Adapter) SavePolicyCtx(ctx context.Context, m model.Model) error {
	var docs []policyDoc
	ids := bson.A{}
	for ptype, ast := range m["p"] {
		for _, rule := range ast.Policy {
			d := policyDoc{ID: ruleID(ptype, rule), PType: ptype, Rule: rule}
			docs = append(docs, d)
			ids = append(ids, d.ID)
		}
	}
	if err := a.upsert(ctx, docs); err != nil {
		return err
	}
	filter := append(bson.D{{Key: "_id", Value: bson.D{{Key: "$nin", Value: ids}}}}, isRule...)
	if _, err := a.col.DeleteMany(ctx, filter); err != nil {
		return storageError(err, "delete replaced policies")
	}
	return nil
}

// AddPolicyCtx stores one rule. Storing a rule already there is not an
// error.
func (a *Adapter) AddPolicyCtx(ctx context.Context, sec, ptype string, rule []string) error {
	return a.AddPoliciesCtx(ctx, sec, ptype, [][]string{rule})
}

// AddPoliciesCtx stores rules. Storing rules already there is not an error.
func (a *Adapter) AddPoliciesCtx(ctx context.Context, sec, ptype string, rules [][]string) error {
	if !stored(sec) || len(rules) == 0 {
		return nil
	}
	docs := make([]policyDoc, 0, len(rules))
	for _, r := range rules {
		docs = append(docs, policyDoc{ID: ruleID(ptype, r), PType: ptype, Rule: r})
	}
	return a.upsert(ctx, docs)
}

// upsert writes docs by id in one round trip. Two writers racing to create
// the same id can make one of them fail with a duplicate key (FerretDB does
// not lock an upsert); the document exists either way, which is all an
// idempotent write promises.
func (a *Adapter) upsert(ctx context.Context, docs []policyDoc) error {
	if len(docs) == 0 {
		return nil
	}
	writes := make([]mongo.WriteModel, 0, len(docs))
	for _, d := range docs {
		writes = append(writes, mongo.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "_id", Value: d.ID}}).
			SetReplacement(d).
			SetUpsert(true))
	}
	_, err := a.col.BulkWrite(ctx, writes, options.BulkWrite().SetOrdered(false))
	if err != nil && !onlyDuplicateKeys(err) {
		return storageError(err, "store policies")
	}
	return nil
}

// RemovePolicyCtx deletes one rule. Deleting a rule that is not stored is
// not an error.
func (a *Adapter) RemovePolicyCtx(ctx context.Context, sec, ptype string, rule []string) error {
	return a.RemovePoliciesCtx(ctx, sec, ptype, [][]string{rule})
}

// RemovePoliciesCtx deletes rules.
func (a *Adapter) RemovePoliciesCtx(ctx context.Context, sec, ptype string, rules [][]string) error {
	if !stored(sec) || len(rules) == 0 {
		return nil
	}
	ids := make(bson.A, 0, len(rules))
	for _, r := range rules {
		ids = append(ids, ruleID(ptype, r))
	}
	_, err := a.col.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return storageError(err, "delete policies")
	}
	return nil
}

// RemoveFilteredPolicyCtx deletes the rules of ptype whose fields, from
// fieldIndex on, equal fieldValues; an empty value matches anything, as in
// Casbin.
func (a *Adapter) RemoveFilteredPolicyCtx(ctx context.Context, sec, ptype string, fieldIndex int, fieldValues ...string) error {
	if !stored(sec) {
		return nil
	}
	// The collection is small; matching in Go avoids relying on array
	// index paths in filters, which database engines support unevenly.
	cur, err := a.col.Find(ctx, bson.D{{Key: "ptype", Value: ptype}})
	if err != nil {
		return storageError(err, "find policies to delete")
	}
	var docs []policyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return storageError(err, "find policies to delete")
	}
	ids := bson.A{}
	for _, d := range docs {
		if matchesFilter(d.Rule, fieldIndex, fieldValues) {
			ids = append(ids, d.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := a.col.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return storageError(err, "delete policies")
	}
	return nil
}

func matchesFilter(rule []string, fieldIndex int, values []string) bool {
	if fieldIndex < 0 {
		return false
	}
	for i, v := range values {
		if v == "" {
			continue
		}
		j := fieldIndex + i
		if j >= len(rule) || rule[j] != v {
			return false
		}
	}
	return true
}

// LoadPolicy is LoadPolicyCtx bounded by the adapter's timeout.
func (a *Adapter) LoadPolicy(m model.Model) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.LoadPolicyCtx(ctx, m)
}

// SavePolicy is SavePolicyCtx bounded by the adapter's timeout.
func (a *Adapter) SavePolicy(m model.Model) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.SavePolicyCtx(ctx, m)
}

// AddPolicy is AddPolicyCtx bounded by the adapter's timeout.
func (a *Adapter) AddPolicy(sec, ptype string, rule []string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.AddPolicyCtx(ctx, sec, ptype, rule)
}

// AddPolicies is AddPoliciesCtx bounded by the adapter's timeout.
func (a *Adapter) AddPolicies(sec, ptype string, rules [][]string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.AddPoliciesCtx(ctx, sec, ptype, rules)
}

// RemovePolicy is RemovePolicyCtx bounded by the adapter's timeout.
func (a *Adapter) RemovePolicy(sec, ptype string, rule []string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.RemovePolicyCtx(ctx, sec, ptype, rule)
}

// RemovePolicies is RemovePoliciesCtx bounded by the adapter's timeout.
func (a *Adapter) RemovePolicies(sec, ptype string, rules [][]string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.RemovePoliciesCtx(ctx, sec, ptype, rules)
}

// RemoveFilteredPolicy is RemoveFilteredPolicyCtx bounded by the adapter's
// timeout.
func (a *Adapter) RemoveFilteredPolicy(sec, ptype string, fieldIndex int, fieldValues ...string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.RemoveFilteredPolicyCtx(ctx, sec, ptype, fieldIndex, fieldValues...)
}

func (a *Adapter) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.timeout)
}

// seeded reports whether the default policies were written before, or
// the collection already holds rules (then they are the installation's
// choice and are left alone).
func (a *Adapter) seeded(ctx context.Context) (bool, error) {
	n, err := a.col.CountDocuments(ctx, bson.D{{Key: "_id", Value: seedMarkerID}})
	if err != nil {
		return false, storageError(err, "look for the seed marker")
	}
	if n > 0 {
		return true, nil
	}
	n, err = a.col.CountDocuments(ctx, isRule, options.Count().SetLimit(1))
	if err != nil {
		return false, storageError(err, "count policies")
	}
	return n > 0, nil
}

// markSeeded records that the defaults were written, so that removing
// every policy later does not bring them back at the next start.
func (a *Adapter) markSeeded(ctx context.Context) error {
	_, err := a.col.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: seedMarkerID}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "at", Value: time.Now().UTC()}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return storageError(err, "record the seed marker")
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

// storageError turns a driver error into a coded domain error keeping the
// original as its cause; what names the operation for logs.
func storageError(err error, what string) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("%s: %w", what, err)
	switch {
	case errors.Is(err, context.Canceled):
		return wrapped
	case mongo.IsNetworkError(err), mongo.IsTimeout(err), errors.Is(err, mongo.ErrClientDisconnected),
		isServerSelection(err):
		return &standin.Error{Code: standin.EUnavailable,
			Message: "The database is unavailable. Try again shortly.", Cause: wrapped}
	case dbfault.WriteRefused(err):
		return &standin.Error{Code: standin.EUnavailable,
			Message: "The database cannot save changes right now (its disk may be full or read-only). Try again shortly.", Cause: wrapped}
	}
	return wrapped
}

func isServerSelection(err error) bool {
	var sse topology.ServerSelectionError
	return errors.As(err, &sse)
}
