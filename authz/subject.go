package authz

// Subject is whoever a decision is about: a user of the caller's, known by
// id, with the roles the caller's user record gives it.
type Subject struct {
	// ID identifies the subject; a subject without one holds no role.
	ID string
	// Role is the global role, one of "user", "support", "manager",
	// "admin" and "owner" (lowest rank first); any other grants nothing.
	Role string
	// Memberships place the subject in projects.
	Memberships []Membership
	// Status says whether the subject may act at all.
	Status Status
}

// Membership places a subject in a project with a role there: "member" or
// "lead" (a lead is also a member). Any other role grants nothing.
type Membership struct {
	Project string
	Role    string
}

// Status says whether a subject may act. The zero value, Inactive, denies
// everything, so a subject whose status was never set is refused.
type Status int

// Subject statuses.
const (
	// Inactive: the account may not act, for a reason other than
	// suspension (an unknown status).
	Inactive Status = iota
	// Active: the account may act within its roles.
	Active
	// Suspended: the account was suspended and may not act.
	Suspended
)

// Decision is the outcome of Check. Reason is a sentence fragment for
// people: when allowed it names the granting rule (`granted to role
// "user"`), when denied what is missing (`requires the role "support" or
// higher`).
type Decision struct {
	Allowed bool
	Reason  string
}

// Permission names an action on an object, as a policy grants it.
type Permission struct {
	Object string
	Action string
}
