package httpapi

import (
	"errors"
	"testing"
	"time"

	"standin/server/standin"
)

func TestTooManyAttempts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		wait       time.Duration
		retryAfter string
		message    string
	}{
		{"UnderASecond", 300 * time.Millisecond, "1", "Too many failed sign-in attempts. Try again in 1 second."},
		{"Seconds", 44*time.Second + time.Millisecond, "45", "Too many failed sign-in attempts. Try again in 45 seconds."},
		{"AMinute", time.Minute, "60", "Too many failed sign-in attempts. Try again in 1 minute."},
		{"MinutesRoundUp", 2*time.Minute + time.Second, "121", "Too many failed sign-in attempts. Try again in 3 minutes."},
		{"Longest", 15 * time.Minute, "900", "Too many failed sign-in attempts. Try again in 15 minutes."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tooManyAttempts(tt.wait)
			re, ok := errors.AsType[*retryError](err)
			if !ok {
				t.Fatalf("%v is not a retryError", err)
			}
			if re.retryAfter != tt.retryAfter {
				t.Errorf("Retry-After %s, want %s", re.retryAfter, tt.retryAfter)
			}
			if standin.ErrorCode(err) != standin.ETooManyRequests || standin.ErrorMessage(err) != tt.message {
				t.Errorf("%s %q, want %s %q", standin.ErrorCode(err), standin.ErrorMessage(err), standin.ETooManyRequests, tt.message)
			}
		})
	}
}
