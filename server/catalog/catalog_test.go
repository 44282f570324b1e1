package catalog_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/catalog"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
	"standin/server/testclock"
)

// countingStore counts the catalog's reads of a real store.
type countingStore struct {
	*mongostore.DB
	lists, byID atomic.Int64
}

func (s *countingStore) Projects(ctx context.Context) ([]*standin.Project, error) {
	s.lists.Add(1)
	return s.DB.Projects(ctx)
}

func (s *countingStore) Resources(ctx context.Context) ([]*standin.Resource, error) {
	s.lists.Add(1)
	return s.DB.Resources(ctx)
}

func (s *countingStore) Trainings(ctx context.Context) ([]*standin.Training, error) {
	s.lists.Add(1)
	return s.DB.Trainings(ctx)
}

func (s *countingStore) ProjectByID(ctx context.Context, id string) (*standin.Project, error) {
	s.byID.Add(1)
	return s.DB.ProjectByID(ctx, id)
}

func (s *countingStore) ResourceByID(ctx context.Context, id string) (*standin.Resource, error) {
	s.byID.Add(1)
	return s.DB.ResourceByID(ctx, id)
}

// The catalog is read once and answered from memory until its TTL is
// past; a project added since is found by id at once from the store, and
// in the lists once the copy is read again; what a caller changes in an
// answer changes no later answer.
func TestCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	neuro := &standin.Project{Code: "NEURO", Name: "Neuro Imaging"}
	basics := &standin.Training{Name: "Confocal Basics"}
	for _, err := range []error{db.EnsureProject(ctx, neuro), db.EnsureTraining(ctx, basics)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	confocal := &standin.Resource{Name: "Confocal LSM 900", Kind: "instrument", RequiredTrainings: []string{basics.ID},
		Rule: standin.AccessRule{Projects: []string{neuro.ID}}}
	if err := db.EnsureResource(ctx, confocal); err != nil {
		t.Fatal(err)
	}
	store := &countingStore{DB: db}
	clk := testclock.New(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	c := catalog.New(store, time.Minute, clk.Now)

	for range 5 {
		if ps, err := c.Projects(ctx); err != nil || len(ps) != 1 || ps[0].Code != "NEURO" {
			t.Fatalf("Projects = %v %v", ps, err)
		}
		rs, err := c.Resources(ctx)
		if err != nil || len(rs) != 1 || rs[0].Name != "Confocal LSM 900" || rs[0].RequiredTrainings[0] != basics.ID {
			t.Fatalf("Resources = %v %v", rs, err)
		}
		rs[0].Name, rs[0].RequiredTrainings[0] = "changed by a caller", "x"
		if r, err := c.ResourceByID(ctx, confocal.ID); err != nil || r.Name != "Confocal LSM 900" || r.RequiredTrainings[0] != basics.ID {
			t.Fatalf("ResourceByID after a caller changed its answer = %+v %v", r, err)
		}
		if ts, err := c.Trainings(ctx); err != nil || len(ts) != 1 {
			t.Fatalf("Trainings = %v %v", ts, err)
		}
	}
	if n := store.lists.Load(); n != 3 {
		t.Errorf("the store's lists were read %d times, want once each", n)
	}
	if n := store.byID.Load(); n != 0 {
		t.Errorf("%d reads by id of things the copy holds", n)
	}

	cell := &standin.Project{Code: "CELL", Name: "Cell Biology"}
	if err := db.EnsureProject(ctx, cell); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ProjectByID(ctx, cell.ID); err != nil || p.Code != "CELL" {
		t.Fatalf("a project added since, by id: %v %v", p, err)
	}
	if _, err := c.ProjectByID(ctx, "6b116ccdc867474506ebcee7"); standin.ErrorCode(err) != standin.ENotFound {
		t.Fatalf("an unknown project: %v", err)
	}
	if ps, _ := c.Projects(ctx); len(ps) != 1 {
		t.Fatalf("the copy changed before its TTL: %d projects", len(ps))
	}
	clk.Advance(time.Minute)
	if ps, err := c.Projects(ctx); err != nil || len(ps) != 2 {
		t.Fatalf("after the TTL: %d projects, %v", len(ps), err)
	}
	if n := store.lists.Load(); n != 6 {
		t.Errorf("the store's lists were read %d times, want twice each", n)
	}
}
