// Package support answers what a support agent needs on a user's page
// before impersonating anyone: what blocks the user from booking each
// instrument of their projects and why, their trainings against what
// those instruments need, the refusals and impersonations on their
// account, and their coming bookings.
package support

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"standin/server/standin"
)

// Store reads the user and the facility.
type Store interface {
	UserByID(ctx context.Context, id string) (*standin.User, error)
	Resources(ctx context.Context) ([]*standin.Resource, error)
	Trainings(ctx context.Context) ([]*standin.Training, error)
	Bookings(ctx context.Context, f standin.BookingFilter, p standin.Page) ([]*standin.Booking, string, error)
	ActiveImpersonations(ctx context.Context) ([]*standin.Impersonation, error)
}

// Decider decides what a principal may do (package access).
type Decider interface {
	Decide(ctx context.Context, p *standin.Principal, action string, obj standin.Object, project string) (standin.Decision, error)
}

// Log pages the audit log, newest first (package audit).
type Log interface {
	Query(ctx context.Context, f standin.EventFilter, p standin.Page) ([]*standin.Event, string, error)
}

// Expiring is how soon before its end a training counts as expiring.
const Expiring = 30 * 24 * time.Hour

// recent is how many refusals, sessions and bookings an overview lists.
const recent = 10

// Service answers overviews.
type Service struct {
	store Store
	rules Decider
	log   Log
	now   func() time.Time
}

// New returns a Service; now is the clock (time.Now when nil).
func New(store Store, rules Decider, log Log, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, rules: rules, log: log, now: now}
}

// Access is whether the user may book one resource in one of their
// projects, and why not.
type Access struct {
	Resource *standin.Resource
	Project  string
	Bookable bool
	Reason   string
}

// Training states.
const (
	TrainingMissing  = "missing"
	TrainingExpired  = "expired"
	TrainingExpiring = "expiring"
	TrainingValid    = "valid"
)

// TrainingState is one training the user holds or an instrument of their
// projects needs: its state now, when it ends, and which instruments need
// it.
type TrainingState struct {
	Training  *standin.Training
	State     string
	ExpiresAt time.Time // zero when missing
	NeededFor []string  // resource names
}

// Overview is a user's page for support staff.
type Overview struct {
	User      *standin.User
	Access    []Access
	Trainings []TrainingState
	// Refusals are the newest action.denied events about the user (made
	// while someone impersonated them), newest first.
	Refusals []*standin.Event
	// Sessions are the newest impersonations started on the user, newest
	// first; Running those in force now.
	Sessions []*standin.Event
	Running  []*standin.Impersonation
	// Bookings are the user's coming confirmed bookings, soonest first.
	Bookings []*standin.Booking
}

// Overview gathers the page of user id. ENotFound for an unknown id.
func (s *Service) Overview(ctx context.Context, id string) (*Overview, error) {
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := &Overview{User: u}
	resources, err := s.store.Resources(ctx)
	if err != nil {
		return nil, err
	}
	if out.Access, err = s.access(ctx, u, resources); err != nil {
		return nil, err
	}
	if out.Trainings, err = s.trainings(ctx, u, resources, now); err != nil {
		return nil, err
	}
	if out.Refusals, err = s.events(ctx, standin.EventFilter{SubjectID: u.ID, Type: standin.EventActionDenied}); err != nil {
		return nil, err
	}
	if out.Sessions, err = s.events(ctx, standin.EventFilter{SubjectID: u.ID, Type: standin.EventImpersonationStarted}); err != nil {
		return nil, err
	}
	if out.Running, err = s.running(ctx, u, now); err != nil {
		return nil, err
	}
	if out.Bookings, err = s.bookings(ctx, u, now); err != nil {
		return nil, err
	}
	return out, nil
}

// access decides, as the user, each resource usable in each of their
// projects.
func (s *Service) access(ctx context.Context, u *standin.User, resources []*standin.Resource) ([]Access, error) {
	self := &standin.Principal{Actor: u, Subject: u}
	var out []Access
	for _, project := range u.ProjectIDs() {
		for _, r := range resources {
			if !r.Rule.AllowsProject(project) {
				continue
			}
			dec, err := s.rules.Decide(ctx, self, standin.ActCreate, standin.Object{Kind: standin.KindBooking, Resource: r}, project)
			if err != nil {
				return nil, fmt.Errorf("decide whether %s may book %s: %w", u.ID, r.ID, err)
			}
			a := Access{Resource: r, Project: project, Bookable: dec.Allowed}
			if !dec.Allowed {
				a.Reason = dec.Reason
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// trainings states every training the user holds or an instrument of
// their projects needs, in the order of the facility's list.
func (s *Service) trainings(ctx context.Context, u *standin.User, resources []*standin.Resource, now time.Time) ([]TrainingState, error) {
	all, err := s.store.Trainings(ctx)
	if err != nil {
		return nil, err
	}
	needed := map[string][]string{}
	for _, r := range resources {
		if !slices.ContainsFunc(u.ProjectIDs(), func(p string) bool { return r.Rule.AllowsProject(p) }) {
			continue
		}
		for _, t := range r.RequiredTrainings {
			needed[t] = append(needed[t], r.Name)
		}
	}
	var out []TrainingState
	for _, t := range all {
		i := slices.IndexFunc(u.Trainings, func(rec standin.TrainingRecord) bool { return rec.TrainingID == t.ID })
		if i < 0 && needed[t.ID] == nil {
			continue
		}
		st := TrainingState{Training: t, State: TrainingMissing, NeededFor: needed[t.ID]}
		if i >= 0 {
			st.ExpiresAt = u.Trainings[i].ExpiresAt
			st.State = trainingState(u.Trainings[i], now)
		}
		out = append(out, st)
	}
	return out, nil
}

func trainingState(rec standin.TrainingRecord, now time.Time) string {
	switch {
	case !rec.ValidAt(now):
		return TrainingExpired
	case !rec.ExpiresAt.IsZero() && rec.ExpiresAt.Sub(now) < Expiring:
		return TrainingExpiring
	default:
		return TrainingValid
	}
}

// events reads the newest events matching f.
func (s *Service) events(ctx context.Context, f standin.EventFilter) ([]*standin.Event, error) {
	evs, _, err := s.log.Query(ctx, f, standin.Page{Limit: recent})
	if err != nil {
		return nil, fmt.Errorf("read the user's %s events: %w", f.Type, err)
	}
	return evs, nil
}

// running lists the impersonations of the user in force now.
func (s *Service) running(ctx context.Context, u *standin.User, now time.Time) ([]*standin.Impersonation, error) {
	active, err := s.store.ActiveImpersonations(ctx)
	if err != nil {
		return nil, err
	}
	var out []*standin.Impersonation
	for _, imp := range active {
		if imp.SubjectID == u.ID && imp.ActiveAt(now) {
			out = append(out, imp)
		}
	}
	return out, nil
}

// bookings lists the user's coming confirmed bookings, soonest first.
func (s *Service) bookings(ctx context.Context, u *standin.User, now time.Time) ([]*standin.Booking, error) {
	var out []*standin.Booking
	p := standin.Page{Limit: 200}
	for range 5 {
		page, next, err := s.store.Bookings(ctx, standin.BookingFilter{UserID: u.ID, Status: standin.BookingConfirmed}, p)
		if err != nil {
			return nil, err
		}
		for _, b := range page {
			if b.End.After(now) {
				out = append(out, b)
			}
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	slices.SortFunc(out, func(a, b *standin.Booking) int { return cmp.Compare(a.Start.UnixNano(), b.Start.UnixNano()) })
	if len(out) > recent {
		out = out[:recent]
	}
	return out, nil
}
