package standin

import (
	"fmt"
	"time"
)

// Alert rules: what makes a session, an agent or a user suspicious.
const (
	// RuleOffHours: a session started outside the facility's hours.
	RuleOffHours = "off_hours"
	// RulePrivilegedTarget: a session on someone of a staff role.
	RulePrivilegedTarget = "privileged_target"
	// RuleRefusals: many refusals within minutes in one session.
	RuleRefusals = "refusals"
	// RuleLongSession: a session running longer than a bound.
	RuleLongSession = "long_session"
	// RuleAgentStarts: one agent starting many sessions within an hour.
	RuleAgentStarts = "agent_starts"
	// RuleRepeatedTarget: one user impersonated many times within a day.
	RuleRepeatedTarget = "repeated_target"
)

// AlertRules are the thresholds of the alert rules, set with the
// impersonation settings. Zero values are the defaults.
type AlertRules struct {
	// DayStart and DayEnd bound the facility's hours, in minutes after
	// midnight in its time zone, Monday to Friday (08:00–20:00).
	DayStart, DayEnd int
	// Refusals within RefusalMinutes in one session raise an alert (5
	// in 10).
	Refusals, RefusalMinutes int
	// LongMinutes: a session running longer raises an alert (120).
	LongMinutes int
	// StartsPerHour: an agent starting more sessions within an hour
	// raises an alert (10).
	StartsPerHour int
	// RepeatsPerDay: a user impersonated more times within 24 hours
	// raises an alert (3).
	RepeatsPerDay int
}

// Defaults of AlertRules.
const (
	DefaultDayStart       = 8 * 60
	DefaultDayEnd         = 20 * 60
	DefaultRefusals       = 5
	DefaultRefusalMinutes = 10
	DefaultLongMinutes    = 120
	DefaultStartsPerHour  = 10
	DefaultRepeatsPerDay  = 3
)

// WithDefaults fills the zero thresholds with the defaults.
func (r AlertRules) WithDefaults() AlertRules {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	// The hours are set together: a start at midnight (0) is a start,
	// once an end is set.
	if r.DayStart == 0 && r.DayEnd == 0 {
		r.DayStart, r.DayEnd = DefaultDayStart, DefaultDayEnd
	}
	def(&r.Refusals, DefaultRefusals)
	def(&r.RefusalMinutes, DefaultRefusalMinutes)
	def(&r.LongMinutes, DefaultLongMinutes)
	def(&r.StartsPerHour, DefaultStartsPerHour)
	def(&r.RepeatsPerDay, DefaultRepeatsPerDay)
	return r
}

// Check validates thresholds (with their defaults filled in).
func (r AlertRules) Check() error {
	switch {
	case r.DayStart < 0 || r.DayEnd > 24*60 || r.DayStart >= r.DayEnd:
		return Errorf(EInvalid, "The facility's hours start before they end, within one day.")
	case r.Refusals < 1 || r.Refusals > 1000 || r.RefusalMinutes < 1 || r.RefusalMinutes > 24*60:
		return Errorf(EInvalid, "Refusals in a session: 1 to 1000, within 1 to 1440 minutes.")
	case r.LongMinutes < 1 || r.LongMinutes > 7*24*60:
		return Errorf(EInvalid, "A long session is 1 minute to 7 days.")
	case r.StartsPerHour < 1 || r.StartsPerHour > 1000 || r.RepeatsPerDay < 1 || r.RepeatsPerDay > 1000:
		return Errorf(EInvalid, "Sessions an hour per agent and a day per user: 1 to 1000.")
	}
	return nil
}

// InHours reports whether t, in loc, falls in the facility's hours.
func (r AlertRules) InHours(t time.Time, loc *time.Location) bool {
	t = t.In(loc)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	return m >= r.DayStart && m < r.DayEnd
}

// Changes says in words what differs from old, "" when nothing does.
func (r AlertRules) Changes(old AlertRules) []string {
	var out []string
	add := func(what string, a, b int) {
		if a != b {
			out = append(out, fmt.Sprintf("%s %d → %d", what, a, b))
		}
	}
	add("alert: hours start (min)", old.DayStart, r.DayStart)
	add("alert: hours end (min)", old.DayEnd, r.DayEnd)
	add("alert: refusals", old.Refusals, r.Refusals)
	add("alert: refusal minutes", old.RefusalMinutes, r.RefusalMinutes)
	add("alert: long session minutes", old.LongMinutes, r.LongMinutes)
	add("alert: sessions an hour per agent", old.StartsPerHour, r.StartsPerHour)
	add("alert: sessions a day per user", old.RepeatsPerDay, r.RepeatsPerDay)
	return out
}

// Alert is one raised alert: a rule's condition, met once.
type Alert struct {
	// ID names the condition ("refusals:<session>"): an alert is
	// raised once per ID.
	ID              string
	Rule            string
	Words           string
	Actor           EventUser
	Subject         EventUser
	ImpersonationID string
	Projects        []string
	RaisedAt        time.Time
	// Seq is the seq of its alert.raised event; 0 until it is written.
	Seq int64
	// Acknowledged is set once someone acknowledged it, with a note.
	AckedAt time.Time
	AckedBy EventUser
	AckNote string
}
