package standin

import "time"

// Project is a scope that bookings are made in and that memberships grant.
type Project struct {
	ID   string
	Code string
	Name string
}

// Training is a course a user must have completed to use some resources.
// ValidFor is how long a completion counts; zero means it never expires.
type Training struct {
	ID       string
	Name     string
	ValidFor time.Duration
}

// Resource is an instrument or a room that can be booked.
type Resource struct {
	ID                string
	Name              string
	Kind              string
	RequiredTrainings []string // training IDs
	Rule              AccessRule
}

// AccessRule says who may book a resource and within which limits. Empty
// Roles or Projects mean no restriction on that dimension; a zero MaxHours
// means no limit; empty Windows means any time of the week.
type AccessRule struct {
	Roles    []Role
	Projects []string // project IDs
	MaxHours float64
	Windows  []WeeklyWindow
}

// WeeklyWindow is a span of one weekday, in minutes after midnight in the
// facility's time zone: StartMinute inclusive, EndMinute exclusive.
type WeeklyWindow struct {
	Day         time.Weekday
	StartMinute int
	EndMinute   int
}
