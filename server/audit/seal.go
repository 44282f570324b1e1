package audit

import (
	"context"
	"slices"
	"sync"
	"time"

	"standin/server/standin"
)

// sealEvery is how often the sealer looks for chunks left unsealed when no
// delivery woke it (a seal that failed, a chunk completed on another
// server while this one was down).
const sealEvery = time.Minute

// sealBatch is how many chunks the sealer takes at a time.
const sealBatch = 16

// runSealer seals the log's complete chunks (see Sealer) until ctx ends:
// at start, every complete chunk not sealed yet, newest first; then each
// chunk as its last event is delivered, from the window, without reading
// the database. Chunks older than the window are read from the log, a
// batch at a time. A chunk whose events cannot be read whole, or do not
// chain, is left unsealed: pages read its events one by one, and Verify
// reports what is wrong with them.
func (l *Log) runSealer(ctx context.Context, s Sealer) {
	t := time.NewTicker(sealEvery)
	defer t.Stop()
	unsealable := make(map[int64]bool)
	for {
		l.sealDue(ctx, s, unsealable)
		select {
		case <-ctx.Done():
			return
		case <-l.sealWake:
		case <-t.C:
		}
	}
}

// wakeSealer tells the sealer that a chunk may have been completed by
// evs, just delivered.
func (l *Log) wakeSealer(evs []*standin.Event, size int64) {
	for _, e := range evs {
		if e.Seq%size == 0 {
			select {
			case l.sealWake <- struct{}{}:
			default:
			}
			return
		}
	}
}

// sealDue seals every complete chunk delivered and not sealed, newest
// first, but those found unsealable before.
func (l *Log) sealDue(ctx context.Context, s Sealer, unsealable map[int64]bool) {
	size := s.ChunkSize()
	head := l.win.last()
	for ctx.Err() == nil && head >= size {
		due, err := s.Unsealed(ctx, head, sealBatch)
		if err != nil {
			l.logger.Debug("audit: sealed chunks could not be listed; sealing waits", "err", err)
			return
		}
		if len(due) == 0 {
			return
		}
		head = due[len(due)-1] * size // the next batch: older chunks
		var todo []int64
		for _, k := range due {
			if !unsealable[k] {
				todo = append(todo, k)
			}
		}
		chunks, err := l.chunksOf(ctx, size, todo)
		if err != nil {
			l.logger.Debug("audit: chunks to seal could not be read; sealing waits", "err", err)
			return
		}
		var seal [][]*standin.Event
		for _, k := range todo {
			evs := chunks[k]
			if evs == nil {
				l.logger.Warn("audit: a chunk of the log cannot be sealed: its events cannot be read whole or do not chain; pages read them one by one",
					"first_seq", k*size+1, "last_seq", (k+1)*size)
				unsealable[k] = true
				continue
			}
			seal = append(seal, evs)
		}
		if err := s.Seal(ctx, seal); err != nil {
			l.logger.Debug("audit: sealing chunks failed; they are sealed later", "err", err)
			return
		}
	}
}

// chunksOf returns the events of each chunk of ks whose events are whole
// and chain, from the window when it holds them, else read from the log:
// one scan per run of neighbouring chunks the window lacks, so that two
// chunks far apart do not read the log between them.
func (l *Log) chunksOf(ctx context.Context, size int64, ks []int64) (map[int64][]*standin.Event, error) {
	out := make(map[int64][]*standin.Event, len(ks))
	var lack []int64
	for _, k := range ks {
		if evs, ok := l.win.span(k*size+1, (k+1)*size); ok {
			out[k] = sealable(evs, k*size+1, size)
			continue
		}
		lack = append(lack, k)
	}
	slices.Sort(lack)
	for len(lack) > 0 {
		n := 1
		for n < len(lack) && lack[n] == lack[n-1]+1 {
			n++
		}
		run := lack[:n]
		lack = lack[n:]
		read := make(map[int64][]*standin.Event, len(run))
		damaged := make(map[int64]bool)
		err := l.store.Scan(ctx, Scan{After: run[0] * size, To: (run[len(run)-1] + 1) * size}, func(st Stored) error {
			k := (st.Seq - 1) / size
			if st.Damaged != "" || st.Foreign != "" || st.Event.Seq != st.Seq {
				damaged[k] = true
			} else {
				read[k] = append(read[k], st.Event)
			}
			return nil
		})
		if err != nil {
			return nil, fault(err, "read audit chunks to seal")
		}
		for _, k := range run {
			if !damaged[k] {
				out[k] = sealable(read[k], k*size+1, size)
			}
		}
	}
	return out, nil
}

// sealable returns evs when they are the size events of a chunk from seq
// first on, consecutive and chained, nil otherwise.
func sealable(evs []*standin.Event, first, size int64) []*standin.Event {
	if int64(len(evs)) != size {
		return nil
	}
	for i, e := range evs {
		if e.Seq != first+int64(i) || (i > 0 && e.PrevHash != evs[i-1].Hash) {
			return nil
		}
	}
	return evs
}

// span returns the window's events from seq first to last, shared (the
// caller only reads them), when it holds all of them.
func (w *window) span(first, last int64) ([]*standin.Event, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.off || len(w.evs) == 0 || first < w.evs[0].Seq || last > w.evs[len(w.evs)-1].Seq {
		return nil, false
	}
	base := w.evs[0].Seq
	return append([]*standin.Event(nil), w.evs[first-base:last-base+1]...), true
}

// tasks runs a Log's background work, each piece in its goroutine until
// stop.
type tasks struct {
	mu     sync.Mutex
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

// start runs fn in its goroutine with a context that stop cancels.
func (t *tasks) start(fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	t.mu.Lock()
	t.cancel = append(t.cancel, cancel)
	t.mu.Unlock()
	t.wg.Go(func() { fn(ctx) })
}

// stop cancels every task and waits for them to return.
func (t *tasks) stop() {
	t.mu.Lock()
	for _, cancel := range t.cancel {
		cancel()
	}
	t.mu.Unlock()
	t.wg.Wait()
}
