// Package rbac adapts the authorizer (package authz), which knows nothing
// of the console, to the domain: users become its subjects, its decisions
// and policies the domain's, its errors coded domain errors. The console's
// default policies (package access) are what it seeds a new database with.
package rbac

import (
	"context"
	"errors"
	"log/slog"

	"standin/authz"
	"standin/server/access"
	"standin/server/standin"
)

// governing is the permission to change policies, which the authorizer
// keeps granted to at least one global role.
var governing = authz.Permission{Object: standin.KindPolicy, Action: standin.ActUpdate}

// Users lists every account, suspended ones included.
type Users interface {
	AllUsers(ctx context.Context) ([]*standin.User, error)
}

// New loads the policies kept in store (seeding the default ones on first
// start) and the users' roles, and returns the authorizer in the domain's
// terms.
//
// Errors: EInvalid when a stored or default policy is malformed;
// EUnavailable when the database cannot be reached.
func New(ctx context.Context, store authz.PolicyStore, users Users, log *slog.Logger) (*Authorizer, error) {
	a, err := authz.New(ctx, authz.Config{
		Store:     store,
		Defaults:  authzPolicies(access.DefaultPolicies()),
		Additions: authzSets(access.PolicyAdditions()),
		Governing: governing,
		Directory: userDirectory{users},
		Logger:    log,
	})
	if err != nil {
		return nil, domainError(err)
	}
	return &Authorizer{a: a}, nil
}

// Authorizer is the authorizer in the domain's terms. It is what
// access.RBAC, impersonation.RBAC and accounts.Authorizer ask, and the
// HTTP API's policies.
type Authorizer struct{ a *authz.Authorizer }

// Check decides whether u may do action on object within project (a
// project id, or "" for something global). Only u's id and status count:
// roles and memberships are those the authorizer last learnt, from the
// users at start-up or from SyncUser.
func (r *Authorizer) Check(ctx context.Context, u *standin.User, action, object, project string) standin.Decision {
	if u == nil {
		return standin.Decision(r.a.Check(ctx, nil, action, object, project))
	}
	// Roles and memberships are not read here; leaving them out spares a
	// copy on every decision.
	s := authz.Subject{ID: u.ID, Status: statusOf(u.Status)}
	return standin.Decision(r.a.Check(ctx, &s, action, object, project))
}

// SyncUser gives the authorizer u's role, memberships and status as they
// are now. Call it with the stored user after any change of them
// (suspension included): until then decisions about u follow what it was.
//
// Errors: EInvalid when u is nil or has no id.
func (r *Authorizer) SyncUser(u *standin.User) error {
	return domainError(r.a.SyncUser(subjectOf(u)))
}

// userDirectory lists the console's users as the authorizer's subjects.
type userDirectory struct {
	users Users
}

// Subjects returns every user, suspended ones included.
func (d userDirectory) Subjects(ctx context.Context) ([]*authz.Subject, error) {
	users, err := d.users.AllUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*authz.Subject, 0, len(users))
	for _, u := range users {
		out = append(out, subjectOf(u))
	}
	return out, nil
}

// subjectOf returns the subject a user is to the authorizer.
func subjectOf(u *standin.User) *authz.Subject {
	if u == nil {
		return nil
	}
	s := &authz.Subject{ID: u.ID, Role: string(u.Role), Status: statusOf(u.Status)}
	for _, m := range u.Memberships {
		s.Memberships = append(s.Memberships, authz.Membership{Project: m.ProjectID, Role: string(m.Role)})
	}
	return s
}

// statusOf returns the authorizer's status for an account status; an
// unknown one is inactive, which denies everything.
func statusOf(st standin.Status) authz.Status {
	switch st {
	case standin.StatusActive:
		return authz.Active
	case standin.StatusSuspended:
		return authz.Suspended
	}
	return authz.Inactive
}

// domainError turns an error the authorizer made into a coded domain
// error with the same sentence. Other errors (the store's, already coded,
// and internal faults) are returned as they are.
func domainError(err error) error {
	e, ok := errors.AsType[*authz.Error](err)
	if !ok {
		return err
	}
	code := standin.EInternal
	switch e.Kind {
	case authz.Invalid:
		code = standin.EInvalid
	case authz.Conflict:
		code = standin.EConflict
	case authz.NotFound:
		code = standin.ENotFound
	}
	out := &standin.Error{Code: code, Message: e.Message}
	if err != error(e) {
		out.Cause = err // it says where the error arose
	}
	return out
}

// authzPolicies converts policies to the authorizer's.
func authzPolicies(ps []standin.Policy) []authz.Policy {
	out := make([]authz.Policy, 0, len(ps))
	for _, p := range ps {
		out = append(out, authz.Policy(p))
	}
	return out
}

// authzSets turns named sets of the domain's policies into the
// authorizer's.
func authzSets(sets []access.PolicySet) []authz.PolicySet {
	out := make([]authz.PolicySet, 0, len(sets))
	for _, s := range sets {
		out = append(out, authz.PolicySet{Name: s.Name, Policies: authzPolicies(s.Policies)})
	}
	return out
}

// Policies lists the policies in force.
func (r *Authorizer) Policies() []standin.Policy {
	ps := r.a.Policies()
	out := make([]standin.Policy, 0, len(ps))
	for _, x := range ps {
		out = append(out, standin.Policy(x))
	}
	return out
}

// AddPolicy grants a policy and stores it. Errors: EInvalid for a
// malformed one, EConflict for one in force already.
func (r *Authorizer) AddPolicy(ctx context.Context, x standin.Policy) error {
	return domainError(r.a.AddPolicy(ctx, authz.Policy(x)))
}

// RemovePolicy withdraws a policy. Errors: ENotFound for one not in force,
// EConflict for the last grant of the right to change policies.
func (r *Authorizer) RemovePolicy(ctx context.Context, x standin.Policy) error {
	return domainError(r.a.RemovePolicy(ctx, authz.Policy(x)))
}

// Reload reads the policies and every user's roles, memberships and
// status from storage again, as another server may have changed them.
// Decisions keep the previous state until the new one is complete.
//
// Errors: EUnavailable when the database cannot be reached; the current
// state is kept.
func (r *Authorizer) Reload(ctx context.Context) error {
	return domainError(r.a.Reload(ctx))
}
