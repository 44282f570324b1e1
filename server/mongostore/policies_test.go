package mongostore_test

import (
	"context"
	"slices"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/authz"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
)

// policyCollection is where the policies have always been stored; existing
// databases depend on its name and document shape.
const policyCollection = "policies"

// storedPolicyDoc is the shape of one stored rule.
type storedPolicyDoc struct {
	ID    string   `bson:"_id"`
	PType string   `bson:"ptype"`
	Rule  []string `bson:"rule"`
}

// rbacModel is a plain Casbin model of role-based access with domains, the
// shape of the rules the console stores.
const rbacModel = `
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.obj == p.obj && r.act == p.act && (p.dom == "*" || p.dom == r.dom) && g(r.sub, p.sub, r.dom)
`

// storedRules returns the rule documents in the collection, as Casbin rows
// with their ptype first, sorted, and checks that each document's id is
// the readable form of its rule.
func storedRules(t *testing.T, db *mongostore.DB) [][]string {
	t.Helper()
	cur, err := dbtest.MustDriver(t, db).Collection(policyCollection).Find(context.Background(),
		bson.D{{Key: "ptype", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		t.Fatal(err)
	}
	var docs []storedPolicyDoc
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, d := range docs {
		row := append([]string{d.PType}, d.Rule...)
		if want := readableID(row); d.ID != want {
			t.Errorf("document %q holds rule %v, whose id is %q", d.ID, d.Rule, want)
		}
		out = append(out, row)
	}
	slices.SortFunc(out, slices.Compare)
	return out
}

// readableID is the id a rule's document has: its fields joined by commas,
// with '%' and ',' escaped.
func readableID(row []string) string {
	id := ""
	for i, f := range row {
		if i > 0 {
			id += ","
		}
		for _, c := range f {
			switch c {
			case '%':
				id += "%25"
			case ',':
				id += "%2C"
			default:
				id += string(c)
			}
		}
	}
	return id
}

// rule is a policy's fields: role, domain, object, action.
type rule []string

func rows(rs ...rule) [][]string {
	var out [][]string
	for _, r := range rs {
		out = append(out, append([]string{"p"}, r...))
	}
	slices.SortFunc(out, slices.Compare)
	return out
}

func TestAdapter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a1 := rule{authz.RoleUser, authz.GlobalDomain, "report", "read"}
	a2 := rule{authz.RoleSupport, authz.GlobalDomain, "report", "list"}
	a3 := rule{authz.RoleAdmin, "NEURO", "booking", "cancel"}
	odd := rule{authz.RoleUser, "a,b%2C", "x,y", "z%"}

	t.Run("SavePolicyReplacesContent", func(t *testing.T) {
		t.Parallel()
		db := mustOpen(t)
		ad := authz.NewAdapter(db)
		if err := ad.AddPolicies("p", "p", [][]string{a1, a2}); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkDefaultPoliciesSeeded(ctx); err != nil {
			t.Fatal(err)
		}
		// An index proves the collection survives: dropping it would drop
		// the index too.
		col := dbtest.MustDriver(t, db).Collection(policyCollection)
		if _, err := col.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "ptype", Value: 1}}}); err != nil {
			t.Fatal(err)
		}

		m := mustModel(t, a2, a3)
		if err := ad.SavePolicy(m); err != nil {
			t.Fatal(err)
		}
		if got, want := storedRules(t, db), rows(a2, a3); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("after SavePolicy stored %v, want %v", got, want)
		}
		if n := indexCount(t, col); n != 2 {
			t.Errorf("the collection has %d indexes after SavePolicy, want 2 (it was dropped)", n)
		}
		if seeded, err := db.DefaultPoliciesSeeded(ctx); err != nil || !seeded {
			t.Errorf("SavePolicy removed the seed marker (seeded %v, %v)", seeded, err)
		}

		if err := ad.SavePolicy(mustModel(t)); err != nil {
			t.Fatal(err)
		}
		if got := storedRules(t, db); len(got) != 0 {
			t.Errorf("saving an empty model left %v", got)
		}
	})

	t.Run("AddRemoveLoad", func(t *testing.T) {
		t.Parallel()
		db := mustOpen(t)
		ad := authz.NewAdapter(db)
		for range 2 {
			if err := ad.AddPolicy("p", "p", odd); err != nil {
				t.Fatal(err)
			}
		}
		if err := ad.AddPolicies("p", "p", [][]string{a1, a2, a3, a1}); err != nil {
			t.Fatal(err)
		}
		// Grouping rules come from users and are never stored.
		if err := ad.AddPolicy("g", "g", []string{"user:ada", authz.RoleAdmin, authz.GlobalDomain}); err != nil {
			t.Fatal(err)
		}
		if got, want := storedRules(t, db), rows(a1, a2, a3, odd); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("stored %v, want %v", got, want)
		}

		m := mustModel(t)
		if err := ad.LoadPolicy(m); err != nil {
			t.Fatal(err)
		}
		if got := m["p"]["p"].Policy; len(got) != 4 || !slices.ContainsFunc(got, func(r []string) bool { return slices.Equal(r, odd) }) {
			t.Fatalf("loaded %v", got)
		}

		if err := ad.RemovePolicy("p", "p", odd); err != nil {
			t.Fatal(err)
		}
		if err := ad.RemovePolicy("p", "p", odd); err != nil {
			t.Fatalf("removing a missing rule: %v", err)
		}
		if err := ad.RemoveFilteredPolicy("p", "p", 2, "report"); err != nil {
			t.Fatal(err)
		}
		if got, want := storedRules(t, db), rows(a3); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("after removals stored %v, want %v", got, want)
		}
		if err := ad.RemoveFilteredPolicy("p", "p", 0, "", "NEURO"); err != nil {
			t.Fatal(err)
		}
		if got := storedRules(t, db); len(got) != 0 {
			t.Fatalf("after a filtered removal with a blank field stored %v", got)
		}
	})

	t.Run("ErrBadDocument", func(t *testing.T) {
		t.Parallel()
		db := mustOpen(t)
		bad := []storedPolicyDoc{
			{ID: "short", PType: "p", Rule: []string{authz.RoleUser, authz.GlobalDomain, "x"}},
			{ID: "unknown", PType: "p9", Rule: a1},
			{ID: "untyped", PType: "", Rule: a1},
		}
		for _, d := range bad {
			col := dbtest.MustDriver(t, db).Collection(policyCollection)
			if _, err := col.InsertOne(ctx, d); err != nil {
				t.Fatal(err)
			}
			if err := authz.NewAdapter(db).LoadPolicy(mustModel(t)); authz.KindOf(err) != authz.Invalid {
				t.Errorf("%s: LoadPolicy = %v, want %s", d.ID, err, authz.Invalid)
			}
			if _, err := col.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}}); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("CasbinEnforcer", func(t *testing.T) {
		t.Parallel()
		db := mustOpen(t)
		ad := authz.NewAdapter(db)
		if err := ad.AddPolicy("p", "p", a1); err != nil {
			t.Fatal(err)
		}
		e, err := casbin.NewEnforcer(mustModel(t), ad)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := e.GetPolicy(); len(got) != 1 || !slices.Equal(got[0], a1) {
			t.Fatalf("the enforcer loaded %v", got)
		}
		if _, err := e.AddPolicy([]string(a2)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.AddGroupingPolicy("user:ada", authz.RoleSupport, authz.GlobalDomain); err != nil {
			t.Fatal(err)
		}
		if ok, err := e.Enforce("user:ada", authz.GlobalDomain, "report", "list"); err != nil || !ok {
			t.Fatalf("Enforce = %v, %v", ok, err)
		}
		if got, want := storedRules(t, db), rows(a1, a2); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("auto-saved %v, want %v", got, want)
		}
		if _, err := e.RemovePolicy([]string(a1)); err != nil {
			t.Fatal(err)
		}
		if err := e.SavePolicy(); err != nil {
			t.Fatal(err)
		}
		if got, want := storedRules(t, db), rows(a2); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("after SavePolicy stored %v, want %v", got, want)
		}
	})
}

// TestRuleID checks that rules which would share an id if their fields
// were joined naively are stored apart, and that ids stay readable.
func TestRuleID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)
	tests := []struct {
		a, b []string
	}{
		{[]string{"p", "a,b", "c"}, []string{"p", "a", "b,c"}},
		{[]string{"p", "a%2Cb"}, []string{"p", "a,b"}},
		{[]string{"p", "a", ""}, []string{"p", "a"}},
	}
	for _, tt := range tests {
		if err := db.AddPolicyRules(ctx, [][]string{tt.a, tt.b}); err != nil {
			t.Fatal(err)
		}
		got := storedRules(t, db)
		if !slices.ContainsFunc(got, func(r []string) bool { return slices.Equal(r, tt.a) }) ||
			!slices.ContainsFunc(got, func(r []string) bool { return slices.Equal(r, tt.b) }) {
			t.Errorf("%v and %v are not both stored: %v", tt.a, tt.b, got)
		}
		if err := db.RemovePolicyRules(ctx, [][]string{tt.a, tt.b}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddPolicyRules(ctx, [][]string{{"p", authz.RoleUser, authz.GlobalDomain, "profile", "read"}}); err != nil {
		t.Fatal(err)
	}
	n, err := dbtest.MustDriver(t, db).Collection(policyCollection).CountDocuments(ctx, bson.D{{Key: "_id", Value: "p,role:user,*,profile,read"}})
	if err != nil || n != 1 {
		t.Errorf("no document with the readable id (%d, %v)", n, err)
	}
}

// TestPolicyStore checks the store's own promises: markers are no rules,
// and writes are idempotent.
func TestPolicyStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t)
	r := []string{"p", authz.RoleUser, authz.GlobalDomain, "profile", "read"}

	t.Run("OK", func(t *testing.T) {
		if seeded, err := db.DefaultPoliciesSeeded(ctx); err != nil || seeded {
			t.Fatalf("a new database is seeded (%v, %v)", seeded, err)
		}
		for range 2 {
			if err := db.MarkDefaultPoliciesSeeded(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if seeded, err := db.DefaultPoliciesSeeded(ctx); err != nil || !seeded {
			t.Fatalf("the marker is not seen (%v, %v)", seeded, err)
		}
		if got, err := db.PolicyRules(ctx); err != nil || len(got) != 0 {
			t.Fatalf("the marker is listed as a rule: %v, %v", got, err)
		}
		done := make(chan error, 4)
		for range 4 {
			go func() { done <- db.AddPolicyRules(ctx, [][]string{r}) }()
		}
		for range 4 {
			if err := <-done; err != nil {
				t.Fatalf("concurrent writes of one rule: %v", err)
			}
		}
		if got, err := db.PolicyRules(ctx); err != nil || len(got) != 1 || !slices.Equal(got[0], r) {
			t.Fatalf("after concurrent writes the rules are %v, %v", got, err)
		}
		if err := db.RemovePolicyRules(ctx, [][]string{r, r}); err != nil {
			t.Fatal(err)
		}
		if err := db.RemovePolicyRules(ctx, [][]string{r}); err != nil {
			t.Fatalf("removing a missing rule: %v", err)
		}
	})

	t.Run("ErrUnavailable", func(t *testing.T) {
		closed, err := mongostore.Open(ctx, dbtest.MustServer(t).URI, db.Name(), mongostore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := closed.Close(ctx); err != nil {
			t.Fatal(err)
		}
		calls := map[string]error{
			"PolicyRules":       func() error { _, err := closed.PolicyRules(ctx); return err }(),
			"AddPolicyRules":    closed.AddPolicyRules(ctx, [][]string{r}),
			"RemovePolicyRules": closed.RemovePolicyRules(ctx, [][]string{r}),
			"Seeded":            func() error { _, err := closed.DefaultPoliciesSeeded(ctx); return err }(),
			"MarkSeeded":        closed.MarkDefaultPoliciesSeeded(ctx),
		}
		for name, err := range calls {
			if standin.ErrorCode(err) != standin.EUnavailable {
				t.Errorf("%s on a closed connection = %v, want %s", name, err, standin.EUnavailable)
			}
		}
	})
}

// mustModel returns the plain RBAC-with-domains model holding rs.
func mustModel(t *testing.T, rs ...rule) model.Model {
	t.Helper()
	m, err := model.NewModelFromString(rbacModel)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := m.AddPolicy("p", "p", r); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func indexCount(t *testing.T, col *mongo.Collection) int {
	t.Helper()
	specs, err := col.Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(specs)
}
