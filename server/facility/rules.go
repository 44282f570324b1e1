// Package facility judges bookings against a resource's own rules: the
// trainings it requires, who its access rule admits, how long a booking may
// last and in which hours of the week. Role and project permissions are
// Casbin's (package authz); this is the second stage, and every refusal
// names what is missing so a person can act on it.
package facility

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"standin/server/standin"
)

// Booking is a booking, or the intent to book, that the rules judge. Zero
// Start and End ask only whether the user could book the resource at all
// (the "bookable" answer of a resource list): time rules are then skipped.
type Booking struct {
	User      *standin.User
	Resource  *standin.Resource
	ProjectID string
	Start     time.Time
	End       time.Time
}

// Env is what judging needs besides the booking.
type Env struct {
	// Location is the facility's time zone, in which weekly hours apply.
	Location *time.Location
	// Now is the time trainings must be valid at.
	Now time.Time
	// TrainingName and ProjectCode turn ids into names for reasons; a nil
	// function or an unknown id leaves the id in the sentence.
	TrainingName func(id string) string
	ProjectCode  func(id string) string
}

// Check returns "" when the resource's rules admit the booking, and
// otherwise a sentence that names the first rule it breaks, checked in the
// order a person would fix them: project, role, trainings, length, hours.
func Check(b Booking, env Env) string {
	r, u := b.Resource, b.User
	rule := r.Rule
	if !rule.AllowsProject(b.ProjectID) {
		codes := make([]string, 0, len(rule.Projects))
		for _, id := range rule.Projects {
			codes = append(codes, quote(name(env.ProjectCode, id)))
		}
		return fmt.Sprintf("%s can only be booked in %s, not in %s.", r.Name, orList(codes), quote(name(env.ProjectCode, b.ProjectID)))
	}
	if len(rule.Roles) > 0 && !slices.Contains(rule.Roles, u.Role) {
		roles := make([]string, 0, len(rule.Roles))
		for _, role := range rule.Roles {
			roles = append(roles, quote(string(role)))
		}
		return fmt.Sprintf("%s can only be booked by the roles %s; %s has the role %s.", r.Name, orList(roles), u.Name, u.Role)
	}
	if reason := checkTrainings(u, r, env); reason != "" {
		return reason
	}
	if b.Start.IsZero() && b.End.IsZero() {
		return ""
	}
	if rule.MaxHours > 0 && b.End.Sub(b.Start) > time.Duration(rule.MaxHours*float64(time.Hour)) {
		return fmt.Sprintf("%s can be booked for at most %s at a time; this booking lasts %s.",
			r.Name, hours(time.Duration(rule.MaxHours*float64(time.Hour))), hours(b.End.Sub(b.Start)))
	}
	if len(rule.Windows) > 0 && !withinWindows(b.Start, b.End, rule.Windows, env.Location) {
		return fmt.Sprintf("%s can only be booked %s (%s time); this booking is %s.",
			r.Name, describeWindows(rule.Windows), zoneName(env.Location), describeSpan(b.Start, b.End, env.Location))
	}
	return ""
}

func checkTrainings(u *standin.User, r *standin.Resource, env Env) string {
	var missing, expired []string
	for _, id := range r.RequiredTrainings {
		rec, ok := record(u, id)
		switch {
		case !ok:
			missing = append(missing, quote(name(env.TrainingName, id)))
		case !rec.ValidAt(env.Now):
			expired = append(expired, fmt.Sprintf("%s (expired %s)", quote(name(env.TrainingName, id)), rec.ExpiresAt.In(loc(env.Location)).Format("2 Jan 2006")))
		}
	}
	switch {
	case len(missing) > 0 && len(expired) > 0:
		return fmt.Sprintf("%s requires the training %s, which %s has not completed, and %s, which has expired.",
			r.Name, andList(missing), u.Name, andList(expired))
	case len(missing) > 0:
		return fmt.Sprintf("%s requires the training %s, which %s has not completed.", r.Name, andList(missing), u.Name)
	case len(expired) > 0:
		return fmt.Sprintf("%s requires the training %s, which %s must renew: it has expired.", r.Name, andList(expired), u.Name)
	}
	return ""
}

func record(u *standin.User, trainingID string) (standin.TrainingRecord, bool) {
	for _, rec := range u.Trainings {
		if rec.TrainingID == trainingID {
			return rec, true
		}
	}
	return standin.TrainingRecord{}, false
}

// withinWindows reports whether [start, end) lies inside one window, on the
// day it starts, in the facility's time zone. A booking may not run across
// midnight or from one window into another.
func withinWindows(start, end time.Time, windows []standin.WeeklyWindow, l *time.Location) bool {
	s, e := start.In(loc(l)), end.In(loc(l))
	day := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, loc(l))
	if !e.After(s) || e.After(day.AddDate(0, 0, 1)) {
		return false
	}
	startMin := int(s.Sub(day) / time.Minute)
	endMin := int(e.Sub(day) / time.Minute)
	for _, w := range windows {
		if w.Day == s.Weekday() && startMin >= w.StartMinute && endMin <= w.EndMinute {
			return true
		}
	}
	return false
}

// describeWindows phrases windows for people: "Monday to Friday,
// 08:00–20:00" when the days share hours, otherwise day by day.
func describeWindows(ws []standin.WeeklyWindow) string {
	sorted := slices.Clone(ws)
	slices.SortFunc(sorted, func(a, b standin.WeeklyWindow) int {
		return (weekdayIndex(a.Day)*1440 + a.StartMinute) - (weekdayIndex(b.Day)*1440 + b.StartMinute)
	})
	same := true
	for _, w := range sorted[1:] {
		if w.StartMinute != sorted[0].StartMinute || w.EndMinute != sorted[0].EndMinute {
			same = false
		}
	}
	consecutive := true
	for i := 1; i < len(sorted); i++ {
		if weekdayIndex(sorted[i].Day) != weekdayIndex(sorted[i-1].Day)+1 {
			consecutive = false
		}
	}
	if same && consecutive && len(sorted) > 1 {
		return fmt.Sprintf("%s to %s, %s", sorted[0].Day, sorted[len(sorted)-1].Day, clockSpan(sorted[0]))
	}
	parts := make([]string, 0, len(sorted))
	for _, w := range sorted {
		parts = append(parts, fmt.Sprintf("%s %s", w.Day, clockSpan(w)))
	}
	return strings.Join(parts, "; ")
}

// weekdayIndex orders the week from Monday, as a facility's calendar does.
func weekdayIndex(d time.Weekday) int { return (int(d) + 6) % 7 }

func clockSpan(w standin.WeeklyWindow) string {
	return fmt.Sprintf("%02d:%02d–%02d:%02d", w.StartMinute/60, w.StartMinute%60, w.EndMinute/60, w.EndMinute%60)
}

func describeSpan(start, end time.Time, l *time.Location) string {
	s, e := start.In(loc(l)), end.In(loc(l))
	if s.YearDay() == e.YearDay() && s.Year() == e.Year() {
		return fmt.Sprintf("%s %s–%s", s.Format("Monday 2 Jan"), s.Format("15:04"), e.Format("15:04"))
	}
	return fmt.Sprintf("%s to %s", s.Format("Monday 2 Jan 15:04"), e.Format("Monday 2 Jan 15:04"))
}

func hours(d time.Duration) string {
	h := d.Hours()
	if h == float64(int(h)) {
		if h == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", int(h))
	}
	return fmt.Sprintf("%.1f hours", h)
}

func zoneName(l *time.Location) string { return loc(l).String() }

func loc(l *time.Location) *time.Location {
	if l == nil {
		return time.UTC
	}
	return l
}

func name(f func(string) string, id string) string {
	if f != nil {
		if n := f(id); n != "" {
			return n
		}
	}
	return id
}

func andList(items []string) string { return joinList(items, "and") }
func orList(items []string) string  { return joinList(items, "or") }

func quote(s string) string { return `"` + s + `"` }

func joinList(quoted []string, word string) string {
	switch len(quoted) {
	case 0:
		return ""
	case 1:
		return quoted[0]
	case 2:
		return quoted[0] + " " + word + " " + quoted[1]
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + ", " + word + " " + quoted[len(quoted)-1]
}
