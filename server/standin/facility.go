package standin

import (
	"slices"
	"time"
)

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

// AllowsProject reports whether the rule lets the resource be booked in
// project: any project when it names none.
func (r AccessRule) AllowsProject(project string) bool {
	return len(r.Projects) == 0 || slices.Contains(r.Projects, project)
}

// WeeklyWindow is a span of one weekday, in minutes after midnight in the
// facility's time zone: StartMinute inclusive, EndMinute exclusive.
type WeeklyWindow struct {
	Day         time.Weekday
	StartMinute int
	EndMinute   int
}

// BookingStatus is where a booking stands.
type BookingStatus string

// Booking statuses. A pending booking is being written and is not yet
// visible as taken; it never survives a restart.
const (
	BookingPending    BookingStatus = "pending"
	BookingConfirmed  BookingStatus = "confirmed"
	BookingCancelling BookingStatus = "cancelling"
	BookingCancelled  BookingStatus = "cancelled"
)

// BookingSlot is the granularity of bookings: they start and end on
// multiples of it, which is what makes overlap checks exact and atomic.
const BookingSlot = 15 * time.Minute

// MaxBooking bounds a booking's length whatever a resource allows: longer
// requests are mistakes, not plans.
const MaxBooking = 14 * 24 * time.Hour

// ValidateBookingTimes says whether a booking from start to end may be
// asked for at now: it ends after it starts, lasts at most MaxBooking,
// does not start before the slot now falls in, and starts and ends on
// BookingSlot boundaries. It returns nil or an EInvalid error saying the
// first rule broken, in that order.
func ValidateBookingTimes(start, end, now time.Time) error {
	if err := validateBookingLength(start, end); err != nil {
		return err
	}
	if start.Before(now.Truncate(BookingSlot)) {
		return Errorf(EInvalid, "The booking starts in the past.")
	}
	return validateBookingSlots(start, end)
}

// ValidateBookingSpan is ValidateBookingTimes without the rule about the
// past: the rules any stored booking obeys, whenever it was made. It
// returns nil or an EInvalid error.
func ValidateBookingSpan(start, end time.Time) error {
	if err := validateBookingLength(start, end); err != nil {
		return err
	}
	return validateBookingSlots(start, end)
}

func validateBookingLength(start, end time.Time) error {
	switch {
	case !end.After(start):
		return Errorf(EInvalid, "The booking must end after it starts.")
	case end.Sub(start) > MaxBooking:
		return Errorf(EInvalid, "A booking can last at most 14 days.")
	}
	return nil
}

func validateBookingSlots(start, end time.Time) error {
	if start.Truncate(BookingSlot) != start || end.Truncate(BookingSlot) != end {
		return Errorf(EInvalid, "Bookings start and end on a quarter hour (:00, :15, :30 or :45).")
	}
	return nil
}

// Booking reserves a resource for a user in a project. CreatedBy is the
// person who made it (an administrator when made under impersonation, with
// ImpersonationID set); UserID is whose booking it is.
type Booking struct {
	ID              string
	ResourceID      string
	UserID          string
	ProjectID       string
	Start           time.Time
	End             time.Time
	Status          BookingStatus
	CreatedBy       string
	ImpersonationID string
	CreatedAt       time.Time
	CancelledAt     time.Time
	CancelledBy     string
}

// BookingFilter selects bookings; empty fields do not filter.
type BookingFilter struct {
	UserID     string
	ProjectID  string
	ResourceID string
	Status     BookingStatus
}

// Page asks for one page of a list: at most Limit items after Cursor (an
// opaque value from the previous page; empty for the first page).
type Page struct {
	Cursor string
	Limit  int
}
