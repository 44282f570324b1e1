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
	out := standin.Permissions{Activity: standin.ScopeNone, Revoke: standin.ScopeNone}
	if p == nil || p.Subject == nil {
		return out, nil
	}
	checks := []permission{
		{&out.CheckAccess, standin.ActCheck, standin.KindUserAccess},
		{&out.Suspend, standin.ActSuspend, standin.KindUser},
		{&out.Policies, standin.ActList, standin.KindPolicy},
		{&out.EditPolicies, standin.ActUpdate, standin.KindPolicy},
	}
	if p.Impersonation == nil {
		// Impersonations do not nest, and the directory is where staff
		// look at users as themselves, seen by each other.
		checks = append(checks,
			permission{&out.Impersonate, standin.ActStart, standin.KindImpersonation},
			permission{&out.Directory, standin.ActList, standin.KindUser})
	}
	for _, c := range checks {
		dec, err := d.Decide(ctx, p, c.action, standin.Object{Kind: c.kind}, "")
		if err != nil {
			return standin.Permissions{}, err
		}
		*c.to = dec.Allowed
	}
	projects := p.Subject.ProjectIDs()
	activity, err := d.Scope(ctx, p, standin.ActList, standin.KindActivity, projects)
	if err != nil {
		return standin.Permissions{}, err
	}
	revoke, err := d.Scope(ctx, p, standin.ActRevoke, standin.KindImpersonation, projects)
	if err != nil {
		return standin.Permissions{}, err
	}
	out.Activity, out.Revoke = standin.ScopeName(activity), standin.ScopeName(revoke)
	return out, nil
}
