package facility

import (
	"strings"
	"testing"
	"time"

	"standin/server/standin"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	names := map[string]string{"laser": "Laser Safety", "basics": "Confocal Basics", "neuro": "NEURO", "cell": "CELL"}
	env := Env{Location: time.UTC, Now: now, TrainingName: func(id string) string { return names[id] }, ProjectCode: func(id string) string { return names[id] }}

	var weekdays []standin.WeeklyWindow
	for d := time.Monday; d <= time.Friday; d++ {
		weekdays = append(weekdays, standin.WeeklyWindow{Day: d, StartMinute: 8 * 60, EndMinute: 20 * 60})
	}
	confocal := &standin.Resource{Name: "Confocal LSM 900", RequiredTrainings: []string{"laser", "basics"},
		Rule: standin.AccessRule{Projects: []string{"neuro"}, MaxHours: 4, Windows: weekdays}}
	flow := &standin.Resource{Name: "Flow Cytometer", Rule: standin.AccessRule{Projects: []string{"cell"}}}
	staffOnly := &standin.Resource{Name: "Cold Room", Rule: standin.AccessRule{Roles: []standin.Role{standin.RoleSupport, standin.RoleAdmin}}}

	valid := func(id string) standin.TrainingRecord {
		return standin.TrainingRecord{TrainingID: id, CompletedAt: now.AddDate(-1, 0, 0), ExpiresAt: now.AddDate(1, 0, 0)}
	}
	ada := &standin.User{Name: "Ada", Role: standin.RoleUser, Trainings: []standin.TrainingRecord{valid("laser"), valid("basics")}}
	ben := &standin.User{Name: "Ben", Role: standin.RoleUser, Trainings: []standin.TrainingRecord{valid("laser")}}
	benExpired := &standin.User{Name: "Ben", Role: standin.RoleUser, Trainings: []standin.TrainingRecord{valid("laser"),
		{TrainingID: "basics", CompletedAt: now.AddDate(-3, 0, 0), ExpiresAt: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)}}}
	nobody := &standin.User{Name: "Cleo", Role: standin.RoleUser}

	// Monday 30 Nov 2026.
	mon := func(h, m int) time.Time { return time.Date(2026, 11, 30, h, m, 0, 0, time.UTC) }
	sun := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

	tests := []struct {
		name     string
		b        Booking
		env      Env
		contains []string // empty: allowed
	}{
		{"OK", Booking{ada, confocal, "neuro", mon(9, 0), mon(13, 0)}, env, nil},
		{"OKBookableWithoutTimes", Booking{ada, confocal, "neuro", time.Time{}, time.Time{}}, env, nil},
		{"OKLastMinuteOfWindow", Booking{ada, confocal, "neuro", mon(16, 0), mon(20, 0)}, env, nil},
		{"ErrMissingTraining", Booking{ben, confocal, "neuro", mon(9, 0), mon(10, 0)}, env, []string{`"Confocal Basics"`, "Ben", "not completed"}},
		{"ErrMissingTrainingWithoutTimes", Booking{ben, confocal, "neuro", time.Time{}, time.Time{}}, env, []string{`"Confocal Basics"`}},
		{"ErrExpiredTraining", Booking{benExpired, confocal, "neuro", mon(9, 0), mon(10, 0)}, env, []string{`"Confocal Basics"`, "expired 3 Jan 2026"}},
		{"ErrBothTrainingsMissing", Booking{nobody, confocal, "neuro", mon(9, 0), mon(10, 0)}, env, []string{`"Laser Safety" and "Confocal Basics"`}},
		{"ErrProjectRule", Booking{ada, flow, "neuro", time.Time{}, time.Time{}}, env, []string{"Flow Cytometer", `only be booked in "CELL"`, `not in "NEURO"`}},
		{"ErrRoleRule", Booking{ada, staffOnly, "neuro", time.Time{}, time.Time{}}, env, []string{`"support" or "admin"`, "Ada has the role user"}},
		{"ErrTooLong", Booking{ada, confocal, "neuro", mon(9, 0), mon(14, 0)}, env, []string{"at most 4 hours", "lasts 5 hours"}},
		{"ErrSunday", Booking{ada, confocal, "neuro", sun, sun.Add(time.Hour)}, env, []string{"Monday to Friday, 08:00–20:00", "Sunday 29 Nov"}},
		{"ErrAt21", Booking{ada, confocal, "neuro", mon(21, 0), mon(22, 0)}, env, []string{"08:00–20:00", "21:00–22:00"}},
		{"ErrRunsPastClosing", Booking{ada, confocal, "neuro", mon(18, 0), mon(21, 0)}, env, []string{"18:00–21:00"}},
		{"ErrBeforeOpening", Booking{ada, confocal, "neuro", mon(7, 45), mon(9, 0)}, env, []string{"07:45–09:00"}},
		// 07:30 UTC is 08:30 in Berlin on a Monday in winter: allowed there.
		{"OKFacilityTimeZone", Booking{ada, confocal, "neuro", mon(7, 30), mon(8, 30)}, Env{Location: berlin, Now: now}, nil},
		// 19:30 UTC is 20:30 in Berlin: past closing there.
		{"ErrFacilityTimeZone", Booking{ada, confocal, "neuro", mon(19, 0), mon(19, 30)}, Env{Location: berlin, Now: now}, []string{"Europe/Berlin", "20:00–20:30"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Check(tt.b, tt.env)
			if len(tt.contains) == 0 {
				if got != "" {
					t.Fatalf("denied: %s", got)
				}
				return
			}
			if got == "" {
				t.Fatal("allowed, want a denial")
			}
			for _, want := range tt.contains {
				if !strings.Contains(got, want) {
					t.Errorf("reason %q does not mention %q", got, want)
				}
			}
		})
	}
}

func TestDescribeWindows(t *testing.T) {
	t.Parallel()
	got := describeWindows([]standin.WeeklyWindow{
		{Day: time.Saturday, StartMinute: 600, EndMinute: 720},
		{Day: time.Monday, StartMinute: 480, EndMinute: 1200},
	})
	if got != "Monday 08:00–20:00; Saturday 10:00–12:00" {
		t.Fatalf("got %q", got)
	}
}
