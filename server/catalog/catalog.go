// Package catalog keeps the facility's catalog (its projects, resources
// and trainings) in memory for the request path. Nearly every request
// names some of them (a profile's projects and trainings, the resources
// to book, the project a booking is made in), and on the embedded
// database each read of them costs a query of about a millisecond, while
// the catalog is small and changes only when it is set up.
//
// A Cache reads the whole catalog at once and answers from that copy for
// TTL; the first request after it re-reads it. A change made to the
// catalog (by setting up the facility, on any node) is therefore seen
// everywhere within TTL. A look-up by id of something the copy does not
// hold asks the store, so a thing added since is found at once.
package catalog

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"standin/server/standin"
)

// DefaultTTL is how long a copy of the catalog answers before it is read
// again.
const DefaultTTL = 10 * time.Second

// Store is where the catalog is kept (package mongostore).
type Store interface {
	Projects(ctx context.Context) ([]*standin.Project, error)
	ProjectByID(ctx context.Context, id string) (*standin.Project, error)
	Resources(ctx context.Context) ([]*standin.Resource, error)
	ResourceByID(ctx context.Context, id string) (*standin.Resource, error)
	Trainings(ctx context.Context) ([]*standin.Training, error)
}

// Cache answers the catalog's reads from a copy at most TTL old. It is
// safe for concurrent use. What it returns is the caller's own: changing
// it changes no copy.
type Cache struct {
	store Store
	ttl   time.Duration
	now   func() time.Time

	mu   sync.Mutex // held while the copy is read again
	copy atomic.Pointer[snapshot]
}

// snapshot is one read of the whole catalog.
type snapshot struct {
	at        time.Time
	projects  []*standin.Project
	resources []*standin.Resource
	trainings []*standin.Training
	project   map[string]*standin.Project
	resource  map[string]*standin.Resource
}

// New returns a Cache over store; ttl 0 means DefaultTTL, now nil the
// system clock.
func New(store Store, ttl time.Duration, now func() time.Time) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{store: store, ttl: ttl, now: now}
}

// current returns a copy of the catalog at most TTL old, reading it again
// when the one held is older.
//
// Errors: the store's, when it must be read and cannot be.
func (c *Cache) current(ctx context.Context) (*snapshot, error) {
	if s := c.copy.Load(); s != nil && c.now().Sub(s.at) < c.ttl {
		return s, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.copy.Load(); s != nil && c.now().Sub(s.at) < c.ttl {
		return s, nil // read again by another caller meanwhile
	}
	at := c.now()
	s := &snapshot{at: at, project: map[string]*standin.Project{}, resource: map[string]*standin.Resource{}}
	var err error
	if s.projects, err = c.store.Projects(ctx); err != nil {
		return nil, err
	}
	if s.resources, err = c.store.Resources(ctx); err != nil {
		return nil, err
	}
	if s.trainings, err = c.store.Trainings(ctx); err != nil {
		return nil, err
	}
	for _, p := range s.projects {
		s.project[p.ID] = p
	}
	for _, r := range s.resources {
		s.resource[r.ID] = r
	}
	c.copy.Store(s)
	return s, nil
}

// Projects returns every project.
func (c *Cache) Projects(ctx context.Context) ([]*standin.Project, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	return clones(s.projects, copyOf), nil
}

// ProjectByID returns the project id; one the copy does not hold is read
// from the store (ENotFound when there is none).
func (c *Cache) ProjectByID(ctx context.Context, id string) (*standin.Project, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := s.project[id]; ok {
		return copyOf(p), nil
	}
	return c.store.ProjectByID(ctx, id)
}

// Resources returns every resource.
func (c *Cache) Resources(ctx context.Context) ([]*standin.Resource, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	return clones(s.resources, cloneResource), nil
}

// ResourceByID returns the resource id; one the copy does not hold is
// read from the store (ENotFound when there is none).
func (c *Cache) ResourceByID(ctx context.Context, id string) (*standin.Resource, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	if r, ok := s.resource[id]; ok {
		return cloneResource(r), nil
	}
	return c.store.ResourceByID(ctx, id)
}

// Trainings returns every training.
func (c *Cache) Trainings(ctx context.Context) ([]*standin.Training, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	return clones(s.trainings, copyOf), nil
}

// clones copies each of list with clone, so the caller's answer is its
// own.
func clones[T any](list []*T, clone func(*T) *T) []*T {
	out := make([]*T, len(list))
	for i, v := range list {
		out[i] = clone(v)
	}
	return out
}

// copyOf copies a record that holds no slice or map.
func copyOf[T any](v *T) *T {
	cp := *v
	return &cp
}

// cloneResource copies r with slices of its own.
func cloneResource(r *standin.Resource) *standin.Resource {
	cp := *r
	cp.RequiredTrainings = slices.Clone(r.RequiredTrainings)
	cp.Rule.Roles = slices.Clone(r.Rule.Roles)
	cp.Rule.Projects = slices.Clone(r.Rule.Projects)
	cp.Rule.Windows = slices.Clone(r.Rule.Windows)
	return &cp
}
