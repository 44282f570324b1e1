package authz

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"standin/server/mongostore"
)

// storedRules returns the rules the store holds, as Casbin rows with their
// ptype first, sorted.
func storedRules(t *testing.T, store PolicyStore) [][]string {
	t.Helper()
	out, err := store.PolicyRules(context.Background())
	if err != nil {
		t.Fatal(err)
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
	db := mustStore(t)
	dir := newDirectory()

	a := mustNew(t, storedConfig(db, dir))
	want := testDefaults()
	sortPolicies(want)
	if got := a.Policies(); !slices.Equal(got, want) {
		t.Fatalf("first start has policies %v, want the defaults %v", got, want)
	}
	if got := storedRules(t, db); !slices.EqualFunc(got, rows(want...), slices.Equal) {
		t.Fatalf("stored %v, want the defaults", got)
	}

	// A second start, and a concurrent pair, write nothing new.
	mustNew(t, storedConfig(db, dir))
	done := make(chan error, 2)
	for range 2 {
		go func() { _, err := New(ctx, storedConfig(db, dir)); done <- err }()
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
	removed := Policy{RoleUser, GlobalDomain, objectPassword, actionChange}
	if err := a.RemovePolicy(ctx, removed); err != nil {
		t.Fatal(err)
	}
	b := mustNew(t, storedConfig(db, dir))
	if slices.Contains(b.Policies(), removed) {
		t.Error("a removed default came back at the next start")
	}
}

func TestSeedKeepsExistingRules(t *testing.T) {
	t.Parallel()
	db := mustStore(t)
	mine := Policy{RoleOwner, GlobalDomain, objectPolicy, actionUpdate}
	if err := NewAdapter(db).AddPolicy("p", "p", mine.rule()); err != nil {
		t.Fatal(err)
	}
	a := mustNew(t, storedConfig(db, newDirectory()))
	if got := a.Policies(); !slices.Equal(got, []Policy{mine}) {
		t.Fatalf("policies = %v, want only the stored one", got)
	}
	if err := a.RemovePolicy(context.Background(), mine); KindOf(err) != Conflict {
		t.Fatalf("removing the only policy-update grant = %v, want %s", err, Conflict)
	}
}

func TestPolicyRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustStore(t)
	ada := user("ada", "user", neuro, "member")
	dir := newDirectory(ada)
	p := Policy{RoleProjectMember, neuro, objectActivity, actionList}

	a := mustNew(t, storedConfig(db, dir))
	if err := a.AddPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPolicy(ctx, p); KindOf(err) != Conflict {
		t.Fatalf("adding a policy twice: %v, want a conflict", err)
	}
	if n := countRows(storedRules(t, db), p); n != 1 {
		t.Fatalf("the policy added twice is stored %d times", n)
	}

	b := mustNew(t, storedConfig(db, dir))
	if !slices.Contains(b.Policies(), p) {
		t.Fatal("a new Authorizer does not load the added policy")
	}
	if got := b.Check(ctx, ada, actionList, objectActivity, neuro); !got.Allowed {
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
	if got := b.Check(ctx, ada, actionList, objectActivity, neuro); got.Allowed {
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

// TestAdditionsSeededOnce: a set of defaults that came after an
// installation began is written into it once, at the first start that
// knows it; a fresh installation gets it with the defaults; a policy of
// the set an administrator removes stays removed either way.
func TestAdditionsSeededOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	added := PolicySet{Name: "later", Policies: []Policy{{RoleUser, GlobalDomain, objectPolicy, actionList}}}
	later := func(store PolicyStore) Config {
		c := storedConfig(store, newDirectory())
		c.Defaults = append(slices.Clone(c.Defaults), added.Policies...)
		c.Additions = []PolicySet{added}
		return c
	}
	for _, tt := range []struct {
		name  string
		older bool // the store was seeded before the set existed
	}{{"SeededBefore", true}, {"Fresh", false}} {
		t.Run(tt.name, func(t *testing.T) {
			db := mustStore(t)
			if tt.older {
				a := mustNew(t, storedConfig(db, newDirectory()))
				if slices.Contains(a.Policies(), added.Policies[0]) {
					t.Fatal("the set is there before it existed")
				}
			}
			a := mustNew(t, later(db))
			if !slices.Contains(a.Policies(), added.Policies[0]) {
				t.Fatalf("the start that knows the set lacks it: %v", a.Policies())
			}
			if err := a.RemovePolicy(ctx, added.Policies[0]); err != nil {
				t.Fatal(err)
			}
			if b := mustNew(t, later(db)); slices.Contains(b.Policies(), added.Policies[0]) {
				t.Fatal("a removed policy of the set came back at the next start")
			}
		})
	}
}

// pausedStore is one node's view of a shared store: its first look for a
// set's seed marker answers only when the test releases it, so the test
// can order what other nodes do in between.
type pausedStore struct {
	*mongostore.DB
	looked, release chan struct{}
	once            sync.Once
}

func newPausedStore(db *mongostore.DB) *pausedStore {
	return &pausedStore{DB: db, looked: make(chan struct{}), release: make(chan struct{})}
}

func (s *pausedStore) PolicySetSeeded(ctx context.Context, name string) (bool, error) {
	had, err := s.DB.PolicySetSeeded(ctx, name)
	s.once.Do(func() {
		close(s.looked)
		<-s.release
	})
	return had, err
}

// TestAdditionsRacingStarts: two nodes start together on a store seeded
// before a set existed, and both find the set missing. One adds it, an
// administrator removes one of its policies, and only then does the
// other go on: the removed policy must not come back, and the other node
// must still start with the rest of the set.
func TestAdditionsRacingStarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	removed := Policy{RoleUser, GlobalDomain, objectPolicy, actionList}
	kept := Policy{RoleSupport, GlobalDomain, objectActivity, actionList}
	set := PolicySet{Name: "later", Policies: []Policy{removed, kept}}
	later := func(store PolicyStore) Config {
		c := storedConfig(store, newDirectory())
		c.Additions = []PolicySet{set}
		return c
	}

	db := mustStore(t)
	mustNew(t, storedConfig(db, newDirectory()))

	paused := newPausedStore(db)
	second := make(chan *Authorizer, 1)
	secondErr := make(chan error, 1)
	go func() {
		a, err := New(ctx, later(paused))
		second <- a
		secondErr <- err
	}()
	<-paused.looked // the second node found the set missing

	first := mustNew(t, later(db))
	if !slices.Contains(first.Policies(), removed) {
		t.Fatalf("the first node lacks the set: %v", first.Policies())
	}
	if err := first.RemovePolicy(ctx, removed); err != nil {
		t.Fatal(err)
	}
	close(paused.release)

	b := <-second
	if err := <-secondErr; err != nil {
		t.Fatalf("the second node: %v", err)
	}
	if n := countRows(storedRules(t, db), removed); n != 0 {
		t.Error("the second node put back the policy of the set an administrator removed after the first node added it")
	}
	if slices.Contains(b.Policies(), removed) {
		t.Error("the second node enforces the policy an administrator removed")
	}
	if !slices.Contains(b.Policies(), kept) {
		t.Errorf("the second node started without the rest of the set: %v", b.Policies())
	}
}

// stoppingStore is a node's view of a shared store that fails where the
// node would stop: before writing a set's policies, or before recording
// that it did.
type stoppingStore struct {
	*mongostore.DB
	beforeWrite, beforeMark bool
}

var errStopped = errors.New("the node stopped")

func (s stoppingStore) AddPolicyRules(ctx context.Context, rows [][]string) error {
	if s.beforeWrite {
		return errStopped
	}
	return s.DB.AddPolicyRules(ctx, rows)
}

func (s stoppingStore) MarkPolicySetSeeded(ctx context.Context, name string) error {
	if s.beforeMark {
		return errStopped
	}
	return s.DB.MarkPolicySetSeeded(ctx, name)
}

// TestAdditionsFinishedAfterStop: a node that claimed a set and stopped
// before recording it done leaves the set to the next start, which
// finishes it after waiting; once finished, a removal stays.
func TestAdditionsFinishedAfterStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := Policy{RoleUser, GlobalDomain, objectPolicy, actionList}
	later := func(store PolicyStore) Config {
		c := storedConfig(store, newDirectory())
		c.Additions = []PolicySet{{Name: "later", Policies: []Policy{p}}}
		// Long enough that a winner's writes, fenced to half of it, are
		// not cut short on a loaded machine.
		c.SeedWait = 3 * time.Second
		return c
	}
	for _, tt := range []struct {
		name  string
		store func(*mongostore.DB) stoppingStore
	}{
		{"BeforeWrite", func(db *mongostore.DB) stoppingStore { return stoppingStore{DB: db, beforeWrite: true} }},
		{"BeforeMark", func(db *mongostore.DB) stoppingStore { return stoppingStore{DB: db, beforeMark: true} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := mustStore(t)
			mustNew(t, storedConfig(db, newDirectory()))
			if _, err := New(ctx, later(tt.store(db))); !errors.Is(err, errStopped) {
				t.Fatalf("the stopping node: %v, want it stopped", err)
			}
			a := mustNew(t, later(db))
			if !slices.Contains(a.Policies(), p) {
				t.Fatalf("the next start did not finish the set: %v", a.Policies())
			}
			if err := a.RemovePolicy(ctx, p); err != nil {
				t.Fatal(err)
			}
			if b := mustNew(t, later(db)); slices.Contains(b.Policies(), p) {
				t.Fatal("a policy removed after the set was finished came back")
			}
		})
	}
}
