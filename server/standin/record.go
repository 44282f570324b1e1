package standin

import (
	"context"
	"sync/atomic"
)

// A Record tells whether a request's own audit event was written. PRODUCT
// §5 asks for one event per decision, with its final outcome: a request
// whose workflow writes the event that records it (booking.created, a
// refusal by the facility's rules, user.renamed, policy.changed, …) needs
// no other, and one whose workflow writes none is recorded by its outcome
// afterwards. The API opens a Record for each request made while
// impersonating; the audit log marks it when it stores an event appended
// under that request's context.
type Record struct {
	written atomic.Bool
}

type recordKey struct{}

// WithRecord returns a copy of ctx carrying a new, unwritten Record.
func WithRecord(ctx context.Context) (context.Context, *Record) {
	r := &Record{}
	return context.WithValue(ctx, recordKey{}, r), r
}

// MarkRecorded marks the Record ctx carries, if any, as written.
func MarkRecorded(ctx context.Context) {
	if r, ok := ctx.Value(recordKey{}).(*Record); ok {
		r.written.Store(true)
	}
}

// Written reports whether an event was stored under the Record's request.
func (r *Record) Written() bool { return r.written.Load() }
