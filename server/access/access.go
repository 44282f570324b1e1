// Package access is the one place that decides what a principal may do. It
// asks Casbin (package authz) whether the effective identity's roles and
// project memberships grant the action, then, for bookings, whether the
// facility's rules (package facility) admit it: trainings, access rules,
// length and hours. Permissions are always the subject's alone: an
// impersonating actor gets exactly what the impersonated user has.
package access

import (
	"context"
	"fmt"
	"sync"
	"time"

	"standin/server/facility"
	"standin/server/standin"
)

// RBAC decides role- and project-based permissions.
type RBAC interface {
	Check(ctx context.Context, subject *standin.User, action, object, project string) standin.Decision
}

// Catalog names things in reasons.
type Catalog interface {
	Trainings(ctx context.Context) ([]*standin.Training, error)
	Projects(ctx context.Context) ([]*standin.Project, error)
}

// Decider makes decisions.
type Decider struct {
	rbac    RBAC
	catalog Catalog
	loc     *time.Location
	now     func() time.Time

	// Names of trainings and projects change rarely and only reword
	// reasons, so they are kept for namesTTL instead of read per decision.
	mu      sync.Mutex
	names   map[string]string
	namesAt time.Time
}

const namesTTL = 10 * time.Second

// New returns a Decider judging facility hours in loc (default UTC), with
// now as the clock (default time.Now).
func New(rbac RBAC, catalog Catalog, loc *time.Location, now func() time.Time) *Decider {
	if loc == nil {
		loc = time.UTC
	}
	if now == nil {
		now = time.Now
	}
	return &Decider{rbac: rbac, catalog: catalog, loc: loc, now: now}
}

// Location is the facility's time zone.
func (d *Decider) Location() *time.Location { return d.loc }

// Decide says whether p may do action on obj in project (a project id, or
// "" for something global). Only p.Subject's permissions count. An error
// means the decision could not be made (storage down); callers must then
// refuse.
func (d *Decider) Decide(ctx context.Context, p *standin.Principal, action string, obj standin.Object, project string) (standin.Decision, error) {
	if p == nil || p.Subject == nil {
		return standin.Decision{Reason: "Sign in to continue."}, nil
	}
	dec := d.rbac.Check(ctx, p.Subject, action, obj.Kind, project)
	if !dec.Allowed || obj.Resource == nil {
		return dec, nil
	}
	names, err := d.lookupNames(ctx)
	if err != nil {
		return standin.Decision{}, err
	}
	reason := facility.Check(facility.Booking{
		User: p.Subject, Resource: obj.Resource, ProjectID: project, Start: obj.Start, End: obj.End,
	}, facility.Env{
		Location:     d.loc,
		Now:          d.now(),
		TrainingName: func(id string) string { return names[id] },
		ProjectCode:  func(id string) string { return names[id] },
	})
	if reason != "" {
		return standin.Decision{Reason: reason}, nil
	}
	return standin.Decision{Allowed: true, Reason: dec.Reason + "; the resource's rules are met"}, nil
}

// Scope says where p may do action on things of kind: everywhere, or in
// which of projects. An error means it could not be decided.
func (d *Decider) Scope(ctx context.Context, p *standin.Principal, action, kind string, projects []string) (standin.Scope, error) {
	obj := standin.Object{Kind: kind}
	global, err := d.Decide(ctx, p, action, obj, "")
	if err != nil || global.Allowed {
		return standin.Scope{All: global.Allowed, Global: global}, err
	}
	sc := standin.Scope{Projects: []string{}, Global: global}
	for _, project := range projects {
		dec, err := d.Decide(ctx, p, action, obj, project)
		if err != nil {
			return standin.Scope{}, err
		}
		if dec.Allowed {
			sc.Projects = append(sc.Projects, project)
		}
	}
	return sc, nil
}

// lookupNames maps training and project ids to the names people know them
// by.
func (d *Decider) lookupNames(ctx context.Context) (map[string]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.names != nil && time.Since(d.namesAt) < namesTTL {
		return d.names, nil
	}
	trainings, err := d.catalog.Trainings(ctx)
	if err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	projects, err := d.catalog.Projects(ctx)
	if err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	names := make(map[string]string, len(trainings)+len(projects))
	for _, t := range trainings {
		names[t.ID] = t.Name
	}
	for _, p := range projects {
		names[p.ID] = p.Code
	}
	d.names, d.namesAt = names, time.Now()
	return names, nil
}
