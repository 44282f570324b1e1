package httpapi

import (
	"fmt"
	"strconv"
	"time"

	"standin/server/standin"
)

// tooManyAttempts is the refusal of a sign-in attempt that must wait (see
// package loginlimit): 429 too_many_requests, with the wait in Retry-After
// and in words.
func tooManyAttempts(wait time.Duration) error {
	secs := max(int64((wait+time.Second-1)/time.Second), 1)
	return &retryError{
		err:        standin.Errorf(standin.ETooManyRequests, "Too many failed sign-in attempts. Try again in %s.", inWords(secs)),
		retryAfter: strconv.FormatInt(secs, 10),
	}
}

// inWords says a wait of secs seconds as a person would: seconds under a
// minute, else whole minutes, rounded up.
func inWords(secs int64) string {
	switch {
	case secs == 1:
		return "1 second"
	case secs < 60:
		return fmt.Sprintf("%d seconds", secs)
	case secs == 60:
		return "1 minute"
	default:
		return fmt.Sprintf("%d minutes", (secs+59)/60)
	}
}
