package authz

import (
	"cmp"
	"slices"
	"strings"
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

// grants reports whether p grants perm to a global role everywhere.
func (p Policy) grants(perm Permission) bool {
	return p.Object == perm.Object && p.Action == perm.Action && p.Domain == GlobalDomain && globalRank(p.Role) >= 0
}

// ptype is the enforcing model's policy type that holds p.
func (p Policy) ptype() string { return bucketPTypes[bucket(p.Object, p.Action)] }

// policyFromRule converts a Casbin policy row back. Rows of the wrong
// length never reach here: the adapter rejects them on load.
func policyFromRule(r []string) Policy {
	return Policy{Role: r[0], Domain: r[1], Object: r[2], Action: r[3]}
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

// Project roles as a Subject's memberships name them.
const (
	projectMember = "member"
	projectLead   = "lead"
)

// groupingRules returns the rules that place s in its roles: its global
// role everywhere and each membership in its project. A subject that is
// not active, a subject without an id and anything unrecognised yield
// nothing, so a damaged record grants less rather than more. skipped names
// what was ignored.
func groupingRules(s *Subject) (rules [][]string, skipped []string) {
	if s == nil || s.ID == "" || s.Status != Active {
		return nil, nil
	}
	sub := userSubject(s.ID)
	if role := "role:" + s.Role; globalRank(role) >= 0 {
		rules = append(rules, []string{sub, role, GlobalDomain})
	} else {
		skipped = append(skipped, "role "+s.Role)
	}
	seen := make(map[Membership]bool, len(s.Memberships))
	for _, m := range s.Memberships {
		if m.Role != projectMember && m.Role != projectLead {
			skipped = append(skipped, "membership role "+m.Role)
			continue
		}
		if !validProjectID(m.Project) {
			skipped = append(skipped, "membership of project "+m.Project)
			continue
		}
		if seen[m] {
			continue
		}
		seen[m] = true
		rules = append(rules, []string{sub, "project:" + m.Role, m.Project})
	}
	return rules, skipped
}

// validate checks a policy given at run time. It returns an Invalid error
// whose message says what is wrong.
func (p Policy) validate() error {
	if p.Role == "" || p.Domain == "" || p.Object == "" || p.Action == "" {
		return errorf(Invalid,
			"A policy needs a role, a domain (%q or a project id), an object and an action.", GlobalDomain)
	}
	if !slices.Contains(policyRoles, p.Role) {
		return errorf(Invalid, "The role %q is unknown; use one of %s.",
			p.Role, strings.Join(policyRoles, ", "))
	}
	if p.Domain != GlobalDomain && !validProjectID(p.Domain) {
		return errorf(Invalid,
			"The domain %q is neither %q nor a project id (letters, digits, '.', '_', ':' or '-').",
			p.Domain, GlobalDomain)
	}
	if !validName(p.Object) {
		return errorf(Invalid,
			"The object %q is not a valid name (lower-case letters, digits, '.', '_' or '-', starting with a letter).", p.Object)
	}
	if !validName(p.Action) {
		return errorf(Invalid,
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
