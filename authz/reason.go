package authz

import (
	"strconv"
	"strings"
)

// grantKey indexes policies by what they grant.
type grantKey struct{ object, action string }

// indexGrants groups policies by object and action, for explaining denials.
func indexGrants(ps []Policy) map[grantKey][]Policy {
	idx := make(map[grantKey][]Policy)
	for _, p := range ps {
		k := grantKey{p.Object, p.Action}
		idx[k] = append(idx[k], p)
	}
	return idx
}

// globalRank returns the rank of a global policy role, or -1.
func globalRank(role string) int {
	switch role {
	case RoleUser:
		return 0
	case RoleSupport:
		return 1
	case RoleManager:
		return 2
	case RoleAdmin:
		return 3
	case RoleOwner:
		return 4
	}
	return -1
}

// rolePhrase names a global role for people. Every rank but the highest is
// also held by the ranks above it, and the phrase says so.
func rolePhrase(role string) string {
	name := strconv.Quote(strings.TrimPrefix(role, "role:"))
	if role == RoleOwner {
		return "the role " + name
	}
	return "the role " + name + " or higher"
}

// denyReason says what would have granted action on object in dom, from
// the policies that grant it (grants holds every policy for that object and
// action, in any domain).
func denyReason(grants []Policy, dom, object, action string) string {
	lowest := -1 // lowest global rank that grants it here
	var lowestRole string
	var member, lead, other bool
	for _, p := range grants {
		if p.Domain != GlobalDomain && p.Domain != dom {
			continue
		}
		switch r := globalRank(p.Role); {
		case r >= 0:
			if lowest < 0 || r < lowest {
				lowest, lowestRole = r, p.Role
			}
		case p.Role == RoleProjectMember:
			member = true
		case p.Role == RoleProjectLead:
			lead = true
		default:
			other = true
		}
	}

	// The global scope holds no project roles, so they cannot grant there.
	if dom == GlobalDomain {
		var within string
		switch {
		case member:
			within = "membership of the project (member or lead)"
		case lead:
			within = "being lead of the project"
		}
		switch {
		case lowest >= 0 && within != "":
			return "requires " + rolePhrase(lowestRole) + "; within a project, " + within + " also grants it"
		case lowest >= 0:
			return "requires " + rolePhrase(lowestRole)
		case within != "":
			return "can only be done within a project, and requires " + within
		}
	} else {
		var parts []string
		switch {
		case member:
			parts = append(parts, "membership of this project (member or lead)")
		case lead:
			parts = append(parts, "being lead of this project")
		}
		if lowest >= 0 {
			parts = append(parts, rolePhrase(lowestRole))
		}
		if len(parts) > 0 {
			return "requires " + strings.Join(parts, ", or ")
		}
	}
	if other {
		return "no role you hold grants " + strconv.Quote(action) + " on " + strconv.Quote(object)
	}
	return "no policy grants " + strconv.Quote(action) + " on " + strconv.Quote(object)
}

// allowReason names the policy that granted a request, from the row Casbin
// reports as matched: sub, dom, obj, act.
func allowReason(row []string) string {
	if len(row) != 4 {
		return "granted by policy"
	}
	p := policyFromRule(row)
	var s string
	switch {
	case globalRank(p.Role) >= 0:
		s = "granted to role " + strconv.Quote(strings.TrimPrefix(p.Role, "role:"))
	case p.Role == RoleProjectMember:
		s = "granted to members of this project"
	case p.Role == RoleProjectLead:
		s = "granted to the lead of this project"
	default:
		return "granted by policy " + strconv.Quote(p.String())
	}
	if p.Domain != GlobalDomain && globalRank(p.Role) >= 0 {
		s += " in this project"
	}
	return s
}
