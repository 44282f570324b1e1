package access

import (
	"slices"

	"standin/server/standin"
)

// The roles policies grant to, as the authorizer names them and the
// policy API spells them. The authorizer refuses default policies naming
// any other, so a misspelling stops the server at start-up.
const (
	roleUser          = "role:user"
	roleSupport       = "role:support"
	roleAdmin         = "role:admin"
	roleProjectMember = "project:member"
	roleProjectLead   = "project:lead"
)

// DefaultPolicies returns the policies a new installation starts with:
// what each role may do until an administrator changes it. Every policy
// holds in every project ("*").
func DefaultPolicies() []standin.Policy {
	g := grant
	return slices.Concat(
		g(roleSupport, standin.KindUser, standin.ActList, standin.ActRead),
		g(roleAdmin, standin.KindUser, standin.ActSuspend),
		g(roleSupport, standin.KindUserAccess, standin.ActCheck),
		g(roleUser, standin.KindProject, standin.ActList),
		g(roleUser, standin.KindResource, standin.ActList),
		g(roleProjectMember, standin.KindBooking, standin.ActCreate),
		g(roleUser, standin.KindBookingOwn, standin.ActList, standin.ActCancel),
		g(roleProjectLead, standin.KindBookingProject, standin.ActList),
		g(roleAdmin, standin.KindBookingProject, standin.ActList),
		g(roleProjectLead, standin.KindBookingAny, standin.ActCancel),
		g(roleAdmin, standin.KindBookingAny, standin.ActCancel),
		g(roleUser, standin.KindProfile, standin.ActRead, standin.ActUpdate),
		g(roleUser, standin.KindPassword, standin.ActChange),
		g(roleAdmin, standin.KindPolicy, standin.ActList, standin.ActUpdate),
		g(roleSupport, standin.KindImpersonation, standin.ActStart),
		g(roleAdmin, standin.KindImpersonation, standin.ActRevoke),
		g(roleProjectLead, standin.KindImpersonation, standin.ActRevoke),
		g(roleAdmin, standin.KindActivity, standin.ActList),
		g(roleProjectLead, standin.KindActivity, standin.ActList),
		modesPolicies(),
		moderationPolicies(),
		sinkPolicies(),
		alertPolicies(),
	)
}

// grant returns the policies giving role the actions on object in every
// project.
func grant(role, object string, actions ...string) []standin.Policy {
	out := make([]standin.Policy, 0, len(actions))
	for _, a := range actions {
		out = append(out, standin.Policy{Role: role, Domain: "*", Object: object, Action: a})
	}
	return out
}

// modesPolicies are the rights the impersonation modes added: the
// settings for admins, a user's own consent, approving requests.
func modesPolicies() []standin.Policy {
	return slices.Concat(
		grant(roleAdmin, standin.KindSettings, standin.ActRead, standin.ActUpdate),
		grant(roleUser, standin.KindConsent, standin.ActRespond, standin.ActGrant),
		grant(roleAdmin, standin.KindImpersonation, standin.ActApprove),
		grant(roleProjectLead, standin.KindImpersonation, standin.ActApprove),
	)
}

// moderationPolicies are the rights moderated sessions added: admins and
// project leads watch them.
func moderationPolicies() []standin.Policy {
	return slices.Concat(
		grant(roleAdmin, standin.KindImpersonation, standin.ActModerate),
		grant(roleProjectLead, standin.KindImpersonation, standin.ActModerate),
	)
}

// sinkPolicies are the rights the audit log's sinks added: admins keep
// them.
func sinkPolicies() []standin.Policy {
	return grant(roleAdmin, standin.KindSink, standin.ActList, standin.ActUpdate)
}

// alertPolicies are the rights the alerts added: admins everywhere and
// project leads in their projects see and acknowledge them.
func alertPolicies() []standin.Policy {
	return slices.Concat(
		grant(roleAdmin, standin.KindAlert, standin.ActList, standin.ActAcknowledge),
		grant(roleProjectLead, standin.KindAlert, standin.ActList, standin.ActAcknowledge),
	)
}

// PolicySet is a named set of default policies.
type PolicySet struct {
	Name     string
	Policies []standin.Policy
}

// PolicyAdditions are the sets of DefaultPolicies that came after the
// first installations: an installation seeded before a set existed gets
// it once, at its first start that knows it.
func PolicyAdditions() []PolicySet {
	return []PolicySet{
		{Name: "impersonation-modes", Policies: modesPolicies()},
		{Name: "impersonation-moderation", Policies: moderationPolicies()},
		{Name: "audit-sinks", Policies: sinkPolicies()},
		{Name: "alerts", Policies: alertPolicies()},
	}
}
