package audit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"standin/server/standin"
)

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
	// ProblemTruncated: events that were recorded (this server committed
	// them, or a checkpoint records them) are gone from the end.
	ProblemTruncated = "truncated"
	// ProblemRewritten: the chain is whole, but differs from what a
	// checkpoint signed: it was recomputed after a change.
	ProblemRewritten = "rewritten"
	// ProblemAdded: events were added to the database while the server
	// that alone writes it was stopped.
	ProblemAdded = "added"
	// ProblemAnchor: the anchor itself (the checkpoint or head file) is
	// damaged or does not verify with the key, so it vouches for nothing
	// from there on.
	ProblemAnchor = "anchor"
)

// Verification is the outcome of Verify.
type Verification struct {
	// OK is true when every stored event, from seq 1 on, is intact and
	// linked to the one before it, and the chain agrees with every
	// checkpoint of the anchor.
	OK bool
	// Checked counts the events found intact from seq 1, all of them when
	// OK, else those before BrokenAt.
	Checked int64
	// BrokenAt is the seq of the first event that cannot be trusted, 0
	// when OK or when only the anchor's files are at fault (Code
	// ProblemAnchor). For a gap it is the first missing seq; for a
	// rewritten chain, the first event after the newest checkpoint that
	// still agrees.
	BrokenAt int64
	// Problem says what is wrong, for a person; "" when OK.
	Problem string
	// Code is one of the Problem constants; "" when OK.
	Code string
	// Head is the highest seq the walk found in the database.
	Head int64
	// Anchor is the newest checkpoint the chain was checked against, nil
	// without an anchor or before the first.
	Anchor *Checkpoint
	// Checkpoints counts the signed checkpoints checked.
	Checkpoints int
}

// errBroken stops a walk at the first broken link.
var errBroken = errors.New("broken link")

// Verify walks the chain from seq 1 in ascending order and recomputes
// every hash. It stops at the first broken link: an event whose content
// no longer matches its hash (altered), whose prev_hash is not the hash of
// the event before it, a document that cannot be decoded (damaged), or a
// missing seq (deleted).
//
// With an anchor it checks the checkpoints too, which a forger with the
// database alone cannot sign: each must verify with the key and follow
// the one before; the event at each checkpoint's seq must have the hash
// it signed (else the chain was recomputed after a change: rewritten); no
// checkpoint may lie beyond the end of the chain (truncated); and, on a
// database this server alone writes, a start may find no more events than
// the stop before it left (added). Without an anchor, events missing at
// the end are caught only when this server committed them.
//
// A broken chain is a result, not an error. Errors: EUnavailable when the
// database cannot be reached.
func (l *Log) Verify(ctx context.Context) (Verification, error) {
	return l.verify(ctx, nil)
}

// verify is Verify, counting the events it has read in progress when
// that is not nil.
func (l *Log) verify(ctx context.Context, progress *atomic.Int64) (Verification, error) {
	var v Verification
	committed := l.committed.Load()
	w := &chainWalk{want: 1}
	var mf *finding
	if l.anchor != nil {
		var err error
		w.marks, mf, v.Anchor, v.Checkpoints, err = l.anchorMarks()
		if err != nil {
			mf = &finding{code: ProblemAnchor, problem: fmt.Sprintf("The checkpoint file cannot be read: %v.", err)}
		}
	}
	var broken *finding
	err := l.walk(ctx, 0, standin.EventFilter{}, true, func(d Stored) error {
		v.Head = max(v.Head, d.Seq)
		if progress != nil {
			progress.Add(1)
		}
		if broken = w.check(d); broken != nil {
			return errBroken
		}
		return nil
	})
	if err != nil && !errors.Is(err, errBroken) {
		return Verification{}, err
	}
	if broken != nil {
		broken.seen = max(broken.seen, broken.at)
	} else {
		broken = w.end(committed)
	}
	v.Checked = w.checked
	if broken = reported(broken, mf); broken == nil {
		v.OK = true
		return v, nil
	}
	v.BrokenAt, v.Code, v.Problem = broken.at, broken.code, broken.problem
	if broken.at > 0 {
		v.Checked = min(v.Checked, broken.at-1)
	}
	return v, nil
}

// chainWalk follows the chain in seq order, and the anchor's marks along
// it.
type chainWalk struct {
	marks    []mark
	next     int // the first mark not yet met
	agreed   int64
	agreedAt *Checkpoint // the newest checkpoint found to agree
	want     int64       // the seq the next document must have
	prev     string      // the hash it must link to
	checked  int64       // events found intact
}

// check judges the next stored document: nil when it is the next intact
// link of the chain and agrees with every checkpoint signed at its seq,
// else the problem found.
func (w *chainWalk) check(d Stored) *finding {
	e := d.Event
	f := &finding{at: d.Seq}
	switch {
	case d.Seq == w.want && d.Damaged != "":
		f.code, f.problem = ProblemDamaged, fmt.Sprintf("Event %d is damaged: %s, so it cannot be checked.", d.Seq, d.Damaged)
	case d.Seq != w.want:
		f.at, f.code = w.want, ProblemMissing
		f.problem = fmt.Sprintf("Event %d is missing; the next stored event is %d.", w.want, d.Seq)
	case e.Seq != d.Seq:
		f.code, f.problem = ProblemAltered, fmt.Sprintf("Event %d says its seq is %d.", d.Seq, e.Seq)
	case e.PrevHash != w.prev && w.want == 1:
		f.code, f.problem = ProblemAltered, "Event 1 has a prev_hash, but the first event links to nothing."
	case e.PrevHash != w.prev:
		f.code, f.problem = ProblemAltered, fmt.Sprintf("Event %d does not link to event %d: its prev_hash differs from that event's hash.", d.Seq, d.Seq-1)
	case ComputeHash(e) != e.Hash:
		f.code, f.problem = ProblemAltered, fmt.Sprintf("Event %d was altered: its content does not match its hash.", d.Seq)
	default:
		if f := w.marksAt(d.Seq, e.Hash); f != nil {
			return f
		}
		w.checked++
		w.want, w.prev = w.want+1, e.Hash
		return nil
	}
	return f
}

// marksAt passes the checkpoints signed up to seq, whose event has hash:
// a checkpoint at seq that names another hash shows the chain recomputed
// after a change.
func (w *chainWalk) marksAt(seq int64, hash string) *finding {
	for ; w.next < len(w.marks) && w.marks[w.next].seq <= seq; w.next++ {
		m := w.marks[w.next]
		if m.seq < seq || m.hash == hash {
			w.agreed, w.agreedAt = m.seq, m.cp
			continue
		}
		f := &finding{at: w.agreed + 1, seen: seq, code: ProblemRewritten}
		f.problem = fmt.Sprintf("Event %d is not the event signed at %s: the chain was recomputed after a change", seq, m.cp.signedAt())
		if w.agreedAt != nil {
			f.problem += fmt.Sprintf(" to one of the events %d to %d (event %d still agrees with the checkpoint of %s).", w.agreed+1, seq, w.agreed, w.agreedAt.signedAt())
		} else {
			f.problem += fmt.Sprintf(" to one of the events 1 to %d.", seq)
		}
		return f
	}
	return nil
}

// end is the problem the end of an unbroken walk shows, if any: events a
// checkpoint records, or this server stored, are missing past it.
func (w *chainWalk) end(committed int64) *finding {
	last := w.want - 1
	if n := len(w.marks); w.next < n && w.marks[n-1].seq > last {
		m := w.marks[n-1]
		ends := fmt.Sprintf("the log ends at event %d", last)
		if last == 0 {
			ends = "the log is empty"
		}
		return &finding{at: last + 1, code: ProblemTruncated, problem: fmt.Sprintf(
			"%s missing: %s, but a checkpoint signed at %s records event %d.",
			eventsAre(last+1, m.seq), ends, m.cp.signedAt(), m.seq)}
	}
	if last < committed {
		return &finding{at: last + 1, code: ProblemTruncated, problem: fmt.Sprintf(
			"%s missing, though this server stored %s.", eventsAre(last+1, committed), them(last+1, committed))}
	}
	return nil
}

// reported chooses between the walk's finding and the anchor's: the first
// event found broken is reported, and a problem of the anchor's files
// alone (at 0) only when no event is. A truncation (or addition) the
// checkpoints show also explains a later event that disagrees with a
// checkpoint: events appended in place of those removed.
func reported(broken, anchor *finding) *finding {
	if anchor != nil && anchor.at > 0 && broken != nil && anchor.code != ProblemRewritten && anchor.at <= broken.seen {
		return anchor
	}
	if anchor != nil && (broken == nil || (anchor.at > 0 && anchor.at < broken.at)) {
		return anchor
	}
	return broken
}

// finding is the first problem a check met.
type finding struct {
	at      int64 // the first seq not to trust, 0 for a problem of the anchor's files
	seen    int64 // the seq where it showed, when later than at
	code    string
	problem string
}

// mark is where a checkpoint pins the chain: the event at seq has hash.
type mark struct {
	seq  int64
	hash string
	cp   *Checkpoint
}

// anchorMarks reads the anchor's checkpoints, and the newest head not
// yet among them, checking that each verifies with the key and follows
// the one before, and what a start says about the stop before it. marks
// are the checkpoints up to the first problem, in ascending seq; f is
// that problem, nil if none. n counts the checkpoints that verified.
func (l *Log) anchorMarks() (marks []mark, f *finding, newest *Checkpoint, n int, err error) {
	st := l.anchor.state()
	pub := l.anchor.key.pub
	var prev *Checkpoint
	prevDigest := ""
	check := func(line string, c *Checkpoint, bad error) *finding {
		if bad == nil {
			bad = c.Verify(pub)
		}
		if bad != nil {
			return &finding{code: ProblemAnchor, problem: fmt.Sprintf("The checkpoint %s does not verify: %v.", line, bad)}
		}
		if c.Prev != prevDigest {
			return &finding{code: ProblemAnchor, problem: fmt.Sprintf(
				"The checkpoint %s does not follow the one before it: checkpoints were removed, added or reordered.", line)}
		}
		if prev != nil {
			if f := l.startFinding(prev, c); f != nil {
				return f
			}
			if c.Seq < prev.Seq && c.Kind != KindStart {
				return &finding{code: ProblemAnchor, problem: fmt.Sprintf("The checkpoint %s goes back from event %d to event %d.", line, prev.Seq, c.Seq)}
			}
		}
		return nil
	}
	add := func(c *Checkpoint) {
		n++
		prev, prevDigest, newest = c, c.Digest(), c
		// A start below the stop before it is a truncation, reported by
		// startFinding; marks stay ascending.
		if len(marks) == 0 || c.Seq >= marks[len(marks)-1].seq {
			if c.Seq > 0 {
				marks = append(marks, mark{seq: c.Seq, hash: c.Hash, cp: c})
			}
		}
	}
	err = l.anchor.scan(st.fileSize, func(line int, c *Checkpoint, bad error) error {
		if f = check(fmt.Sprintf("on line %d of %s", line, CheckpointFile), c, bad); f != nil {
			return errBroken
		}
		add(c)
		return nil
	})
	if err != nil && !errors.Is(err, errBroken) {
		return nil, nil, nil, 0, err
	}
	if f == nil && st.head != nil && st.head.Digest() != prevDigest {
		// The newest head is not in the checkpoint file yet.
		if f = check("in "+HeadFile, st.head, nil); f == nil {
			add(st.head)
		}
	}
	if f == nil && st.problem != "" {
		f = &finding{code: ProblemAnchor, problem: st.problem}
	}
	return marks, f, newest, n, nil
}

// startFinding says what is wrong with a start checkpoint c given the
// checkpoint before it: a log shorter than it was (truncated while the
// server was stopped), its newest event replaced, or, on a database this
// server alone writes, events added while it was stopped. Nil when
// nothing is, or c is no start.
func (l *Log) startFinding(prev, c *Checkpoint) *finding {
	if c.Kind != KindStart {
		return nil
	}
	switch {
	case c.Seq < prev.Seq:
		return &finding{at: c.Seq + 1, code: ProblemTruncated, problem: fmt.Sprintf(
			"%s missing: when the server started at %s the log ended at event %d, though a checkpoint signed at %s records event %d.",
			eventsAre(c.Seq+1, prev.Seq), c.signedAt(), c.Seq, prev.signedAt(), prev.Seq)}
	case c.Seq == prev.Seq && c.Hash != prev.Hash:
		return &finding{at: c.Seq, code: ProblemRewritten, problem: fmt.Sprintf(
			"Event %d was replaced while the server was stopped: when it started at %s the newest event was not the one signed at %s.",
			c.Seq, c.signedAt(), prev.signedAt())}
	}
	if slack := l.slack(prev); slack >= 0 && c.Seq > prev.Seq+slack {
		how := fmt.Sprintf("it stopped at %s with event %d", prev.signedAt(), prev.Seq)
		if prev.Kind != KindStop {
			how = fmt.Sprintf("it had signed event %d at %s, and no commit since could add so many", prev.Seq, prev.signedAt())
		}
		return &finding{at: prev.Seq + 1, code: ProblemAdded, problem: fmt.Sprintf(
			"%s added outside Standin: when the server started at %s the log held them, but %s.",
			eventsWere(prev.Seq+1, c.Seq), c.signedAt(), how)}
	}
	return nil
}

// slack is how many events may lie beyond checkpoint prev when a server
// starts: none after a clean stop, and any number when other servers may
// write the database too (-1). After a crash, the head file may miss the
// commits the anchor's writer had not written yet (the one it was
// writing, the one waiting, and the one the appender was storing); after
// a power failure, its newest renames may not have reached the disk
// either, but the checkpoint file, which waits for the disk, is never
// more than the checkpoint interval and the commit that made one due
// behind. So: the interval and four commits.
func (l *Log) slack(prev *Checkpoint) int64 {
	switch {
	case !l.sole:
		return -1
	case prev.Kind == KindStop:
		return 0
	default:
		return l.anchor.events + 4*int64(l.maxBatch)
	}
}

// Head returns the highest seq this Log knows to be stored: what it read
// at Open or committed since. Other servers may have appended beyond it.
func (l *Log) Head() int64 { return l.committed.Load() }

// eventsAre is "Event 5 is" or "Events 5 to 7 are".
func eventsAre(from, to int64) string {
	if from == to {
		return fmt.Sprintf("Event %d is", from)
	}
	return fmt.Sprintf("Events %d to %d are", from, to)
}

// eventsWere is "Event 5 was" or "Events 5 to 7 were".
func eventsWere(from, to int64) string {
	if from == to {
		return fmt.Sprintf("Event %d was", from)
	}
	return fmt.Sprintf("Events %d to %d were", from, to)
}

func them(from, to int64) string {
	if from == to {
		return "it"
	}
	return "them"
}
