package authz

import (
	"context"
	"slices"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/standin"
)

// storedRules returns the rules in the collection, as Casbin rows with
// their ptype first, sorted.
func storedRules(t *testing.T, db *mongo.Database) [][]string {
	t.Helper()
	cur, err := db.Collection(PolicyCollection).Find(context.Background(), isRule)
	if err != nil {
		t.Fatal(err)
	}
	var docs []policyDoc
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, d := range docs {
		if d.ID != ruleID(d.PType, d.Rule) {
			t.Errorf("document %q holds rule %v, whose id is %q", d.ID, d.Rule, ruleID(d.PType, d.Rule))
		}
		out = append(out, append([]string{d.PType}, d.Rule...))
	}
	slices.SortFunc(out, slices.Compare)
	return out
}

func rows(ps ...Policy) [][]string {
	var out [][]string
	for _, p := range ps {
		out = append(out, append([]string{"p"}, p.rule()...))
	}
	slices.SortFunc(out, slices.Compare)
	return out
}

func TestDefaultsSeededOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustDatabase(t)
	dir := newDirectory()

	a := mustNew(t, Config{DB: db, Directory: dir})
	want := DefaultPolicies()
	sortPolicies(want)
	if got := a.Policies(); !slices.Equal(got, want) {
		t.Fatalf("first start has policies %v, want the defaults %v", got, want)
	}
	if got := storedRules(t, db); !slices.EqualFunc(got, rows(want...), slices.Equal) {
		t.Fatalf("stored %v, want the defaults", got)
	}

	// A second start, and a concurrent pair, write nothing new.
	mustNew(t, Config{DB: db, Directory: dir})
	done := make(chan error, 2)
	for range 2 {
		go func() { _, err := New(ctx, Config{DB: db, Directory: dir}); done <- err }()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := storedRules(t, db); len(got) != len(want) {
		t.Fatalf("after restarts %d rules are stored, want %d", len(got), len(want))
	}

	// Defaults an administrator removed stay removed.
	removed := Policy{RoleUser, GlobalDomain, ObjectPassword, ActionChange}
	if err := a.RemovePolicy(ctx, removed); err != nil {
		t.Fatal(err)
	}
	b := mustNew(t, Config{DB: db, Directory: dir})
	if slices.Contains(b.Policies(), removed) {
		t.Error("a removed default came back at the next start")
	}
}

func TestSeedKeepsExistingRules(t *testing.T) {
	t.Parallel()
	db := mustDatabase(t)
	mine := Policy{RoleOwner, GlobalDomain, ObjectPolicy, ActionUpdate}
	if err := NewAdapter(db).AddPolicy("p", "p", mine.rule()); err != nil {
		t.Fatal(err)
	}
	a := mustNew(t, Config{DB: db, Directory: newDirectory()})
	if got := a.Policies(); !slices.Equal(got, []Policy{mine}) {
		t.Fatalf("policies = %v, want only the stored one", got)
	}
	if err := a.RemovePolicy(context.Background(), mine); standin.ErrorCode(err) != standin.EConflict {
		t.Fatalf("removing the only policy-update grant = %v, want %s", err, standin.EConflict)
	}
}

func TestPolicyRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustDatabase(t)
	ada := user("ada", standin.RoleUser, neuro, "member")
	dir := newDirectory(ada)
	p := Policy{RoleProjectMember, neuro, ObjectActivity, ActionList}

	a := mustNew(t, Config{DB: db, Directory: dir})
	if err := a.AddPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPolicy(ctx, p); standin.ErrorCode(err) != standin.EConflict {
		t.Fatalf("adding a policy twice: %v, want a conflict", err)
	}
	if n := countRows(storedRules(t, db), p); n != 1 {
		t.Fatalf("the policy added twice is stored %d times", n)
	}

	b := mustNew(t, Config{DB: db, Directory: dir})
	if !slices.Contains(b.Policies(), p) {
		t.Fatal("a new Authorizer does not load the added policy")
	}
	if got := b.Check(ctx, ada, ActionList, ObjectActivity, neuro); !got.Allowed {
		t.Fatalf("the loaded policy does not grant: %q", got.Reason)
	}

	if err := a.RemovePolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if n := countRows(storedRules(t, db), p); n != 0 {
		t.Fatal("the removed policy is still stored")
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(b.Policies(), p) {
		t.Fatal("Reload kept the removed policy")
	}
	if got := b.Check(ctx, ada, ActionList, ObjectActivity, neuro); got.Allowed {
		t.Fatal("the removed policy still grants after Reload")
	}
}

func countRows(rs [][]string, p Policy) int {
	n := 0
	want := append([]string{"p"}, p.rule()...)
	for _, r := range rs {
		if slices.Equal(r, want) {
			n++
		}
	}
	return n
}

func TestAdapter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a1 := Policy{RoleUser, GlobalDomain, "report", ActionRead}
	a2 := Policy{RoleSupport, GlobalDomain, "report", ActionList}
	a3 := Policy{RoleAdmin, neuro, ObjectBooking, ActionCancel}
	odd := Policy{RoleUser, "a,b%2C", "x,y", "z%"}

	t.Run("SavePolicyReplacesContent", func(t *testing.T) {
		t.Parallel()
		db := mustDatabase(t)
		ad := NewAdapter(db)
		if err := ad.AddPolicies("p", "p", [][]string{a1.rule(), a2.rule()}); err != nil {
			t.Fatal(err)
		}
		if err := ad.markSeeded(ctx); err != nil {
			t.Fatal(err)
		}
		// An index proves the collection survives: dropping it would drop
		// the index too.
		col := db.Collection(PolicyCollection)
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
		if seeded, err := ad.seeded(ctx); err != nil || !seeded {
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
		db := mustDatabase(t)
		ad := NewAdapter(db)
		for range 2 {
			if err := ad.AddPolicy("p", "p", odd.rule()); err != nil {
				t.Fatal(err)
			}
		}
		if err := ad.AddPolicies("p", "p", [][]string{a1.rule(), a2.rule(), a3.rule(), a1.rule()}); err != nil {
			t.Fatal(err)
		}
		// Grouping rules come from users and are never stored.
		if err := ad.AddPolicy("g", "g", []string{"user:ada", RoleAdmin, GlobalDomain}); err != nil {
			t.Fatal(err)
		}
		if got, want := storedRules(t, db), rows(a1, a2, a3, odd); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("stored %v, want %v", got, want)
		}

		m := mustModel(t)
		if err := ad.LoadPolicy(m); err != nil {
			t.Fatal(err)
		}
		if got := policiesOf(m); len(got) != 4 || !slices.Contains(got, odd) {
			t.Fatalf("loaded %v", got)
		}

		if err := ad.RemovePolicy("p", "p", odd.rule()); err != nil {
			t.Fatal(err)
		}
		if err := ad.RemovePolicy("p", "p", odd.rule()); err != nil {
			t.Fatalf("removing a missing rule: %v", err)
		}
		if err := ad.RemoveFilteredPolicy("p", "p", 2, "report"); err != nil {
			t.Fatal(err)
		}
		if got, want := storedRules(t, db), rows(a3); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("after removals stored %v, want %v", got, want)
		}
		if err := ad.RemoveFilteredPolicy("p", "p", 0, "", neuro); err != nil {
			t.Fatal(err)
		}
		if got := storedRules(t, db); len(got) != 0 {
			t.Fatalf("after a filtered removal with a blank field stored %v", got)
		}
	})

	t.Run("ErrBadDocument", func(t *testing.T) {
		t.Parallel()
		db := mustDatabase(t)
		bad := []policyDoc{
			{ID: "short", PType: "p", Rule: []string{RoleUser, GlobalDomain, "x"}},
			{ID: "unknown", PType: "p9", Rule: a1.rule()},
		}
		for _, d := range bad {
			col := db.Collection(PolicyCollection)
			if _, err := col.InsertOne(ctx, d); err != nil {
				t.Fatal(err)
			}
			if err := NewAdapter(db).LoadPolicy(mustModel(t)); standin.ErrorCode(err) != standin.EInvalid {
				t.Errorf("%s: LoadPolicy = %v, want %s", d.ID, err, standin.EInvalid)
			}
			if _, err := col.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}}); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("CasbinEnforcer", func(t *testing.T) {
		t.Parallel()
		db := mustDatabase(t)
		ad := NewAdapter(db)
		if err := ad.AddPolicy("p", "p", a1.rule()); err != nil {
			t.Fatal(err)
		}
		e, err := casbin.NewEnforcer(mustModel(t), ad)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := e.GetPolicy(); len(got) != 1 || !slices.Equal(got[0], a1.rule()) {
			t.Fatalf("the enforcer loaded %v", got)
		}
		if _, err := e.AddPolicy(a2.rule()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.AddGroupingPolicy("user:ada", RoleSupport, GlobalDomain); err != nil {
			t.Fatal(err)
		}
		if ok, err := e.Enforce("user:ada", GlobalDomain, "report", ActionList); err != nil || !ok {
			t.Fatalf("Enforce = %v, %v", ok, err)
		}
		if got, want := storedRules(t, db), rows(a1, a2); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("auto-saved %v, want %v", got, want)
		}
		if _, err := e.RemovePolicy(a1.rule()); err != nil {
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

func TestRuleID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b []string
	}{
		{[]string{"a,b", "c"}, []string{"a", "b,c"}},
		{[]string{"a%2Cb"}, []string{"a,b"}},
		{[]string{"a", ""}, []string{"a"}},
	}
	for _, tt := range tests {
		if ruleID("p", tt.a) == ruleID("p", tt.b) {
			t.Errorf("%v and %v share the id %q", tt.a, tt.b, ruleID("p", tt.a))
		}
	}
	if got := ruleID("p", []string{RoleUser, GlobalDomain, ObjectProfile, ActionRead}); got != "p,role:user,*,profile,read" {
		t.Errorf("id = %q, want the readable form", got)
	}
}

// mustModel returns the embedded model holding ps.
func mustModel(t *testing.T, ps ...Policy) model.Model {
	t.Helper()
	m, err := newModel()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := m.AddPolicy("p", "p", p.rule()); err != nil {
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
