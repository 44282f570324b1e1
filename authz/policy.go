package authz

import (
	"cmp"
	"slices"
	"strings"

	"standin/server/standin"
)

// GlobalDomain is the domain of requests and rules that are not about one
// project. A grouping rule in it holds in every project; a policy in it
// applies in every domain where the subject holds the policy's role.
const GlobalDomain = "*"

// Roles a policy can grant to. The global roles are held in GlobalDomain and
// inherit downwards by rank (an admin holds everything a manager holds); the
// project roles are held in one project's domain, and a lead is also a
// member.
const (
	RoleUser          = "role:user"
	RoleSupport       = "role:support"
	RoleManager       = "role:manager"
	RoleAdmin         = "role:admin"
	RoleOwner         = "role:owner"
	RoleProjectMember = "project:member"
	RoleProjectLead   = "project:lead"
)

// policyRoles lists every role a policy may name, in the order error
// messages present them.
var policyRoles = []string{
	RoleUser, RoleSupport, RoleManager, RoleAdmin, RoleOwner,
	RoleProjectMember, RoleProjectLead,
}

// Object kinds that policies are about. Callers pass them to Check.
const (
	ObjectUser           = standin.KindUser           // other users' accounts
	ObjectUserAccess     = standin.KindUserAccess     // explaining a decision for another user
	ObjectProject        = standin.KindProject        // the projects of the facility
	ObjectResource       = standin.KindResource       // instruments and rooms
	ObjectBooking        = standin.KindBooking        // making a booking in a project
	ObjectBookingOwn     = standin.KindBookingOwn     // the subject's own bookings
	ObjectBookingProject = standin.KindBookingProject // every booking of one project
	ObjectBookingAny     = standin.KindBookingAny     // someone else's booking
	ObjectProfile        = standin.KindProfile        // the subject's own profile
	ObjectPassword       = standin.KindPassword       // the subject's own password
	ObjectPolicy         = standin.KindPolicy         // these policies
	ObjectImpersonation  = standin.KindImpersonation  // impersonation sessions
	ObjectActivity       = standin.KindActivity       // the audit trail
)

// Actions on objects.
const (
	ActionList   = standin.ActList
	ActionRead   = standin.ActRead
	ActionCheck  = standin.ActCheck
	ActionCreate = standin.ActCreate
	ActionCancel = standin.ActCancel
	ActionUpdate = standin.ActUpdate
	ActionChange = standin.ActChange
	ActionStart  = standin.ActStart
	ActionRevoke = standin.ActRevoke
	// ActionSuspend suspends an account.
	ActionSuspend = standin.ActSuspend
)

// Policy grants Action on Object to everyone holding Role in Domain.
// Domain is GlobalDomain or a project id.
type Policy struct {
	Role   string
	Domain string
	Object string
	Action string
}

// String formats p the way Casbin writes a policy line.
func (p Policy) String() string {
	return "p, " + p.Role + ", " + p.Domain + ", " + p.Object + ", " + p.Action
}

// rule is p as a Casbin policy row: sub, dom, obj, act.
func (p Policy) rule() []string { return []string{p.Role, p.Domain, p.Object, p.Action} }

// governsPolicies reports whether p lets a global role change policies: the
// last such policy must stay, or nobody could repair the policies.
func (p Policy) governsPolicies() bool {
	return p.Object == ObjectPolicy && p.Action == ActionUpdate && p.Domain == GlobalDomain && globalRank(p.Role) >= 0
}

// ptype is the enforcing model's policy type that holds p.
func (p Policy) ptype() string { return bucketPTypes[bucket(p.Object, p.Action)] }

// policyFromRule converts a Casbin policy row back. Rows of the wrong
// length never reach here: the adapter rejects them on load.
func policyFromRule(r []string) Policy {
	return Policy{Role: r[0], Domain: r[1], Object: r[2], Action: r[3]}
}

// DefaultPolicies returns the policies a new installation starts with.
func DefaultPolicies() []Policy {
	g := func(role, object string, actions ...string) []Policy {
		out := make([]Policy, 0, len(actions))
		for _, a := range actions {
			out = append(out, Policy{Role: role, Domain: GlobalDomain, Object: object, Action: a})
		}
		return out
	}
	return slices.Concat(
		g(RoleSupport, ObjectUser, ActionList, ActionRead),
		g(RoleAdmin, ObjectUser, ActionSuspend),
		g(RoleSupport, ObjectUserAccess, ActionCheck),
		g(RoleUser, ObjectProject, ActionList),
		g(RoleUser, ObjectResource, ActionList),
		g(RoleProjectMember, ObjectBooking, ActionCreate),
		g(RoleUser, ObjectBookingOwn, ActionList, ActionCancel),
		g(RoleProjectLead, ObjectBookingProject, ActionList),
		g(RoleAdmin, ObjectBookingProject, ActionList),
		g(RoleProjectLead, ObjectBookingAny, ActionCancel),
		g(RoleAdmin, ObjectBookingAny, ActionCancel),
		g(RoleUser, ObjectProfile, ActionRead, ActionUpdate),
		g(RoleUser, ObjectPassword, ActionChange),
		g(RoleAdmin, ObjectPolicy, ActionList, ActionUpdate),
		g(RoleSupport, ObjectImpersonation, ActionStart),
		g(RoleAdmin, ObjectImpersonation, ActionRevoke),
		g(RoleProjectLead, ObjectImpersonation, ActionRevoke),
		g(RoleAdmin, ObjectActivity, ActionList),
		g(RoleProjectLead, ObjectActivity, ActionList),
	)
}

// inheritanceRules are the fixed grouping rules: each global rank holds the
// one below it everywhere, and a project lead is a member of the project.
func inheritanceRules() [][]string {
	return [][]string{
		{RoleSupport, RoleUser, GlobalDomain},
		{RoleManager, RoleSupport, GlobalDomain},
		{RoleAdmin, RoleManager, GlobalDomain},
		{RoleOwner, RoleAdmin, GlobalDomain},
		{RoleProjectLead, RoleProjectMember, GlobalDomain},
	}
}

// userSubject is the Casbin subject of a user.
func userSubject(id string) string { return "user:" + id }

// groupingRules returns the rules that place u in its roles: its global
// role everywhere and each membership in its project. A suspended user, a
// user without an id and anything unrecognised yield nothing, so a damaged
// document grants less rather than more. skipped names what was ignored.
func groupingRules(u *standin.User) (rules [][]string, skipped []string) {
	if u == nil || u.ID == "" || !u.Active() {
		return nil, nil
	}
	sub := userSubject(u.ID)
	if u.Role.Valid() {
		rules = append(rules, []string{sub, "role:" + string(u.Role), GlobalDomain})
	} else {
		skipped = append(skipped, "role "+string(u.Role))
	}
	seen := make(map[[2]string]bool, len(u.Memberships))
	for _, m := range u.Memberships {
		if m.Role != standin.ProjectMember && m.Role != standin.ProjectLead {
			skipped = append(skipped, "membership role "+string(m.Role))
			continue
		}
		if !validProjectID(m.ProjectID) {
			skipped = append(skipped, "membership of project "+m.ProjectID)
			continue
		}
		k := [2]string{m.ProjectID, string(m.Role)}
		if seen[k] {
			continue
		}
		seen[k] = true
		rules = append(rules, []string{sub, "project:" + string(m.Role), m.ProjectID})
	}
	return rules, skipped
}

// validate checks a policy given at run time. It returns an EInvalid error
// whose message says what is wrong.
func (p Policy) validate() error {
	if p.Role == "" || p.Domain == "" || p.Object == "" || p.Action == "" {
		return standin.Errorf(standin.EInvalid,
			"A policy needs a role, a domain (%q or a project id), an object and an action.", GlobalDomain)
	}
	if !slices.Contains(policyRoles, p.Role) {
		return standin.Errorf(standin.EInvalid, "The role %q is unknown; use one of %s.",
			p.Role, strings.Join(policyRoles, ", "))
	}
	if p.Domain != GlobalDomain && !validProjectID(p.Domain) {
		return standin.Errorf(standin.EInvalid,
			"The domain %q is neither %q nor a project id (letters, digits, '.', '_', ':' or '-').",
			p.Domain, GlobalDomain)
	}
	if !validName(p.Object) {
		return standin.Errorf(standin.EInvalid,
			"The object %q is not a valid name (lower-case letters, digits, '.', '_' or '-', starting with a letter).", p.Object)
	}
	if !validName(p.Action) {
		return standin.Errorf(standin.EInvalid,
			"The action %q is not a valid name (lower-case letters, digits, '.', '_' or '-', starting with a letter).", p.Action)
	}
	return nil
}

// validName reports whether s is an object or action name.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validProjectID reports whether s can be a project's domain. It excludes
// "*" and every other pattern character: the domain matcher would read a
// project id containing one as a pattern and widen the grant.
func validProjectID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// sortPolicies orders policies by object, action, domain and role, the
// order in which people read them.
func sortPolicies(ps []Policy) {
	slices.SortFunc(ps, func(a, b Policy) int {
		return cmp.Or(
			cmp.Compare(a.Object, b.Object),
			cmp.Compare(a.Action, b.Action),
			cmp.Compare(a.Domain, b.Domain),
			cmp.Compare(a.Role, b.Role),
		)
	})
}
