package standin

import (
	"testing"
	"time"
)

func TestValidateBookingTimes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 7, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 12, 2, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name       string
		start, end time.Time
		message    string // "" for a valid booking
	}{
		{"OK", at(9, 0), at(10, 30), ""},
		{"OKInTheCurrentSlot", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), at(9, 0), ""},
		{"OKFourteenDays", at(9, 0), at(9, 0).Add(MaxBooking), ""},
		{"ErrEndBeforeStart", at(10, 0), at(9, 0), "The booking must end after it starts."},
		{"ErrEmpty", at(10, 0), at(10, 0), "The booking must end after it starts."},
		{"ErrTooLong", at(9, 0), at(9, 15).Add(MaxBooking), "A booking can last at most 14 days."},
		{"ErrInThePast", time.Date(2026, 12, 1, 8, 45, 0, 0, time.UTC), at(9, 0), "The booking starts in the past."},
		// The past is refused before an off-slot time.
		{"ErrInThePastOffSlot", time.Date(2026, 12, 1, 8, 50, 0, 0, time.UTC), at(9, 0), "The booking starts in the past."},
		{"ErrOffSlotStart", at(9, 7), at(10, 0), "Bookings start and end on a quarter hour (:00, :15, :30 or :45)."},
		{"ErrOffSlotEnd", at(9, 0), at(10, 0).Add(time.Second), "Bookings start and end on a quarter hour (:00, :15, :30 or :45)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateBookingTimes(tt.start, tt.end, now)
			if tt.message == "" {
				if err != nil {
					t.Fatalf("ValidateBookingTimes = %v, want nil", err)
				}
				return
			}
			if ErrorCode(err) != EInvalid || ErrorMessage(err) != tt.message {
				t.Fatalf("ValidateBookingTimes = %v, want %s: %s", err, EInvalid, tt.message)
			}
		})
	}
}

func TestValidateBookingSpan(t *testing.T) {
	t.Parallel()
	past := time.Date(2020, 3, 2, 9, 0, 0, 0, time.UTC)
	if err := ValidateBookingSpan(past, past.Add(time.Hour)); err != nil {
		t.Fatalf("a past booking on slots: %v", err)
	}
	for name, span := range map[string][2]time.Time{
		"ErrOffSlot":        {past.Add(time.Minute), past.Add(time.Hour)},
		"ErrEndBeforeStart": {past, past.Add(-time.Hour)},
		"ErrTooLong":        {past, past.Add(MaxBooking + BookingSlot)},
	} {
		if err := ValidateBookingSpan(span[0], span[1]); ErrorCode(err) != EInvalid {
			t.Errorf("%s: %v, want %s", name, err, EInvalid)
		}
	}
}
