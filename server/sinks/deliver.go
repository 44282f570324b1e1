package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"standin/server/lease"
	"standin/server/mongostore"
	"standin/server/standin"
)

// Store keeps the sinks and how their delivery stands.
type Store interface {
	Sinks(ctx context.Context) ([]*standin.Sink, error)
	SinkByID(ctx context.Context, id string) (*standin.Sink, error)
	SinkHealth(ctx context.Context, id string) (*standin.SinkHealth, error)
	SaveSinkHealth(ctx context.Context, h *standin.SinkHealth) error
}

// Log reads the audit log in seq order (audit.Log).
type Log interface {
	EventsAfter(ctx context.Context, afterSeq int64, fn func(*standin.Event) error) error
}

// Leases runs a job on one node at a time (lease.Leases).
type Leases interface {
	Every(ctx context.Context, job string, period, term time.Duration, fn func(context.Context))
}

// Defaults of Config.
const (
	DefaultBatch       = 500
	DefaultPeriod      = 250 * time.Millisecond
	DefaultTerm        = 10 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultTurnBudget  = 5 * time.Second
	defaultRefreshSink = 2 * time.Second
)

// Config configures a Deliverer. Store, Log and Leases are required.
type Config struct {
	Store  Store
	Log    Log
	Leases Leases
	// Checkpoints, when set, are sent to every sink after the events
	// they attest.
	Checkpoints CheckpointStore
	// Allow says where sinks may connect (nil: any public address).
	Allow *Allowlist
	// Batch bounds the records of one send (DefaultBatch).
	Batch int
	// Period is how often the node holding a sink's lease looks for new
	// events (DefaultPeriod); Term is the lease's term (DefaultTerm).
	Period, Term time.Duration
	// Timeout bounds one send (DefaultTimeout).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure, which
	// doubles with each failure in a row, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// OnHealth is told of every change of a sink's health, on the node
	// delivering it.
	OnHealth func(h standin.SinkHealth)
	Now      func() time.Time
	Logger   *slog.Logger
}

// Deliverer delivers every enabled sink, each under a lease of its own,
// so that each is delivered by one node at a time and the nodes share
// the sinks between them.
type Deliverer struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	running map[string]context.CancelFunc // by sink id

	cpMu sync.Mutex
	cps  []mongostore.StoredCheckpoint // read at cpAt
	cpAt time.Time
}

// NewDeliverer returns a Deliverer; Run starts it.
func NewDeliverer(cfg Config) *Deliverer {
	if cfg.Allow == nil {
		cfg.Allow = &Allowlist{}
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.Term <= 0 {
		cfg.Term = DefaultTerm
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.OnHealth == nil {
		cfg.OnHealth = func(standin.SinkHealth) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{cfg: cfg, log: cfg.Logger, running: make(map[string]context.CancelFunc)}
}

// Run delivers until ctx ends: it follows the sinks as admins add,
// change and remove them, and runs one delivery loop per enabled sink.
func (d *Deliverer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(defaultRefreshSink)
	defer t.Stop()
	for {
		d.follow(ctx, &wg)
		select {
		case <-ctx.Done():
			d.mu.Lock()
			for _, cancel := range d.running {
				cancel()
			}
			d.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

// follow starts the loops of new enabled sinks and stops those of sinks
// removed or disabled.
func (d *Deliverer) follow(ctx context.Context, wg *sync.WaitGroup) {
	all, err := d.cfg.Store.Sinks(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("reading the audit sinks; trying again shortly", "err", err)
		}
		return
	}
	want := make(map[string]bool, len(all))
	for _, s := range all {
		if s.Enabled {
			want[s.ID] = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, cancel := range d.running {
		if !want[id] {
			cancel()
			delete(d.running, id)
		}
	}
	for id := range want {
		if _, ok := d.running[id]; ok {
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		d.running[id] = cancel
		loop := &sinkLoop{d: d, id: id}
		wg.Go(func() {
			defer loop.close()
			d.cfg.Leases.Every(sctx, "sink:"+id, d.cfg.Period, d.cfg.Term, loop.turn)
		})
	}
}

// sinkLoop delivers one sink on this node while it holds the sink's
// lease.
type sinkLoop struct {
	d  *Deliverer
	id string

	tr       transport
	trFor    string // the sink's settings tr was made for
	retryAt  time.Time
	sink     *standin.Sink
	health   *standin.SinkHealth
	lastTurn time.Time
	dirty    bool      // health moved since it was saved
	savedAt  time.Time // when health was saved
}

// close records where the sink got to and closes its transport.
func (l *sinkLoop) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.record(ctx, true)
	if l.tr != nil {
		_ = l.tr.Close()
	}
}

// term is the lease term t falls in.
func (l *sinkLoop) term(t time.Time) int64 { return lease.TermOf(t, l.d.cfg.Term) }

// load reads the sink's settings, which apply from the next record on,
// and its health when this node did not hold the previous term: another
// node may have delivered meanwhile, and only the holder writes the
// health. false when the sink is gone or disabled.
func (l *sinkLoop) load(ctx context.Context) bool {
	d, now := l.d, l.d.cfg.Now()
	held := l.health != nil && l.term(now)-l.term(l.lastTurn) <= 1
	l.lastTurn = now
	s, err := d.cfg.Store.SinkByID(ctx, l.id)
	if err != nil || !s.Enabled {
		l.sink = nil
		return false // removed or disabled: follow stops this loop
	}
	h := l.health
	if !held {
		if h, err = d.cfg.Store.SinkHealth(ctx, l.id); err != nil {
			l.sink, l.health = nil, nil
			return false
		}
		if h == nil {
			h = &standin.SinkHealth{SinkID: l.id}
		}
		l.dirty = false
	}
	// Settings may move the start past what was delivered.
	h.Delivered = max(h.Delivered, s.FromSeq)
	l.sink, l.health = s, h
	return true
}

// turn delivers what is due, for up to DefaultTurnBudget: batch after
// batch from the sink's last acknowledged seq, until it has caught up or
// a send fails (the next try then waits its backoff). Where it got to is
// recorded once at the end of the turn: a node that stops before then
// sends that turn's batches again, with the same seqs, which
// at-least-once allows.
func (l *sinkLoop) turn(ctx context.Context) {
	d := l.d
	if d.cfg.Now().Before(l.retryAt) || !l.load(ctx) {
		return
	}
	s, h := l.sink, l.health
	defer l.record(ctx, false)
	budget := d.cfg.Now().Add(DefaultTurnBudget)
	for ctx.Err() == nil && d.cfg.Now().Before(budget) {
		recs, last, err := l.next(ctx, s, h.Delivered)
		if err != nil {
			l.failed(ctx, h, fmt.Errorf("read the audit log: %w", err))
			return
		}
		cps, err := d.checkpoints(ctx, h.Checkpoint, last)
		if err != nil {
			d.log.Warn("reading the checkpoints for the sinks; they follow later", "err", err)
		}
		if last == h.Delivered && len(cps) == 0 {
			return // caught up
		}
		if len(recs)+len(cps) > 0 {
			if err := l.send(ctx, s, append(recs, cps...)); err != nil {
				l.failed(ctx, h, err)
				return
			}
		}
		if len(cps) > 0 {
			h.Checkpoint = cps[len(cps)-1].event.Seq
		}
		h.Delivered, h.DeliveredAt = last, d.cfg.Now()
		h.Failures, h.LastError, l.retryAt = 0, "", time.Time{}
		l.dirty = true
	}
}

// saveEvery bounds how often a delivering node records where its sink
// got to, but at the end of its lease's term: a node that stops sends at
// most that much again.
const saveEvery = time.Second

// record saves where the sink got to, at most every saveEvery unless
// now: the store's writes are shared with every request.
func (l *sinkLoop) record(ctx context.Context, now bool) {
	d := l.d
	t := d.cfg.Now()
	// The last turns of a term record at once: the next term may be
	// another node's, which starts from what is recorded.
	ending := l.term(t.Add(3*d.cfg.Period)) != l.term(t)
	if !l.dirty || l.health == nil || (!now && !ending && t.Sub(l.savedAt) < saveEvery) {
		return
	}
	h := l.health
	if err := d.cfg.Store.SaveSinkHealth(ctx, h); err != nil {
		d.log.Warn("recording a sink's delivery; its last batches are sent again", "sink", l.id, "err", err)
		l.health = nil // read again: the store has where it was
		return
	}
	l.dirty, l.savedAt = false, d.cfg.Now()
	d.cfg.OnHealth(*h)
}

// checkpointsEvery is how often the stored checkpoints are read again,
// for every sink this node delivers.
const checkpointsEvery = 5 * time.Second

// checkpoints returns the records of the stored checkpoints with a seq
// above after and up to upto, one per seq: those a sink gets with the
// events up to upto.
func (d *Deliverer) checkpoints(ctx context.Context, after, upto int64) ([]record, error) {
	if d.cfg.Checkpoints == nil {
		return nil, nil
	}
	d.cpMu.Lock()
	defer d.cpMu.Unlock()
	if d.cfg.Now().Sub(d.cpAt) >= checkpointsEvery {
		all, err := d.cfg.Checkpoints.Checkpoints(ctx)
		if err != nil {
			return nil, err
		}
		d.cps, d.cpAt = all, d.cfg.Now()
	}
	var out []record
	for _, c := range d.cps {
		if c.Seq <= after || c.Seq > upto || (len(out) > 0 && out[len(out)-1].event.Seq == c.Seq) {
			continue
		}
		r, err := checkpointRecord(c)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// errBatchFull stops a read once a batch is full.
var errBatchFull = errors.New("batch full")

// next reads the events after seq up to a batch of those s wants, and
// returns them encoded with the seq of the last event read (wanted or
// not): the sink's position once they are acknowledged.
func (l *sinkLoop) next(ctx context.Context, s *standin.Sink, after int64) ([]record, int64, error) {
	var recs []record
	last, scanned := after, 0
	err := l.d.cfg.Log.EventsAfter(ctx, after, func(e *standin.Event) error {
		if s.Wants(e) {
			data, err := encode(s.Format, e)
			if err != nil {
				return fmt.Errorf("encode event %d: %w", e.Seq, err)
			}
			recs = append(recs, record{event: e, data: data})
		}
		last, scanned = e.Seq, scanned+1
		if len(recs) >= l.d.cfg.Batch || scanned >= 20*l.d.cfg.Batch {
			return errBatchFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errBatchFull) {
		return nil, after, err
	}
	return recs, last, nil
}

// send delivers recs through the sink's transport, made again when its
// settings changed.
func (l *sinkLoop) send(ctx context.Context, s *standin.Sink, recs []record) error {
	key := s.Destination() + "\x00" + s.Secret + "\x00" + s.CA
	if l.tr == nil || l.trFor != key {
		if l.tr != nil {
			_ = l.tr.Close()
		}
		tr, err := newTransport(s, l.d.cfg.Allow, l.d.cfg.Timeout, l.d.cfg.Now)
		if err != nil {
			return err
		}
		l.tr, l.trFor = tr, key
	}
	sctx, cancel := context.WithTimeout(ctx, l.d.cfg.Timeout)
	defer cancel()
	return l.tr.Send(sctx, recs)
}

// failed records a failure and when to try again: the backoff doubles
// with each failure in a row, from MinBackoff up to MaxBackoff, each
// wait drawn between half and all of it so that sinks failing together
// do not retry together. What was delivered before it in the same turn
// is recorded with it.
func (l *sinkLoop) failed(ctx context.Context, h *standin.SinkHealth, err error) {
	d := l.d
	if ctx.Err() != nil {
		return // stopping, not failing
	}
	h.Failures++
	wait := d.cfg.MinBackoff << min(h.Failures-1, 20)
	wait = min(wait, d.cfg.MaxBackoff)
	wait = wait/2 + rand.N(wait/2+1)
	l.retryAt = d.cfg.Now().Add(wait)
	h.LastError, h.LastErrorAt = err.Error(), d.cfg.Now()
	d.log.Warn("an audit sink failed; trying again later", "sink", l.id, "failures", h.Failures, "retry_in", wait, "err", err)
	if serr := d.cfg.Store.SaveSinkHealth(ctx, h); serr != nil {
		d.log.Warn("recording a sink's failure", "sink", l.id, "err", serr)
		l.health = nil
	} else {
		l.dirty, l.savedAt = false, d.cfg.Now()
	}
	d.cfg.OnHealth(*h)
}

// newTransport makes the transport of s's kind.
func newTransport(s *standin.Sink, allow *Allowlist, timeout time.Duration, now func() time.Time) (transport, error) {
	switch s.Kind {
	case standin.SinkWebhook:
		return newWebhook(s, allow, timeout, now), nil
	case standin.SinkSyslog:
		return newSyslog(s, allow, timeout), nil
	}
	return nil, fmt.Errorf("sink kind %q cannot be delivered yet", s.Kind)
}
