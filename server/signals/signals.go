// Package signals carries what every server sharing a database must
// learn that is not an audit fact: a session's sockets to close, a
// session's tabs to tell of a switch, a notification to push. The audit
// log carries the facts (package audit, followed by every server); its
// events, chain and export stay as the product defines them, and what
// only serves the live delivery travels here, in an ordered stream of its
// own with its own seqs.
//
// A Stream sends signals and hands every signal, its own and the other
// servers', to its handler in seq order, each once. A signal is stored
// under the next seq by an insert that a unique key makes exact on both
// databases: of two servers signalling at once, one gets the seq and the
// other takes the next. The store keeps only the newest signals (a few
// hundred); a server that falls further behind than that learns it
// missed some (Config.Missed) and carries on from the oldest kept.
//
// Sending never blocks the caller: signals wait in an ordered queue for
// the one goroutine that stores them. A server delivers its own signals
// at once when nothing before them is missing.
package signals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Signal is one message to every server.
type Signal struct {
	// Seq orders the stream: 1, 2, 3, … with no gap.
	Seq int64
	// At is when it was sent.
	At time.Time
	// Kind says what it is, Data what it carries; both are the sender's.
	Kind string
	Data []byte
}

// ErrSeqTaken is wrapped by Store.Insert's error when the seq is taken.
var ErrSeqTaken = errors.New("a signal is stored under that seq already")

// Store keeps the newest signals of the servers sharing a database.
type Store interface {
	// Insert stores s under s.Seq; its error wraps ErrSeqTaken when that
	// seq is taken.
	Insert(ctx context.Context, s Signal) error
	// Has reports whether the signal at seq is kept: a cheap probe.
	Has(ctx context.Context, seq int64) (bool, error)
	// After returns signals kept above after, in seq order, from the
	// first kept.
	After(ctx context.Context, after int64) ([]Signal, error)
	// Last returns the highest seq kept, 0 when none is.
	Last(ctx context.Context) (int64, error)
}

// Config configures Open. Handle is required.
type Config struct {
	// Handle receives every signal in seq order, never concurrently with
	// itself. It must not block.
	Handle func(Signal)
	// Missed, if set, is told when signals were lost to this server: it
	// fell behind by more than the store keeps, or a signal could not be
	// stored. The receiver makes up for them another way. Like Handle it
	// must not block nor call the Stream.
	Missed func()
	// Every is how often the stream probes for other servers' signals
	// (default 50 ms).
	Every time.Duration
	// Timeout bounds each read and each attempt to store (default 5 s).
	Timeout time.Duration
	// Logger receives faults (default slog.Default()).
	Logger *slog.Logger
	// Alone says no other server should share the database (it is this
	// process's own): the stream then probes only every second, which
	// still finds another server that joins it anyway.
	Alone bool
}

const (
	defaultEvery = 50 * time.Millisecond
	// holeWait is how long a missing seq may stay missing, with later
	// ones kept, before it counts as lost.
	holeWait = time.Second
	// fullEvery is how many probes pass between two reads that no probe
	// asked for.
	fullEvery = 20
	// queueSize is how many signals may wait to be stored.
	queueSize = 4096
	// sendFor is how long a signal is retried while the database fails.
	sendFor = 30 * time.Second
)

// Stream sends and receives signals. Open it with Open, stop it with
// Close.
type Stream struct {
	store Store
	cfg   Config
	queue chan Signal
	wake  chan struct{}

	mu      sync.Mutex // held while delivering
	next    int64      // the next seq to deliver
	known   int64      // the highest seq known to be stored
	pending map[int64]Signal
	missing time.Time // since when next has been missing with later ones kept
	closed  bool

	stop context.CancelFunc
	done sync.WaitGroup
}

// Open starts a stream after the newest signal stored.
//
// Errors: the store's, when it cannot be read.
func Open(ctx context.Context, store Store, cfg Config) (*Stream, error) {
	if cfg.Handle == nil {
		return nil, errors.New("signals: a handler is required")
	}
	if cfg.Every <= 0 {
		cfg.Every = defaultEvery
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Missed == nil {
		cfg.Missed = func() {}
	}
	last, err := store.Last(ctx)
	if err != nil {
		return nil, fmt.Errorf("open signals: %w", err)
	}
	s := &Stream{store: store, cfg: cfg, queue: make(chan Signal, queueSize), wake: make(chan struct{}, 1),
		next: last + 1, known: last, pending: make(map[int64]Signal)}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	if cfg.Alone {
		cfg.Every = max(cfg.Every, time.Second)
		s.cfg.Every = cfg.Every
	}
	s.done.Go(func() { s.follow(runCtx) })
	s.done.Go(func() { s.send(runCtx) })
	return s, nil
}

// Send queues a signal of kind carrying data for every server, this one
// included. It never blocks: when the queue is full (the database has
// been failing for long), the signal is dropped, logged and counted as
// missed.
func (s *Stream) Send(kind string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.cfg.Logger.Warn("signals: a signal sent after close was dropped", "kind", kind)
		return
	}
	select {
	case s.queue <- Signal{Kind: kind, Data: data, At: time.Now().UTC()}:
	default:
		s.cfg.Logger.Error("signals: the queue is full; a signal was dropped", "kind", kind)
		s.cfg.Missed()
	}
}

// Close stores what is queued (until ctx ends) and stops the stream.
func (s *Stream) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	stopped := make(chan struct{})
	go func() {
		s.done.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		s.stop()
		<-stopped
		return fmt.Errorf("close signals: %w", ctx.Err())
	}
}

// send stores queued signals, in order, until the queue is closed and
// drained; then it stops the follower.
func (s *Stream) send(ctx context.Context) {
	defer s.stop()
	for sig := range s.queue {
		s.store1(ctx, sig)
	}
}

// store1 stores sig under the next free seq, retrying while the
// database fails for up to sendFor.
func (s *Stream) store1(ctx context.Context, sig Signal) {
	giveUp := time.Now().Add(sendFor)
	for attempt := 1; ; attempt++ {
		s.mu.Lock()
		sig.Seq = s.known + 1
		s.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err := s.store.Insert(actx, sig)
		if errors.Is(err, ErrSeqTaken) && ctx.Err() == nil && time.Now().Before(giveUp) {
			// Another server took it: learn what it and others stored,
			// then try the seq after.
			cancel()
			rctx, rcancel := context.WithTimeout(ctx, s.cfg.Timeout)
			s.read(rctx, sig.Seq-1)
			rcancel()
			if attempt%8 == 0 {
				time.Sleep(10 * time.Millisecond) // reading keeps failing: do not spin
			}
			continue
		}
		cancel()
		if err == nil {
			s.take([]Signal{sig}, time.Now())
			return
		}
		if ctx.Err() != nil || time.Now().After(giveUp) {
			s.cfg.Logger.Error("signals: a signal could not be stored and was dropped", "kind", sig.Kind, "err", err)
			s.cfg.Missed()
			return
		}
		pause := min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
		}
	}
}

// follow probes for signals until ctx ends.
func (s *Stream) follow(ctx context.Context) {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for probe := 1; ; probe++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		s.poll(pctx, probe%fullEvery == 0)
		cancel()
	}
}

// poll reads what is new, when a probe or what it knows says there is.
func (s *Stream) poll(ctx context.Context, always bool) {
	s.mu.Lock()
	next, behind := s.next, s.known >= s.next || len(s.pending) > 0
	s.mu.Unlock()
	if !behind && !always {
		has, err := s.store.Has(ctx, next)
		if err != nil || !has {
			if err != nil {
				s.cfg.Logger.Debug("signals: probing failed", "err", err)
			}
			return
		}
	}
	s.read(ctx, next-1)
}

// read reads the signals kept above after and takes them.
func (s *Stream) read(ctx context.Context, after int64) {
	sigs, err := s.store.After(ctx, after)
	if err != nil {
		s.cfg.Logger.Debug("signals: reading failed", "err", err)
		return
	}
	s.take(sigs, time.Now())
}

// take adds sigs to what waits and delivers the run that continues from
// next. A seq that stays missing while later ones are kept was lost (the
// store let it go before this server read it): the run resumes after it
// and Missed is told.
func (s *Stream) take(sigs []Signal, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sig := range sigs {
		if sig.Seq >= s.next {
			s.pending[sig.Seq] = sig
		}
		s.known = max(s.known, sig.Seq)
	}
	for {
		s.deliverRun()
		if len(s.pending) == 0 {
			s.missing = time.Time{}
			return
		}
		if s.missing.IsZero() {
			s.missing = now
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
		if now.Sub(s.missing) < holeWait {
			return
		}
		first := s.next
		for seq := range s.pending {
			if first == s.next || seq < first {
				first = seq
			}
		}
		s.cfg.Logger.Warn("signals: some were lost to this server", "from", s.next, "to", first-1)
		s.next, s.missing = first, time.Time{}
		s.cfg.Missed()
	}
}

// deliverRun hands the run of pending signals from next to the handler.
func (s *Stream) deliverRun() {
	for {
		sig, ok := s.pending[s.next]
		if !ok {
			return
		}
		delete(s.pending, s.next)
		s.next++
		s.missing = time.Time{}
		s.handle(sig)
	}
}

// handle calls the handler, which must not take the stream down.
func (s *Stream) handle(sig Signal) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("signals: the handler panicked", "kind", sig.Kind, "seq", sig.Seq, "panic", p)
		}
	}()
	s.cfg.Handle(sig)
}
