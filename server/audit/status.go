package audit

import (
	"context"
	"fmt"
	"time"
)

// States of a background verification.
const (
	BackgroundIdle    = "idle"    // not started
	BackgroundRunning = "running" // walking the log
	BackgroundDone    = "done"    // finished: see Result
	BackgroundFailed  = "failed"  // could not finish: see Err
)

// Background is the state of the verification VerifyInBackground runs.
type Background struct {
	// State is one of the Background constants.
	State string
	// Started and Finished are when it started and ended (zero until
	// then).
	Started, Finished time.Time
	// Result is its outcome once State is BackgroundDone.
	Result Verification
	// Err says why it failed, when State is BackgroundFailed.
	Err string
}

// Status is what the log knows of its own integrity without walking it.
type Status struct {
	// Startup is what Open found comparing the database with the anchor:
	// OK, or the code, seq and problem of the first disagreement. Anchor
	// is the checkpoint it compared with (nil on a first start).
	Startup Verification
	// Background is the full verification started after Open.
	Background Background
	// AnchorError is why the newest write of the anchor failed, "" when
	// it did not (or there is no anchor).
	AnchorError string
	// Key is the public key checkpoints are signed with; zero without an
	// anchor.
	Key PublicKey
	// InMemory is how many of the newest events the window holds (0
	// without one): queries about them read no database. It grows after
	// Open as the window fills (Config.WindowFill).
	InMemory int
}

// Status returns what the log knows of its integrity at once: what Open
// found, the background verification's state and the anchor's health.
func (l *Log) Status() Status {
	s := Status{Startup: l.startup}
	if l.win != nil {
		s.InMemory = l.win.size()
	}
	l.bgMu.Lock()
	s.Background = l.bg
	l.bgMu.Unlock()
	if s.Background.State == "" {
		s.Background.State = BackgroundIdle
	}
	if l.anchor != nil {
		if err := l.anchor.state().writeErr; err != nil {
			s.AnchorError = err.Error()
		}
		s.Key = l.anchor.PublicKey()
	}
	return s
}

// PublicKey returns the public key checkpoints are signed with; ok is
// false without an anchor.
func (l *Log) PublicKey() (key PublicKey, ok bool) {
	if l.anchor == nil {
		return PublicKey{}, false
	}
	return l.anchor.PublicKey(), true
}

// VerifyInBackground starts a full Verify on its own goroutine, once, and
// returns at once; Status reports its progress and outcome, and a broken
// chain is logged at error level. Close stops it.
func (l *Log) VerifyInBackground() {
	l.bgMu.Lock()
	defer l.bgMu.Unlock()
	if l.bgDone != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.bgCancel, l.bgDone = cancel, make(chan struct{})
	l.bg = Background{State: BackgroundRunning, Started: time.Now()}
	go func() {
		defer close(l.bgDone)
		v, err := l.Verify(ctx)
		l.bgMu.Lock()
		defer l.bgMu.Unlock()
		l.bg.Finished = time.Now()
		switch {
		case err != nil:
			l.bg.State, l.bg.Err = BackgroundFailed, err.Error()
			if ctx.Err() == nil {
				l.logger.Warn("audit: the verification at start-up could not finish", "err", err)
			}
		default:
			l.bg.State, l.bg.Result = BackgroundDone, v
			if !v.OK {
				l.logger.Error("audit: the chain does not verify", "code", v.Code, "broken_at", v.BrokenAt, "problem", v.Problem)
			} else {
				l.logger.Info("audit: the chain verifies", "events", v.Checked, "checkpoints", v.Checkpoints,
					"elapsed", l.bg.Finished.Sub(l.bg.Started).Round(time.Millisecond))
			}
		}
	}()
}

// stopBackground cancels the background verification and waits for it.
func (l *Log) stopBackground() {
	l.bgMu.Lock()
	cancel, done := l.bgCancel, l.bgDone
	l.bgMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// checkStart compares the head Open found in the database with the
// newest checkpoint from before this start, without walking the log:
// shorter than the checkpoint is a truncation, the event at its seq with
// another hash a rewritten or replaced chain, and, for a log that is the
// database's one writer, more events than a crash can explain were added
// behind the server's back. VerifyInBackground checks the rest.
//
// Errors: EUnavailable when the database cannot be reached.
func (l *Log) checkStart(ctx context.Context) (Verification, error) {
	st := l.anchor.state()
	v := Verification{OK: true, Head: l.head, Anchor: st.prior}
	var f *finding
	if p := st.prior; p != nil {
		now := &Checkpoint{Kind: KindStart, Seq: l.head, Hash: l.headHash, Time: formatTime(time.Now())}
		f = l.startFinding(p, now)
		if f == nil && l.head > p.Seq && p.Seq > 0 {
			// The newest checkpoint lies inside the log: its event must
			// be the one it signed.
			hash, ok, err := l.hashAt(ctx, p.Seq)
			if err != nil {
				return Verification{}, err
			}
			if ok && hash != p.Hash {
				f = &finding{at: p.Seq, code: ProblemRewritten, problem: fmt.Sprintf(
					"Event %d is not the event signed at %s: the chain was recomputed after a change.", p.Seq, p.signedAt())}
			}
		}
		if f != nil && f.code == ProblemRewritten {
			// Without reading the older checkpoints, any event up to
			// there may be the one changed: the full verification
			// narrows it down.
			f.at = 1
			f.problem += fmt.Sprintf(" Any of the events 1 to %d may have been changed; the full verification tells which.", p.Seq)
		}
	}
	if f == nil && st.problem != "" {
		f = &finding{code: ProblemAnchor, problem: st.problem}
	}
	if f != nil {
		v.OK, v.BrokenAt, v.Code, v.Problem = false, f.at, f.code, f.problem
	}
	return v, nil
}

// hashAt returns the stored hash of the event at seq: the head's as
// Open read it, from the window when it holds it, else from the database
// unless it is one that reads the whole collection for any query
// (Config.NoIndexes): that is left to the full verification (ok false),
// so that the start never waits for a scan of the log.
func (l *Log) hashAt(ctx context.Context, seq int64) (hash string, ok bool, err error) {
	if seq == l.head {
		return l.headHash, true, nil
	}
	if l.win != nil {
		hash, ok = l.win.hashAt(seq)
		return hash, ok, nil
	}
	if l.scans {
		return "", false, nil
	}
	got, err := l.store.Hashes(ctx, seq, seq)
	if err != nil {
		return "", false, fault(err, "read audit event")
	}
	hash, ok = got[seq]
	return hash, ok, nil
}
