// Package audit keeps the audit log: an append-only, totally ordered,
// tamper-evident record of what happened, kept in a Store (package
// mongostore keeps it in the collection "events").
//
// Each event is stored under its seq: 1, 2, 3, … with no gap and no
// duplicate. Each event's hash covers its content and the previous
// event's hash (see ComputeHash), so altering, removing or reordering a
// stored event breaks the chain, which Verify reports. A chain recomputed
// after a change, or one whose newest events were removed, is whole
// again: an Anchor (Config.Anchor) keeps the head outside the database,
// signed, so that those are reported too, after a restart as well.
//
// Appends go through a single appender goroutine per Log that commits
// everything waiting in one ordered insert (group commit). Several servers
// may share one database: each appends after the head it last read, and
// the unique seq turns a race between them into an insert that fails
// (ErrSeqTaken) on which the loser re-reads the head and tries again. No transaction is
// needed, so the same code is correct on MongoDB and on FerretDB.
//
// Cost: on MongoDB, queries use the indexes Open creates and walks read
// ranges of seqs. FerretDB 1.x on SQLite reads and decodes the whole
// collection for every query on it (see package mongostore), some 20 s at
// 100,000 events on a small machine. So on a database this server owns, the Log keeps the newest events in
// memory (Config.Window) and answers Query pages, ByObject and replays
// from them; Export, Verify, older pages and the load at Open still scan.
// Appends never read on the common path.
//
// Errors are *standin.Error values where a caller can act on them:
// EInvalid for bad input, ENotFound, and EUnavailable when the database
// cannot be reached (the cause is kept for logs). Other faults are
// returned uncoded, which the HTTP layer treats as internal errors.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"standin/server/standin"
)

const (
	// contendedFor is how long after losing a race for a seq the appender
	// still counts as contended, and contendedPause the most it then
	// pauses after each commit (see yieldTurn).
	contendedFor   = time.Second
	contendedPause = 20 * time.Millisecond
	// soleFollow is how often a Log that should be its database's one
	// writer probes for others' events.
	soleFollow = time.Second

	defaultMaxBatch = 500
	defaultTimeout  = 5 * time.Second
	// defaultChunk is how many seqs one query of an ascending walk covers.
	// On FerretDB every such query scans the collection, so fewer, larger
	// chunks are cheaper; the client never holds a chunk in memory.
	defaultChunk = 5000
)

// Config tunes Open. Its zero value is usable.
type Config struct {
	// OnCommit, if set, is called by the appender after each commit with
	// the events just stored, in seq order, never concurrently with
	// itself and never for an event that was not stored. It receives
	// copies it may keep. It runs on the appender goroutine, so it must
	// not block (every Append waits for it) and must not call Append.
	// The events are only those this Log appended: seqs are increasing
	// but skip events other servers appended in between.
	OnCommit func([]*standin.Event)

	// Logger receives faults the caller cannot see in a return value,
	// such as events found stored after their Append was reported
	// failed. Default: slog.Default().
	Logger *slog.Logger

	// MaxBatch is how many events one insert carries at most (default
	// 500). The events of one Append call are never split across
	// inserts, so a call with more events than this is committed alone.
	MaxBatch int

	// Timeout bounds one commit: its inserts and any retries after a
	// conflict with another server or a dropped connection (default 5s).
	// Learning what a failed insert stored has a budget of its own of the
	// same length. When a commit fails because the database is
	// unavailable, every Append queued behind it fails at once, so while
	// the database is down an Append returns EUnavailable within about
	// four times Timeout (a commit under way ahead of it, then its own).
	Timeout time.Duration

	// Window, when positive, keeps the newest Window events in memory and
	// answers queries, replays and ByObject from it whenever they concern
	// only those events (about 0.5 KB each). Set it when this Log is the
	// one writer of the database, as for the embedded database the server
	// owns: it is filled once at Open, by one pass over the collection,
	// and then only from this Log's own appends; on a sign of another
	// writer it turns itself off and logs a warning. Or set it with
	// Follow, which hands it every event of the log in seq order whoever
	// stored it: it is filled at Open with one page of the newest events.
	Window int

	// Anchor, if set, keeps the head of the chain outside the database,
	// signed (see Anchor): Open compares the database with it and
	// records the start, every commit moves it, Close records the stop,
	// and Verify checks the chain against its checkpoints. With
	// StoredOrder, or Window without Follow (this Log is the database's
	// one writer), events
	// found beyond the anchored head at Open, more than a crash can
	// explain, are reported as added behind the server's back.
	Anchor *Anchor

	// NoIndexes skips the secondary indexes Open otherwise creates for
	// queries. Set it on a database that cannot use them: FerretDB reads
	// the whole collection for every query whatever its indexes, while
	// maintaining them makes each append about a third slower.
	NoIndexes bool

	// Chunk is how many seqs one query of an ascending walk (EventsAfter
	// beyond the window, Export, Verify) covers; default 5000. On a
	// database that scans the collection for every query a larger chunk
	// means fewer scans, at the cost of the database sorting more at once.
	Chunk int

	// Follow, when positive, makes this Log follow the log (see
	// follow.go): OnCommit then receives every event of the log, whoever
	// appended it, in seq order and each once, and the window holds them
	// too; the Log probes for other servers' events every Follow. Its own
	// commits are handed over at once when nothing before them is
	// missing. Without it OnCommit receives only this Log's commits. On a
	// database this Log should be the one writer of (Window or StoredOrder
	// set) it probes only every second, and keeps no copies for others.
	Follow time.Duration

	// StoredOrder makes an ascending walk (EventsAfter beyond the window,
	// Export, Verify) one query that reads the collection in the order
	// the database keeps it, instead of one sorted query per Chunk. Set it
	// only for a Log that is the one writer of a database that returns
	// documents in insertion order when asked for none, as FerretDB on
	// SQLite does: this Log inserts every seq after its predecessor, so
	// that order is seq order. On such a database each query reads the
	// whole collection anyway, so a walk costs one read of it rather than
	// one per chunk. The walk checks that every seq is above the one
	// before and fails with an internal error if not.
	StoredOrder bool

	// Alone says this Log is the one writer of its database, as the
	// server is of the embedded database it runs: it keeps no copies for
	// other servers, probes for their events only every second, and at
	// Open takes events beyond the anchored head for events added behind
	// its back. StoredOrder, or Window without Follow, imply it.
	Alone bool

	// WindowFill is how many of the newest events Open reads into the
	// window when it fills it with a page of them (Follow, or a store read
	// by seq range: not StoredOrder); default the whole Window. The window
	// then grows with the log up to Window. A store whose newest events
	// cost the same whatever the log's length (mongostore's Segments)
	// opens in the same time at a million events as at a thousand.
	WindowFill int
}

// Log is the audit log. It is safe for use by many goroutines. Open it
// with Open and stop it with Close.
type Log struct {
	store    Store
	onCommit func([]*standin.Event)
	logger   *slog.Logger
	maxBatch int
	timeout  time.Duration
	chunk    int64
	stored   bool      // Config.StoredOrder
	win      *window   // nil unless Config.Window > 0
	follow   *follower // nil unless Config.Follow > 0
	anchor   *Anchor   // nil unless Config.Anchor
	sole     bool      // this Log is the database's one writer
	scans    bool      // Config.NoIndexes: the database scans for any query
	startup  Verification

	// checks are the verifications Check runs, until checkCtx ends (at
	// Close).
	checks      checker
	checkCtx    context.Context
	checkCancel context.CancelFunc

	// bg is the verification VerifyInBackground runs.
	bgMu     sync.Mutex
	bg       Background
	bgCancel context.CancelFunc
	bgDone   chan struct{}

	mu      sync.Mutex
	cond    *sync.Cond // signalled when pending grows or closed is set
	pending []*request
	closed  bool

	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	// stopFollow stops the follower, after the appender.
	stopFollow context.CancelFunc
	// tasks runs the window's fill and the sealer.
	tasks tasks
	// sealWake wakes the sealer when a delivery completes a chunk of
	// sealSize events.
	sealWake chan struct{}
	sealSize int64
	done     chan struct{} // closed when the appender has stopped

	// committed is the highest seq known to be stored, for readers.
	committed atomic.Int64

	// Appender state: touched only by the appender goroutine (and Open
	// before it starts).
	head      int64
	headHash  string
	headKnown bool
	// conflicted: another server took the next seq; the head is learned
	// from the copies of the newest events before the log is read.
	conflicted bool
	// lastConflict is when another server last took a seq from it, and
	// commitConflicted whether that happened during the last commit.
	lastConflict     time.Time
	commitConflicted bool
	// doubt holds events of an insert whose outcome could not be
	// learned; they are checked before anything else is appended.
	doubt []*standin.Event

	// insert and readHashes are the write and the read the appender's
	// correctness rests on; tests replace them to simulate faults.
	insert     func(ctx context.Context, evs []*standin.Event) error
	readHashes func(ctx context.Context, from, to int64) (map[int64]string, error)
}

// request is one Append call waiting for the appender.
type request struct {
	evs   []*standin.Event
	done  chan error // buffered: the appender never blocks on it
	taken bool       // guarded by Log.mu: the appender owns it now
	left  int        // appender only: events not yet stored
}

// item is one event of a commit with the call it belongs to.
type item struct {
	r *request
	e *standin.Event
}

// Open prepares store (creating its indexes unless Config.NoIndexes),
// reads the head of the chain and starts the appender. It returns
// EUnavailable when the database cannot be reached.
func Open(ctx context.Context, store Store, cfg Config) (*Log, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = defaultChunk
	}
	l := &Log{
		store:    store,
		onCommit: cfg.OnCommit,
		logger:   cfg.Logger,
		maxBatch: cfg.MaxBatch,
		timeout:  cfg.Timeout,
		chunk:    int64(cfg.Chunk),
		stored:   cfg.StoredOrder,
		anchor:   cfg.Anchor,
		sole:     cfg.Alone || cfg.StoredOrder || cfg.Window > 0 && cfg.Follow <= 0,
		scans:    cfg.NoIndexes,
		done:     make(chan struct{}),
	}
	if cfg.Window > 0 {
		l.win = newWindow(cfg.Window)
		l.win.fill = cfg.Window
		if cfg.WindowFill > 0 {
			l.win.fill = min(cfg.WindowFill, cfg.Window)
		}
	}
	l.cond = sync.NewCond(&l.mu)
	l.checkCtx, l.checkCancel = context.WithCancel(context.Background())
	l.insert = store.Insert
	l.readHashes = store.Hashes
	if !cfg.NoIndexes {
		if err := store.EnsureIndexes(ctx); err != nil {
			return nil, fault(err, "create audit indexes")
		}
	}
	if err := l.loadHead(ctx); err != nil {
		return nil, err
	}
	if l.anchor != nil {
		v, err := l.checkStart(ctx)
		if err != nil {
			return nil, err
		}
		l.startup = v
		if !v.OK {
			l.logger.Error("audit: the log does not agree with its anchor", "code", v.Code, "broken_at", v.BrokenAt, "problem", v.Problem)
		}
		if err := l.anchor.begin(l.head, l.headHash); err != nil {
			return nil, err
		}
	}
	sealer, ok := l.store.(Sealer)
	if ok && l.win != nil && !l.stored {
		l.sealWake, l.sealSize = make(chan struct{}, 1), sealer.ChunkSize()
	} else {
		sealer = nil
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	if cfg.Follow > 0 {
		l.startFollowing(cfg.Follow)
	}
	if l.win != nil && !l.stored && l.win.fill < l.win.max {
		l.tasks.start(l.fillWindow)
	}
	if sealer != nil {
		l.tasks.start(func(ctx context.Context) { l.runSealer(ctx, sealer) })
	}
	return l, nil
}

// startFollowing starts the follower from the head Open read, probing
// every every.
func (l *Log) startFollowing(every time.Duration) {
	if l.sole {
		// No other server should write: probing seldom still finds one
		// that does, at little cost.
		every = max(every, soleFollow)
	}
	l.follow = newFollower(l, every, l.head, l.headHash)
	ctx, stop := context.WithCancel(context.Background())
	l.stopFollow = stop
	go l.follow.run(ctx)
}

// loadHead learns where the log ends: with a window, by filling it (one
// pass over the collection for a Log that walks in stored order, else one
// page of the newest events); without, by asking the database.
func (l *Log) loadHead(ctx context.Context) error {
	if l.win == nil {
		return l.readHead(ctx)
	}
	load := l.win.loadNewest
	if l.stored {
		load = l.win.load
	}
	head, hash, err := load(ctx, l)
	if err != nil {
		return err
	}
	l.head, l.headHash, l.headKnown = head, hash, true
	l.noteCommitted(head)
	return nil
}

// readHead learns the last stored event from the database.
func (l *Log) readHead(ctx context.Context) error {
	seq, hash, err := l.store.Head(ctx)
	if err != nil {
		return fault(err, "read audit log head")
	}
	l.head, l.headHash, l.headKnown = seq, hash, true
	l.noteCommitted(seq)
	return nil
}

func (l *Log) noteCommitted(seq int64) {
	for {
		cur := l.committed.Load()
		if seq <= cur || l.committed.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// Close stops taking events, commits those already waiting and stops the
// appender. If ctx ends first, writes in flight are abandoned and every
// waiting Append fails with EUnavailable; Close still waits for that,
// which takes at most about Config.Timeout, and returns ctx's error.
// Append after Close returns EUnavailable.
//
// With an anchor, a clean Close records the head it leaves as a stop
// checkpoint; its failure to do so is returned after the log is closed.
func (l *Log) Close(ctx context.Context) error {
	l.stopBackground()
	l.checkCancel()
	l.checks.wg.Wait()
	l.tasks.stop()
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	defer l.stopFollowing()
	select {
	case <-l.done:
	case <-ctx.Done():
		l.cancel()
		<-l.done
		if l.anchor != nil {
			_ = l.anchor.end(0, "", false)
		}
		return fmt.Errorf("close audit log: %w", ctx.Err())
	}
	if l.anchor != nil {
		// Only a head the appender knows for certain may be signed as
		// where the log stopped; otherwise the next start allows for a
		// commit the anchor missed, as after a crash.
		clean := l.headKnown && len(l.doubt) == 0
		if err := l.anchor.end(l.head, l.headHash, clean); err != nil {
			return fmt.Errorf("close audit log: %w", err)
		}
	}
	return nil
}

// stopFollowing stops the follower, if any, and waits for it.
func (l *Log) stopFollowing() {
	if l.follow != nil {
		l.stopFollow()
		<-l.follow.done
	}
}

// Append stores evs, in order, at the end of the log, and returns once the
// store has them (on a MongoDB replica set, open its database with the
// write concern "majority" so an acknowledged event survives a failover).
// It fills in each event's ID (a new id in the shape of an ObjectID in
// hex, if empty), Time (now, if zero; always converted to UTC and truncated to the
// millisecond as stored), Seq, PrevHash and Hash. Strings that are not
// valid UTF-8 are repaired first, so what is hashed is what is stored.
//
// The events of one call get increasing seqs; they are consecutive unless
// another server sharing the database appends at the same moment. An
// event must not be passed to Append again or touched while Append runs.
//
// Errors: EInvalid for a nil event or one without a Type, and for an
// event that carries more than standin.MaxEventBytes: then none of the
// call's events is stored, but an audit.refused event for each oversized
// one, with the sizes of its fields. EUnavailable
// (the cause kept) when the events could not be stored: then none of
// them is stored, except in two cases the log reports at error level: the
// database failed in the middle of a call with several events and then
// could not be written again before the timeout (its first events are
// stored), or it failed during the insert and could not be asked what it
// stored (the events may be stored; the error wraps standin.ErrInDoubt,
// and Settle or the next append checks, and publishes those it finds
// through OnCommit). If ctx ends while the events are still
// queued they are withdrawn and ctx's error returned (EUnavailable for a
// deadline); once a commit has taken them, Append waits for its outcome,
// which the appender's own timeouts bound. An error the database answers
// the insert with (other than a duplicate seq, which is retried) is
// returned uncoded, an internal error; nothing is stored then.
//
// Once the events are stored, Append marks the standin.Record ctx carries
// (the request's own event is written).
func (l *Log) Append(ctx context.Context, evs ...*standin.Event) error {
	if len(evs) == 0 {
		return nil
	}
	for i, e := range evs {
		if e == nil {
			return standin.Errorf(standin.EInvalid, "Audit event %d is missing.", i+1)
		}
		if e.Type == "" {
			return standin.Errorf(standin.EInvalid, "An audit event needs a type.")
		}
	}
	if hasDuplicate(evs) {
		return standin.Errorf(standin.EInvalid, "The same audit event was given twice.")
	}
	if err := l.refuseOversized(ctx, evs); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return ctxError(err)
	}
	now := time.Now()
	for _, e := range evs {
		prepare(e, now)
	}
	if err := l.submit(ctx, &request{evs: evs, done: make(chan error, 1), left: len(evs)}); err != nil {
		return err
	}
	standin.MarkRecorded(ctx)
	return nil
}

// Settle finds out whether the events of appends that failed in doubt
// (standin.ErrInDoubt: the database failed during the insert and could
// not be asked what it stored) are stored, and takes those that are into
// the log as a commit would, before it returns. A caller that decides by
// the log what became of an action whose commit was in doubt settles
// first. Without a doubt it only waits for the writer's turn.
//
// Errors: EUnavailable when the database still cannot be asked.
func (l *Log) Settle(ctx context.Context) error {
	return l.submit(ctx, &request{done: make(chan error, 1)})
}

// submit queues r for the writer and waits for its answer.
func (l *Log) submit(ctx context.Context, r *request) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return unavailable(errors.New("append audit events: the audit log is closed"))
	}
	l.pending = append(l.pending, r)
	l.cond.Signal()
	l.mu.Unlock()

	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
	}
	l.mu.Lock()
	if !r.taken {
		if i := slices.Index(l.pending, r); i >= 0 {
			l.pending = slices.Delete(l.pending, i, i+1)
		}
		l.mu.Unlock()
		return ctxError(ctx.Err())
	}
	l.mu.Unlock()
	return <-r.done
}

// hasDuplicate reports whether one event appears twice in evs: its seq
// and hash could not be both.
func hasDuplicate(evs []*standin.Event) bool {
	if len(evs) <= 32 {
		for i, e := range evs {
			if slices.Contains(evs[:i], e) {
				return true
			}
		}
		return false
	}
	seen := make(map[*standin.Event]bool, len(evs))
	for _, e := range evs {
		if seen[e] {
			return true
		}
		seen[e] = true
	}
	return false
}

func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return unavailable(fmt.Errorf("append audit events: %w", err))
	}
	return fmt.Errorf("append audit events: %w", err)
}

// prepare fills in what the caller may leave out and normalizes what the
// database would otherwise change.
func prepare(e *standin.Event, now time.Time) {
	if e.ID == "" {
		e.ID = newEventID()
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = StoredTime(e.Time)
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	// The log keeps events (its window, OnCommit's receivers) after the
	// call, so each string is copied: a caller's string may be a view of
	// a buffer it reuses, as a web framework's request strings can be.
	for _, s := range []*string{&e.ID, &e.Type, &e.Actor.ID, &e.Actor.Name, &e.Subject.ID, &e.Subject.Name,
		&e.ImpersonationID, &e.Action, &e.Object, &e.Project, &e.Outcome, &e.Reason, &e.IP, &e.UserAgent} {
		*s = strings.Clone(strings.ToValidUTF8(*s, "\uFFFD"))
	}
	if e.Projects != nil {
		projects := make([]string, len(e.Projects)) // never write into the caller's array
		for i, p := range e.Projects {
			projects[i] = strings.Clone(strings.ToValidUTF8(p, "\uFFFD"))
		}
		e.Projects = projects
	}
}

// run is the appender: it commits batches until the log is closed and
// nothing is waiting.
func (l *Log) run() {
	defer close(l.done)
	for {
		batch := l.take()
		if batch == nil {
			return
		}
		l.commit(batch)
		l.yieldTurn()
	}
}

// yieldTurn pauses the appender a moment after a commit when another
// server took a seq from it lately: with several servers appending, the
// one that just committed would otherwise win most races for the next
// seq, knowing the head first, and the others starve. So a server that
// committed without a conflict while others append gives them a moment;
// one that had to retry does not. The pause also lets more calls join
// this server's next batch.
func (l *Log) yieldTurn() {
	if l.commitConflicted || time.Since(l.lastConflict) > contendedFor {
		return // it waited its turn already, or no one else appends
	}
	select {
	case <-time.After(rand.N(contendedPause)):
	case <-l.ctx.Done():
	}
}

// take waits for requests and takes as many whole ones as fit in one
// batch (at least one). It returns nil once closed with nothing waiting.
func (l *Log) take() []*request {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.pending) == 0 && !l.closed {
		l.cond.Wait()
	}
	n, i := 0, 0
	for ; i < len(l.pending); i++ {
		k := len(l.pending[i].evs)
		if i > 0 && n+k > l.maxBatch {
			break
		}
		n += k
		l.pending[i].taken = true
	}
	if i == 0 {
		return nil
	}
	batch := slices.Clone(l.pending[:i])
	l.pending = slices.Delete(l.pending, 0, i)
	return batch
}

// commit stores the events of reqs after the head and answers each
// request.
//
// An insert that fails may have stored a prefix of its documents (inserts
// are ordered, and a seq is only ever inserted after its predecessor).
// commit asks the database which of the seqs it wrote now hold its hashes:
// calls whose events are all among them succeed; the rest are retried
// after re-reading the head while the timeout allows, at once after a
// seq was taken (ErrSeqTaken: another server took those seqs) and with a
// short pause after the database could not be reached (ErrUnreachable). If the database cannot even be asked, the whole
// insert is in doubt: its calls fail and the events are remembered so the
// next commit can check them first.
func (l *Log) commit(reqs []*request) {
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	defer cancel()
	l.commitConflicted = false
	todo, settles := split(reqs)
	l.settle(ctx, settles)
	rest, failure, doubted := l.write(ctx, todo)
	if len(rest) > 0 {
		l.abandon(rest, failure, doubted)
	}
}

// split separates the events of reqs, in order, from the requests of
// Settle, which carry none.
func split(reqs []*request) (todo []item, settles []*request) {
	for _, r := range reqs {
		if len(r.evs) == 0 {
			settles = append(settles, r)
		}
		for _, e := range r.evs {
			todo = append(todo, item{r: r, e: e})
		}
	}
	return todo, settles
}

// settle answers the requests of Settle: whether what is in doubt could
// be checked.
func (l *Log) settle(ctx context.Context, settles []*request) {
	if len(settles) == 0 {
		return
	}
	var err error
	if serr := l.sync(ctx); serr != nil {
		err = l.failure(serr, "check audit appends in doubt")
	}
	for _, r := range settles {
		r.done <- err
	}
}

// write stores todo after the head, retrying while the commit's time
// allows, and answers the calls it completes. It returns the items not
// stored and why; doubted reports that their insert is in doubt.
func (l *Log) write(ctx context.Context, todo []item) (rest []item, failure error, doubted bool) {
	for attempt := 1; len(todo) > 0; attempt++ {
		if err := l.sync(ctx); err != nil {
			return todo, l.failure(err, "prepare audit append"), false
		}
		l.chain(todo)
		err := l.insert(ctx, eventsOf(todo))
		if err == nil {
			l.advance(todo)
			return nil, nil, false
		}
		stored, conflict, rerr := l.learnStored(todo, err)
		if rerr != nil {
			return todo, l.remember(todo, err, rerr), true
		}
		if stored > 0 {
			l.advance(todo[:stored])
		}
		todo = todo[stored:]
		if len(todo) == 0 {
			return nil, nil, false
		}
		l.headKnown = false
		conflict = conflict || errors.Is(err, ErrSeqTaken)
		l.conflicted = conflict
		if conflict {
			l.lastConflict, l.commitConflicted = time.Now(), true
		}
		if conflict {
			l.logger.Debug("audit append conflict: another writer took the next seq; re-reading the head",
				"seq", todo[0].e.Seq, "attempt", attempt)
		}
		if failure := l.retry(ctx, err, conflict, attempt); failure != nil {
			return todo, failure, false
		}
	}
	return nil, nil, false
}

// retry decides, after the insert of attempt failed with err, whether to
// try again: at once after a conflict (another writer took the next
// seq), after a short pause when the database could not be reached,
// while the commit's time allows. It returns why not, nil to try again.
func (l *Log) retry(ctx context.Context, err error, conflict bool, attempt int) error {
	switch {
	case conflict:
	case !errors.Is(err, ErrUnreachable):
		return l.failure(err, "append audit events")
	default:
		pause := min(time.Duration(attempt)*50*time.Millisecond, 500*time.Millisecond)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		return l.failure(fmt.Errorf("%w (after %d attempts, the last: %w)", ctx.Err(), attempt, err), "append audit events")
	}
	return nil
}

// remember keeps todo, whose insert failed with err and whose outcome
// could not be learned (rerr), for the next commit to check first, and
// returns the error its calls get.
func (l *Log) remember(todo []item, err, rerr error) error {
	l.doubt = make([]*standin.Event, 0, len(todo))
	for _, it := range todo {
		l.doubt = append(l.doubt, it.e.Clone())
	}
	l.headKnown = false
	l.logger.Error("audit append in doubt: the events may be stored; the next append checks",
		"first_seq", todo[0].e.Seq, "last_seq", todo[len(todo)-1].e.Seq, "err", err, "check_err", rerr)
	return inDoubt(fmt.Errorf("append audit events: %w (and could not check what was stored: %v)", err, rerr))
}

// abandon answers the calls of todo, which were not stored, with
// failure. When the database is failing, it answers the calls queued
// meanwhile too.
func (l *Log) abandon(todo []item, failure error, doubted bool) {
	var rest []*request
	if standin.ErrorCode(failure) == standin.EUnavailable {
		// Everything queued meanwhile was waiting on a database that is
		// failing; answering it now keeps every Append's wait bounded by
		// one commit rather than by the length of the queue. It is taken
		// before any call is answered: a call made after hearing of this
		// failure gets a try of its own.
		l.mu.Lock()
		rest = l.pending
		l.pending = nil
		for _, r := range rest {
			r.taken = true
		}
		l.mu.Unlock()
	}
	l.fail(todo, failure)
	if doubted {
		// The calls queued meanwhile were not tried: they failed, no doubt.
		failure = unavailable(errors.New("append audit events: not tried, the database is failing"))
	}
	for _, r := range rest {
		r.done <- failure
	}
}

// failure names why a commit gave up: EUnavailable for a database that
// did not answer or a log being closed, else the store's error.
func (l *Log) failure(err error, what string) error {
	if l.ctx.Err() != nil {
		return unavailable(fmt.Errorf("%s: the audit log was closed: %w", what, err))
	}
	return fault(err, what)
}

// fail answers the calls of todo, none of whose events after the stored
// ones are stored, with err.
func (l *Log) fail(todo []item, err error) {
	seen := make(map[*request]bool)
	for _, it := range todo {
		it.e.Seq, it.e.PrevHash, it.e.Hash = 0, "", ""
		if seen[it.r] {
			continue
		}
		seen[it.r] = true
		if it.r.left < len(it.r.evs) {
			l.logger.Error("audit append partly stored: its first events are in the log, the rest failed",
				"stored", len(it.r.evs)-it.r.left, "events", len(it.r.evs), "err", err)
		}
	}
	for r := range seen {
		r.done <- err
	}
}

// chain assigns seqs and hashes after the head.
func (l *Log) chain(todo []item) {
	seq, prev := l.head, l.headHash
	for _, it := range todo {
		seq++
		it.e.Seq, it.e.PrevHash = seq, prev
		it.e.Hash = ComputeHash(it.e)
		prev = it.e.Hash
	}
}

func eventsOf(todo []item) []*standin.Event {
	evs := make([]*standin.Event, len(todo))
	for i, it := range todo {
		evs[i] = it.e
	}
	return evs
}

// advance records that items, the next events of the chain, are stored:
// it moves the head, publishes them and answers calls now complete.
func (l *Log) advance(items []item) {
	last := items[len(items)-1].e
	l.head, l.headHash, l.headKnown = last.Seq, last.Hash, true
	l.noteCommitted(last.Seq)
	if l.anchor != nil {
		l.anchor.advance(last.Seq, last.Hash)
	}
	evs := make([]*standin.Event, len(items))
	for i, it := range items {
		evs[i] = it.e
	}
	l.handOver(evs)
	for _, it := range items {
		it.r.left--
		if it.r.left == 0 {
			it.r.done <- nil
		}
	}
	if l.follow != nil {
		// The other servers' copies come after the answers: they wait for
		// them anyway, and this server's callers need not.
		l.mirror(evs)
	}
}

// handOver hands over events this Log just stored: to the follower, which
// delivers them once nothing before them is missing (the caller then
// copies them for the other servers, see mirror); without a follower,
// straight to the window and OnCommit.
func (l *Log) handOver(evs []*standin.Event) {
	if l.follow == nil {
		l.publish(evs)
		return
	}
	l.follow.offer(evs)
}

// publish records stored events in the window and hands copies of them
// to OnCommit.
func (l *Log) publish(evs []*standin.Event) {
	if l.win != nil && len(evs) > 0 {
		if err := l.win.add(evs); err != nil {
			l.logger.Warn("audit: recent events are no longer kept in memory; queries go to the database", "err", err)
		}
		if l.sealWake != nil {
			l.wakeSealer(evs, l.sealSize)
		}
	}
	if l.onCommit == nil || len(evs) == 0 {
		return
	}
	cp := make([]*standin.Event, len(evs))
	for i, e := range evs {
		cp[i] = e.Clone()
	}
	defer func() {
		if p := recover(); p != nil {
			l.logger.Error("audit OnCommit panicked", "panic", p, "first_seq", cp[0].Seq)
		}
	}()
	l.onCommit(cp)
}

// sync makes the head current before a commit: it settles events left in
// doubt by a failed insert and re-reads the head when another server may
// have moved it.
func (l *Log) sync(ctx context.Context) error {
	if len(l.doubt) > 0 {
		first, last := l.doubt[0].Seq, l.doubt[len(l.doubt)-1].Seq
		got, err := l.readHashes(ctx, first, last)
		if err != nil {
			return err
		}
		var stored []*standin.Event
		for _, e := range l.doubt {
			if got[e.Seq] != e.Hash {
				break
			}
			stored = append(stored, e)
		}
		l.doubt = nil
		if len(stored) > 0 {
			l.logger.Error("audit events were stored although their append was reported failed",
				"first_seq", stored[0].Seq, "last_seq", stored[len(stored)-1].Seq)
			last := stored[len(stored)-1]
			l.noteCommitted(last.Seq)
			if l.anchor != nil {
				l.anchor.advance(last.Seq, last.Hash)
			}
			l.handOver(stored)
			if l.follow != nil {
				l.mirror(stored)
			}
		}
	}
	if l.headKnown {
		return nil
	}
	if l.conflicted {
		l.conflicted = false
		if l.learnHead(ctx) {
			return nil
		}
	}
	return l.readHead(ctx)
}

// learnStored learns how many of todo's events a failed insert stored:
// from its error when the database said, else by asking it.
func (l *Log) learnStored(todo []item, err error) (n int, conflict bool, rerr error) {
	var sb *StoredBefore
	if errors.As(err, &sb) && sb.N >= 0 && sb.N < len(todo) {
		return sb.N, errors.Is(err, ErrSeqTaken), nil
	}
	return l.storedPrefix(todo)
}

// storedPrefix asks the database, after a failed insert, how many of
// todo's events it holds (they form a prefix) and whether another writer's
// event occupies the next seq. It has its own time budget: the insert may
// have used up the commit's.
func (l *Log) storedPrefix(todo []item) (n int, conflict bool, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), l.timeout)
	defer cancel()
	got, err := l.readHashes(ctx, todo[0].e.Seq, todo[len(todo)-1].e.Seq)
	if err != nil {
		return 0, false, err
	}
	for n < len(todo) && got[todo[n].e.Seq] == todo[n].e.Hash {
		n++
	}
	if n < len(todo) {
		_, conflict = got[todo[n].e.Seq]
	}
	return n, conflict, nil
}
