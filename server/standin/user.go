package standin

import (
	"strings"
	"time"
)

// Role is a global rank. Ranks are ordered: a higher role outranks every
// lower one, which is what impersonation rules compare.
type Role string

// The global roles, lowest first.
const (
	RoleUser    Role = "user"
	RoleSupport Role = "support"
	RoleManager Role = "manager"
	RoleAdmin   Role = "admin"
	RoleOwner   Role = "owner"
)

// Roles lists every global role, lowest rank first.
var Roles = []Role{RoleUser, RoleSupport, RoleManager, RoleAdmin, RoleOwner}

// Rank returns the role's position in Roles, or -1 for an unknown role, so
// an unknown role never outranks anyone.
func (r Role) Rank() int {
	for i, known := range Roles {
		if r == known {
			return i
		}
	}
	return -1
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.Rank() >= 0 }

// Status says whether an account may be used.
type Status string

// Account statuses.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// ProjectRole is a user's role inside one project.
type ProjectRole string

// Project roles.
const (
	ProjectMember ProjectRole = "member"
	ProjectLead   ProjectRole = "lead"
)

// Membership places a user in a project.
type Membership struct {
	ProjectID string
	Role      ProjectRole
}

// TrainingRecord says a user completed a training, and until when it counts.
// A zero ExpiresAt never expires.
type TrainingRecord struct {
	TrainingID  string
	CompletedAt time.Time
	ExpiresAt   time.Time
}

// ValidAt reports whether the record counts at time t.
func (r TrainingRecord) ValidAt(t time.Time) bool {
	return r.ExpiresAt.IsZero() || t.Before(r.ExpiresAt)
}

// User is a person with an account. PasswordHash is an encoded hash and
// never leaves the server.
type User struct {
	ID           string
	Name         string
	Email        string
	PasswordHash string
	Role         Role
	Status       Status
	Memberships  []Membership
	Trainings    []TrainingRecord
	// Personal is what the facility keeps about the person for safety
	// records; most of it is masked to everyone but them.
	Personal  PersonalData `json:"-"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Active reports whether the account may sign in and act.
func (u *User) Active() bool { return u.Status == StatusActive }

// ProjectIDs lists the projects u is a member of, in membership order.
func (u *User) ProjectIDs() []string {
	ids := make([]string, 0, len(u.Memberships))
	for _, m := range u.Memberships {
		ids = append(ids, m.ProjectID)
	}
	return ids
}

// NormalizeEmail folds an address to the form accounts are stored and looked
// up by, so that "Ada@Example.org " finds ada@example.org.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}
