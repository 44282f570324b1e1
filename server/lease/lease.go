// Package lease runs a background job on one of several console processes
// ("nodes") that share a database, one time slice at a time.
//
// Time is cut into terms of a fixed length: term k of length d is the
// wall-clock interval [k·d, (k+1)·d). The lease of a job for a term is one
// record whose key is the job and the term; the node whose insert of that
// record succeeds holds the lease for the whole term (unless it stops and
// gives it back first), and every other node that tried skips the job
// until the next term. The decision is a unique insert, the one write that
// is exact on every database the console runs on (MongoDB, and FerretDB,
// whose read-modify-write updates are not atomic across connections);
// nothing is ever updated in place, so no two nodes write one record.
//
// A node that dies holds its lease only until its term ends: the next term
// is free to claim. A node that stops cleanly gives its term back, so a
// process that replaces it takes the job over at once. Records of past
// terms are pruned by each term's winner, so the store keeps a few records
// per job.
//
// Terms come from each node's wall clock. Clocks that differ by s make
// adjacent terms overlap by up to s: the node whose clock runs ahead
// starts term k+1 while the holder of term k is still in it, so for up to
// s both may run the job. Jobs run under a lease must tolerate that (and
// the end of a run that started just before its term ended): a lease
// removes duplicate work, it does not make a job exclusive.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Store keeps lease records. Its implementations decide a claim by a
// unique insert keyed by job and term.
type Store interface {
	// Claim records holder as the holder of job's term, valid until
	// until, if nobody holds that term yet. won reports whether holder
	// holds it: true for the insert that succeeded, and also when the
	// record already names holder (a claim retried after its answer was
	// lost); false when another holder has it. Its errors are the
	// store's (EUnavailable when the database cannot be reached).
	Claim(ctx context.Context, job string, term int64, holder string, until time.Time) (won bool, err error)
	// Prune deletes job's records of terms before before and returns how
	// many it deleted.
	Prune(ctx context.Context, job string, before int64) (int, error)
	// Release deletes job's record of term if it names holder, so that a
	// node that has not yet tried that term may claim it.
	Release(ctx context.Context, job string, term int64, holder string) error
}

// Record is one term's lease as a store keeps it, for inspection.
type Record struct {
	Job    string
	Term   int64
	Holder string
	Until  time.Time // when the term ends
}

// keepTerms is how many terms before the current one keep their records.
// A term's record must outlive any node that might still claim it: one
// whose clock runs behind. Pruning only terms two or more behind leaves a
// record for every term a node whose clock is up to one term late could
// see as current.
const keepTerms = 2

// Config tunes New. Zero values are the defaults.
type Config struct {
	// Holder names this node in lease records and logs (default
	// NewHolder()).
	Holder string
	// Now is the clock terms are read from (default time.Now). Every node
	// sharing the database must use the wall clock: terms are only
	// comparable between nodes whose clocks agree.
	Now func() time.Time
	// Logger receives a debug line per term won and warnings when a claim
	// fails (default discards).
	Logger *slog.Logger
}

// Leases claims the leases of one node.
type Leases struct {
	store  Store
	holder string
	now    func() time.Time
	log    *slog.Logger
}

// New returns the leases of one node over store.
func New(store Store, cfg Config) *Leases {
	if cfg.Holder == "" {
		cfg.Holder = NewHolder()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Leases{store: store, holder: cfg.Holder, now: cfg.Now, log: cfg.Logger}
}

// NewHolder returns a name for this process, unique among nodes: the host
// name (when the system tells it) and random hex.
func NewHolder() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return host + "-" + hex.EncodeToString(b)
}

// Holder is the name this node claims leases under.
func (l *Leases) Holder() string { return l.holder }

// TermOf returns the number of the term of length d that t falls in.
func TermOf(t time.Time, d time.Duration) int64 {
	ns, n := t.UnixNano(), int64(d)
	k := ns / n
	if ns%n < 0 {
		k-- // floor, for times before 1970
	}
	return k
}

// TermEnd returns when term k of length d ends.
func TermEnd(k int64, d time.Duration) time.Time {
	return time.Unix(0, (k+1)*int64(d)).UTC()
}

// Acquire reports whether this node holds job's lease for the term of
// length d now falls in, claiming it when nobody holds it, and returns
// that term. A won term's older records are pruned. Its errors are the
// store's; on an error the node does not hold the lease.
func (l *Leases) Acquire(ctx context.Context, job string, d time.Duration) (held bool, term int64, err error) {
	term = TermOf(l.now(), d)
	won, err := l.store.Claim(ctx, job, term, l.holder, TermEnd(term, d))
	if err != nil {
		return false, term, fmt.Errorf("claim the lease of %s for term %d: %w", job, term, err)
	}
	if !won {
		return false, term, nil
	}
	l.log.Debug("holding lease", "job", job, "term", term, "holder", l.holder)
	if _, err := l.store.Prune(ctx, job, term-keepTerms); err != nil && ctx.Err() == nil {
		// Harmless now: the next winner prunes them.
		l.log.Warn("pruning old lease records", "job", job, "err", err)
	}
	return true, term, nil
}

// Every calls fn every period until ctx ends, but only while this node
// holds job's lease for the current term of length d: each term it tries
// once to claim the lease (again on the next tick if the store failed)
// and then runs or skips fn for the rest of the term. fn runs on one
// node per term, give or take the clock skew the package comment
// describes. When ctx ends, after fn's last run returned, the lease of
// the current term is released: a console restarted at once (a new
// process) runs the job without waiting for the next term.
func (l *Leases) Every(ctx context.Context, job string, period, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	var cur turn
	for {
		select {
		case <-ctx.Done():
			l.release(ctx, job, d, cur)
			return
		case <-t.C:
			if ctx.Err() == nil && l.hold(ctx, job, d, &cur) {
				fn(ctx)
			}
		}
	}
}

// turn is what one Every loop knows of the current term.
type turn struct {
	term    int64
	decided bool // the claim of term was answered
	mine    bool
}

// hold reports whether this node holds job's lease now, claiming it once
// per term.
func (l *Leases) hold(ctx context.Context, job string, d time.Duration, cur *turn) bool {
	if cur.decided && cur.term == TermOf(l.now(), d) {
		return cur.mine
	}
	held, term, err := l.Acquire(ctx, job, d)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("skipping a background job: its lease could not be claimed", "job", job, "err", err)
		}
		*cur = turn{}
		return false
	}
	*cur = turn{term: term, decided: true, mine: held}
	return held
}

// releaseWithin bounds the release of a lease at the end: a database that
// does not answer must not hold the shutdown up.
const releaseWithin = 2 * time.Second

// release gives back the lease of the current term if this node holds it.
// A term already over is left to the pruning: a node whose clock runs
// behind may still see it as current.
func (l *Leases) release(ctx context.Context, job string, d time.Duration, cur turn) {
	if !cur.mine || cur.term != TermOf(l.now(), d) {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseWithin)
	defer cancel()
	if err := l.store.Release(rctx, job, cur.term, l.holder); err != nil {
		l.log.Debug("releasing a lease; it ends with its term", "job", job, "term", cur.term, "err", err)
	}
}
