package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/audit"
	"standin/server/standin"
)

// The events store's errors say what the audit log's appender needs to
// tell apart: a seq taken, a database out of reach (tried again), one
// that refuses writes (failed at once), and anything else.
func TestEventsError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		err                error
		code               string
		taken, unreachable bool
	}{
		{"DuplicateKey", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000, Message: "E11000 duplicate key"}}},
			standin.EConflict, true, false},
		{"Network", mongo.CommandError{Message: "connection reset", Labels: []string{"NetworkError"}}, standin.EUnavailable, false, true},
		{"Deadline", fmt.Errorf("insert: %w", context.DeadlineExceeded), standin.EUnavailable, false, true},
		{"DiskFull", mongo.CommandError{Code: 14031, Message: "out of disk space"}, standin.EUnavailable, false, false},
		{"Canceled", fmt.Errorf("insert: %w", context.Canceled), standin.EInternal, false, false},
		{"Rejected", mongo.CommandError{Code: 2, Message: "bad value"}, standin.EInternal, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := eventsError(tc.err, "append audit events")
			if got := standin.ErrorCode(err); got != tc.code {
				t.Errorf("code %s, want %s (%v)", got, tc.code, err)
			}
			if got := errors.Is(err, audit.ErrSeqTaken); got != tc.taken {
				t.Errorf("ErrSeqTaken %v, want %v", got, tc.taken)
			}
			if got := errors.Is(err, audit.ErrUnreachable); got != tc.unreachable {
				t.Errorf("ErrUnreachable %v, want %v", got, tc.unreachable)
			}
			if !strings.Contains(err.Error(), tc.err.Error()) {
				t.Errorf("the cause is lost: %v", err)
			}
		})
	}
	if eventsError(nil, "x") != nil {
		t.Error("eventsError(nil) is not nil")
	}
}
