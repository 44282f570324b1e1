package access

import (
	"context"

	"standin/server/standin"
)

// permission is one global yes-or-no of Permissions: the action on a kind.
type permission struct {
	to     *bool
	action string
	kind   string
}

// Permissions decides, for each thing the console offers, whether p may
// do it: the answer the console draws its pages and menus from, so that
// it follows the policies in force rather than guessing from role names.
// An error means a decision could not be made.
func (d *Decider) Permissions(ctx context.Context, p *standin.Principal) (standin.Permissions, error) {
	out := standin.Permissions{Activity: standin.ScopeNone, Revoke: standin.ScopeNone, Approve: standin.ScopeNone, Moderate: standin.ScopeNone}
	if p == nil || p.Subject == nil {
		return out, nil
	}
	checks := []permission{
		{&out.CheckAccess, standin.ActCheck, standin.KindUserAccess},
		{&out.Suspend, standin.ActSuspend, standin.KindUser},
		{&out.Policies, standin.ActList, standin.KindPolicy},
		{&out.EditPolicies, standin.ActUpdate, standin.KindPolicy},
		{&out.Settings, standin.ActRead, standin.KindSettings},
		{&out.EditSettings, standin.ActUpdate, standin.KindSettings},
	}
	staff, err := d.Staff(ctx, p)
	if err != nil {
		return standin.Permissions{}, err
	}
	if staff {
		// The directory lists users for staff; impersonations do not nest.
		// The audit sinks are an administrator's own page: none while
		// acting as someone else.
		checks = append(checks,
			permission{&out.Impersonate, standin.ActStart, standin.KindImpersonation},
			permission{&out.Directory, standin.ActList, standin.KindUser},
			permission{&out.Sinks, standin.ActList, standin.KindSink},
			permission{&out.EditSinks, standin.ActUpdate, standin.KindSink})
	}
	for _, c := range checks {
		dec, err := d.Decide(ctx, p, c.action, standin.Object{Kind: c.kind}, "")
		if err != nil {
			return standin.Permissions{}, err
		}
		*c.to = dec.Allowed
	}
	activity, err := d.ActivityScope(ctx, p)
	if err != nil {
		return standin.Permissions{}, err
	}
	revoke, err := d.Scope(ctx, p, standin.ActRevoke, standin.KindImpersonation, p.Subject.ProjectIDs())
	if err != nil {
		return standin.Permissions{}, err
	}
	out.Activity, out.Revoke = standin.ScopeName(activity), standin.ScopeName(revoke)
	if staff {
		approve, err := d.Scope(ctx, p, standin.ActApprove, standin.KindImpersonation, p.Subject.ProjectIDs())
		if err != nil {
			return standin.Permissions{}, err
		}
		out.Approve = standin.ScopeName(approve)
		moderate, err := d.Scope(ctx, p, standin.ActModerate, standin.KindImpersonation, p.Subject.ProjectIDs())
		if err != nil {
			return standin.Permissions{}, err
		}
		out.Moderate = standin.ScopeName(moderate)
	}
	return out, nil
}

// Staff reports whether p works as support staff: looks users up and is
// seen doing so (presence). Nobody does while impersonating: an agent
// acting as a user sees what that user would.
func (d *Decider) Staff(ctx context.Context, p *standin.Principal) (bool, error) {
	if p == nil || p.Subject == nil || p.Impersonation != nil {
		return false, nil
	}
	dec, err := d.Decide(ctx, p, standin.ActRead, standin.Object{Kind: standin.KindUser}, "")
	return dec.Allowed, err
}

// ActivityScope says which part of the activity log p may read: all of
// it, or the events of the projects (among p's own) where p may list
// activity. The activity page, its live feed and the console's menus ask
// this.
func (d *Decider) ActivityScope(ctx context.Context, p *standin.Principal) (standin.Scope, error) {
	return d.Scope(ctx, p, standin.ActList, standin.KindActivity, p.Subject.ProjectIDs())
}
