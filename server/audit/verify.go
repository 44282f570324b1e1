package audit

import (
	"context"
	"errors"
	"fmt"
)

// Verification is the outcome of Verify.
type Verification struct {
	// OK is true when every stored event, from seq 1 on, is intact and
	// linked to the one before it.
	OK bool
	// Checked counts the events found intact from seq 1, all of them when
	// OK, else those before BrokenAt.
	Checked int64
	// BrokenAt is the seq of the first broken link, 0 when OK. For a
	// gap it is the first missing seq.
	BrokenAt int64
	// Problem says what is wrong at BrokenAt, for a person; "" when OK.
	Problem string
	// Code is one of the Problem constants; "" when OK.
	Code string
}

// Problem codes of a Verification, for clients that word the state
// themselves.
const (
	// ProblemAltered: a stored event no longer matches its hash or does
	// not link to the event before it.
	ProblemAltered = "altered"
	// ProblemMissing: a seq inside the chain is missing (deleted).
	ProblemMissing = "missing"
	// ProblemDamaged: a stored document cannot be decoded as an event.
	ProblemDamaged = "damaged"
	// ProblemTruncated: events this server committed are gone from the
	// end.
	ProblemTruncated = "truncated"
)

// errBroken stops a walk at the first broken link.
var errBroken = errors.New("broken link")

// Verify walks the chain from seq 1 in ascending order, in chunks, and
// recomputes every hash. It stops at the first broken link: an event whose
// content no longer matches its hash (altered), whose prev_hash is not the
// hash of the event before it, or a missing seq (deleted). Events missing
// at the end are caught when this server knows they were committed; a
// chain alone cannot show that its newest events were removed.
//
// A broken chain is a result, not an error. Errors: EUnavailable when the
// database cannot be reached.
func (l *Log) Verify(ctx context.Context) (Verification, error) {
	var v Verification
	committed := l.committed.Load()
	want, prev := int64(1), ""
	err := l.walk(ctx, 0, nil, true, func(d *eventDoc) error {
		e := d.event()
		v.Code = ProblemAltered
		switch {
		case d.Seq == want && d.Damaged != "":
			v.BrokenAt, v.Problem = d.Seq, fmt.Sprintf("Event %d is damaged: %s, so it cannot be checked.", d.Seq, d.Damaged)
			v.Code = ProblemDamaged
		case d.Seq != want:
			v.BrokenAt, v.Problem = want, fmt.Sprintf("Event %d is missing; the next stored event is %d.", want, d.Seq)
			v.Code = ProblemMissing
		case d.SeqField != d.Seq:
			v.BrokenAt, v.Problem = d.Seq, fmt.Sprintf("Event %d says its seq is %d.", d.Seq, d.SeqField)
		case e.PrevHash != prev && want == 1:
			v.BrokenAt, v.Problem = d.Seq, "Event 1 has a prev_hash, but the first event links to nothing."
		case e.PrevHash != prev:
			v.BrokenAt, v.Problem = d.Seq, fmt.Sprintf("Event %d does not link to event %d: its prev_hash differs from that event's hash.", d.Seq, d.Seq-1)
		case ComputeHash(e) != e.Hash:
			v.BrokenAt, v.Problem = d.Seq, fmt.Sprintf("Event %d was altered: its content does not match its hash.", d.Seq)
		default:
			v.Code = ""
			v.Checked++
			want, prev = want+1, e.Hash
			return nil
		}
		return errBroken
	})
	if errors.Is(err, errBroken) {
		return v, nil
	}
	if err != nil {
		return Verification{}, err
	}
	if last := want - 1; last < committed {
		v.BrokenAt, v.Code = want, ProblemTruncated
		v.Problem = fmt.Sprintf("Events %d to %d are missing; they were stored.", want, committed)
		return v, nil
	}
	v.OK = true
	return v, nil
}

// Head returns the highest seq this Log knows to be stored: what it read
// at Open or committed since. Other servers may have appended beyond it.
func (l *Log) Head() int64 { return l.committed.Load() }
