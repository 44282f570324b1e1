package audit

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"standin/server/standin"
)

// Store keeps the events of the log. The log owns what makes it a log
// (the order of seqs, the hashes and the chain, batching and retries);
// a Store only stores events under their seqs and reads them back as it
// is asked. The server passes one in (package mongostore's Events, on
// MongoDB or the embedded FerretDB).
//
// An event is stored under its Seq, which must be unique: that is what
// turns two servers appending at once into one winner. Reads decode what
// they can of a damaged document rather than fail (see Stored) and skip
// documents whose key is not a seq, which Scan reports (Stored.Foreign).
//
// Errors: a database that cannot be reached, does not answer in time or
// refuses to store anything is EUnavailable; when it could not be
// reached or did not answer (so that the same call may succeed later),
// the error also wraps ErrUnreachable. Insert's error wraps ErrSeqTaken
// when one of the seqs is stored already. Other faults are uncoded.
type Store interface {
	// EnsureIndexes creates the secondary indexes queries use.
	EnsureIndexes(ctx context.Context) error
	// Insert stores evs in order, stopping at the first that fails: when
	// it returns an error a prefix of evs may be stored. When the
	// database said which event it refused, the error is a
	// *StoredBefore.
	Insert(ctx context.Context, evs []*standin.Event) error
	// Head returns the seq and hash of the event stored under the highest
	// seq, 0 and "" when there is none. A hash that cannot be read is "".
	Head(ctx context.Context) (seq int64, hash string, err error)
	// Hashes returns the hash stored under each seq in [from, to] that
	// holds an event ("" for a hash that cannot be read).
	Hashes(ctx context.Context, from, to int64) (map[int64]string, error)
	// Page returns up to q.Limit events as q says.
	Page(ctx context.Context, q PageQuery) ([]*standin.Event, error)
	// Latest returns the event under the highest seq whose object is
	// object and, unless typ is "", whose type is typ; ok is false when
	// there is none.
	Latest(ctx context.Context, object, typ string) (e *standin.Event, ok bool, err error)
	// Scan calls fn for each stored event s selects, in the order s asks
	// for, stopping at fn's first error, which it returns as it is.
	Scan(ctx context.Context, s Scan, fn func(Stored) error) error
	// AnyAfter reports whether an event is stored under a seq above seq.
	AnyAfter(ctx context.Context, seq int64) (bool, error)

	// Hints for the servers that follow the log (Config.Follow). They are
	// never trusted for what the log holds: a follower checks every event
	// they give against the chain, and reads the log itself when they
	// are missing or wrong, which costs only time.

	// Mirror keeps a copy of evs, just stored in seq order, among the
	// newest events Recent returns. Mirroring what is mirrored already
	// is no error.
	Mirror(ctx context.Context, evs []*standin.Event) error
	// Copied reports whether a copy of the event at seq is kept: a probe
	// that must be cheap, as followers make it often.
	Copied(ctx context.Context, seq int64) (bool, error)
	// Recent returns, in seq order, copies of the newest events above
	// after: a cheap read that may miss some (not yet mirrored, or too
	// old to be kept).
	Recent(ctx context.Context, after int64) ([]*standin.Event, error)
}

// Sealer is a Store that also keeps the log's sealed chunks: chunk k is
// the run of ChunkSize consecutive events from seq k*ChunkSize+1, kept
// once more as one written-once record with a summary of what it holds
// (types, people, sessions, projects, times). The log never changes an
// event, so a chunk once complete never changes either; a Store answers
// pages deep in the log from the chunks whose summaries may match, instead
// of reading the events one by one. The events stay the record: Verify
// and Export read them.
//
// Every server seals the chunks it delivers (see Log); sealing one sealed
// already, by this server or another, is no error.
type Sealer interface {
	// ChunkSize is how many consecutive seqs a chunk holds.
	ChunkSize() int64
	// Unsealed returns up to max chunks, newest first, whose every seq is
	// at or below head and that are not sealed. The first call reads
	// which chunks are sealed.
	Unsealed(ctx context.Context, head int64, max int) ([]int64, error)
	// Seal keeps each of chunks, every event of one chunk in seq order,
	// as its sealed chunk.
	Seal(ctx context.Context, chunks [][]*standin.Event) error
}

// Errors a Store's errors wrap, which the appender's retries tell apart.
var (
	// ErrSeqTaken: Insert found an event stored under one of the seqs
	// already (another server appended there).
	ErrSeqTaken = errors.New("an audit event is stored under that seq already")
	// ErrUnreachable: the database could not be reached or did not
	// answer in time; the same call may succeed later.
	ErrUnreachable = errors.New("the database could not be reached")
)

// StoredBefore is an error of Store.Insert that knows how its insert
// ended: the first N events were stored and the next one was refused
// (its seq is taken, when the error also wraps ErrSeqTaken); none after
// it was tried. With it the appender need not ask the database what a
// failed insert stored.
type StoredBefore struct {
	N   int
	Err error
}

func (e *StoredBefore) Error() string { return e.Err.Error() }
func (e *StoredBefore) Unwrap() error { return e.Err }

// Stored is an event as a Store read it back.
type Stored struct {
	// Seq is the seq the event is stored under.
	Seq int64
	// Event is what the stored document says. Its Seq is the one the
	// document holds, which the hash covers; Verify checks it is the
	// seq the event is stored under.
	Event *standin.Event
	// Damaged says what of the stored document could not be decoded, ""
	// for a sound one. A document the strict decoding rejects (a hand edit
	// turned its time into text, say) is read field by field: one bad
	// document stops neither the start-up nor a walk, a page or an
	// export, and Verify reports it.
	Damaged string
	// Foreign is set, by Scan, for a document whose key is not a seq: it
	// is no event of the chain, and Foreign is its key as text; the other
	// fields are zero.
	Foreign string
}

// Scan says which events Store.Scan reads, and in which order.
type Scan struct {
	// After and To bound the seqs read: above After and, when To is
	// above 0, up to To.
	After, To int64
	// Filter keeps the events it matches, as Log.Query describes; its
	// AfterSeq is ignored.
	Filter standin.EventFilter
	// Stored reads in the order the database keeps the documents, in
	// one query, instead of in ascending seq (see Config.StoredOrder).
	Stored bool
	// All reads every document, whatever its key, in the order the
	// database keeps them; the other fields are ignored.
	All bool
}

// PageQuery says which events Store.Page returns.
type PageQuery struct {
	// Filter keeps the events it matches, as Log.Query describes; its
	// AfterSeq is ignored.
	Filter standin.EventFilter
	// After, when above 0, asks for the events above it, oldest first.
	// Otherwise the page is newest first, below Before when that is above
	// 0, else from the newest event.
	After, Before int64
	// Limit is how many events the page holds at most.
	Limit int
}

// checkFilter validates f. none reports a filter that matches nothing
// whatever is stored.
func checkFilter(f standin.EventFilter) (none bool, err error) {
	if f.AfterSeq < 0 {
		return false, standin.Errorf(standin.EInvalid, "after_seq cannot be negative.")
	}
	return f.Projects != nil && len(f.Projects) == 0, nil
}

// filtered reports whether f, but for AfterSeq, keeps fewer than all
// events.
func filtered(f standin.EventFilter) bool {
	return f.Type != "" || f.ActorID != "" || f.SubjectID != "" || f.ImpersonationID != "" ||
		f.Project != "" || f.Projects != nil || !f.Since.IsZero() || !f.Until.IsZero()
}

// fault turns an error of the store into the log's, with what naming the
// operation: EUnavailable, worded for the audit log, when the database
// could not be reached, did not answer in time or refuses to store
// anything; other errors keep their code (uncoded ones are internal).
func fault(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) ||
		standin.ErrorCode(err) == standin.EUnavailable {
		return unavailable(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// inDoubt is the error of an append whose events may or may not be
// stored; it wraps standin.ErrInDoubt.
func inDoubt(cause error) *standin.Error {
	return &standin.Error{
		Code:    standin.EUnavailable,
		Message: "The audit log failed while recording the action, and whether it was recorded is not known yet. Check again in a minute.",
		Cause:   fmt.Errorf("%w: %w", cause, standin.ErrInDoubt),
	}
}

// unavailable wraps cause as the error callers turn into a 503.
func unavailable(cause error) *standin.Error {
	return &standin.Error{
		Code:    standin.EUnavailable,
		Message: "The audit log is unavailable, so the action was not performed. Try again shortly.",
		Cause:   cause,
	}
}

// newEventID returns a new event id in the shape of a MongoDB ObjectID in
// hex, as ids have always had: 4 bytes of the time in seconds, so ids sort
// roughly by time, and 8 random bytes.
func newEventID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(time.Now().Unix()))
	_, _ = rand.Read(b[4:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
