package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Files an Anchor keeps in its directory.
const (
	// HeadFile holds the newest signed head, one checkpoint as JSON,
	// replaced (temporary file and rename) for every commit.
	HeadFile = "audit-head.json"
	// CheckpointFile holds the chain of checkpoints, one JSON object a
	// line, appended to and never rewritten.
	CheckpointFile = "audit-checkpoints.jsonl"
)

// Defaults of AnchorConfig.
const (
	DefaultCheckpointEvery  = time.Minute
	DefaultCheckpointEvents = 1000
)

// CheckpointSink receives every checkpoint once it is in the checkpoint
// file, to keep a copy beyond this machine's reach.
type CheckpointSink interface {
	// Publish delivers c. It is called in order on the audit log's
	// appender, so it must return at once and deliver on its own time.
	// Its error is logged and reported by Status.
	Publish(c Checkpoint) error
}

// AnchorConfig configures OpenAnchor.
type AnchorConfig struct {
	// Key signs the checkpoints (required).
	Key *Key
	// Dir holds HeadFile and CheckpointFile (required). It is local to
	// one server: servers sharing a database each anchor what they
	// commit in a directory of their own.
	Dir string
	// Every is the longest time a moved head waits for a checkpoint
	// (default DefaultCheckpointEvery).
	Every time.Duration
	// Events is how many events at most follow the newest checkpoint
	// before the next is written (default DefaultCheckpointEvents).
	Events int64
	// Sinks receive every checkpoint after the checkpoint file.
	Sinks []CheckpointSink
	// Logger receives failures to write the anchor (default
	// slog.Default()).
	Logger *slog.Logger
}

// Anchor keeps the head of the audit chain outside the database, signed,
// so that a log changed behind the server's back is told from a whole one
// even after a restart: the head file says which event was newest at the
// last commit, the checkpoint file how the chain grew, and each start and
// clean stop is a checkpoint of its own. Give it to one Log through
// Config.Anchor; the Log drives it.
//
// What it detects and what it cannot is written down in docs/AUDIT.md and
// docs/RELIABILITY.md.
type Anchor struct {
	key    *Key
	dir    string
	every  time.Duration
	events int64
	sinks  []CheckpointSink
	logger *slog.Logger

	mu sync.Mutex
	// prior is the newest trusted checkpoint from before this start,
	// nil when there is none.
	prior *Checkpoint
	// problem says what was wrong with the files at OpenAnchor ("" when
	// nothing was).
	problem string
	// last is the newest checkpoint of the checkpoint file, head the
	// newest signed head (the head file's).
	last, head *Checkpoint
	// writeErr is the newest failure to write the anchor, nil once a
	// write succeeds again.
	writeErr error
	began    bool
	// pending is the commit waiting for the writer; taken is closed when
	// the writer takes it.
	pending *headUpdate
	taken   chan struct{}
	wake    chan struct{}      // a commit is waiting
	flushes chan chan struct{} // flush requests
	stop    chan struct{}      // closed to stop the writer
	done    chan struct{}      // closed when the writer has stopped
}

// OpenAnchor reads the anchor files in cfg.Dir (creating the directory if
// needed). A checkpoint file whose last line was cut short by a crash is
// repaired; a head file newer than the newest checkpoint becomes a
// checkpoint. What is found wrong with the files (a checkpoint that does
// not verify with the key, a head file that does not follow the
// checkpoints) does not stop it: the Log reports it.
//
// Errors: only for a directory or file that cannot be read or written.
func OpenAnchor(cfg AnchorConfig) (*Anchor, error) {
	if cfg.Key == nil || cfg.Dir == "" {
		return nil, errors.New("open audit anchor: a key and a directory are required")
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultCheckpointEvery
	}
	if cfg.Events <= 0 {
		cfg.Events = DefaultCheckpointEvents
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open audit anchor: %w", err)
	}
	a := &Anchor{key: cfg.Key, dir: cfg.Dir, every: cfg.Every, events: cfg.Events, sinks: cfg.Sinks, logger: cfg.Logger}
	last, lastErr, err := a.readLast()
	if err != nil {
		return nil, err
	}
	head, headErr, err := a.readHead()
	if err != nil {
		return nil, err
	}
	pub := a.key.pub
	if lastErr == nil && last != nil {
		lastErr = last.Verify(pub)
	}
	if headErr == nil && head != nil {
		headErr = head.Verify(pub)
	}
	switch {
	case lastErr != nil:
		a.problem = fmt.Sprintf("The newest checkpoint in %s cannot be trusted: %v.", CheckpointFile, lastErr)
		last = nil
	case headErr != nil:
		a.problem = fmt.Sprintf("The head file %s cannot be trusted: %v.", HeadFile, headErr)
		head = nil
	case head == nil && last != nil:
		a.problem = fmt.Sprintf("The head file %s is missing, though checkpoints exist.", HeadFile)
	}
	a.last, a.head, a.prior = last, head, last
	if head != nil {
		switch {
		case last != nil && head.Digest() == last.Digest():
		case (last == nil && head.Prev == "") || (last != nil && head.Prev == last.Digest()):
			// The head file is ahead of the checkpoints: it becomes one,
			// so that what it says outlives the head file's next write.
			if err := a.appendCheckpoint(head); err != nil {
				return nil, err
			}
			a.last = head
		case last != nil && head.Seq <= last.Seq:
			// An older head, as a power failure can leave when its
			// rename had not reached the disk: the checkpoint is newer.
			head = nil
		default:
			if a.problem == "" {
				a.problem = fmt.Sprintf("The head file %s does not follow the newest checkpoint.", HeadFile)
			}
			head = nil
		}
		if head != nil {
			a.prior = head
		}
	}
	return a, nil
}

// PublicKey returns the public half of the key the anchor signs with.
func (a *Anchor) PublicKey() PublicKey { return a.key.Public() }

// readLast returns the newest checkpoint of the checkpoint file (nil
// when there is none), cutting off a last line a crash left unfinished.
// bad is why that checkpoint cannot be read; err a file that cannot be.
func (a *Anchor) readLast() (c *Checkpoint, bad, err error) {
	path := filepath.Join(a.dir, CheckpointFile)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read audit checkpoints: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read audit checkpoints: %w", err)
	}
	size := st.Size()
	// A checkpoint is some 400 bytes: the tail holds the last whole line
	// unless the file is damaged, which then shows as a bad line.
	const tail = 64 << 10
	off := max(size-tail, 0)
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("read audit checkpoints: %w", err)
	}
	if n := len(buf); n > 0 && buf[n-1] != '\n' {
		end := bytes.LastIndexByte(buf, '\n') + 1
		if end == 0 && off > 0 {
			return nil, errors.New("its last line is longer than any checkpoint"), nil
		}
		if err := f.Truncate(off + int64(end)); err != nil {
			return nil, nil, fmt.Errorf("repair audit checkpoints: %w", err)
		}
		a.logger.Warn("audit: the checkpoint file's last line was cut short, as by a crash while writing it; removed",
			"file", path, "bytes", n-end)
		buf = buf[:end]
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	if len(buf) == 0 {
		return nil, nil, nil
	}
	line := buf[bytes.LastIndexByte(buf, '\n')+1:]
	var cp Checkpoint
	if err := json.Unmarshal(line, &cp); err != nil {
		return nil, fmt.Errorf("its last line is not a checkpoint: %w", err), nil
	}
	return &cp, nil, nil
}

// readHead returns the head file's checkpoint, nil when there is none.
func (a *Anchor) readHead() (c *Checkpoint, bad, err error) {
	raw, err := os.ReadFile(filepath.Join(a.dir, HeadFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read audit head file: %w", err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(raw, &cp); err != nil {
		return nil, fmt.Errorf("it is not a checkpoint: %w", err), nil
	}
	return &cp, nil, nil
}

// lastDigest is the Prev of the next checkpoint. Call with mu held.
func (a *Anchor) lastDigest() string {
	if a.last == nil {
		return ""
	}
	return a.last.Digest()
}

// signed returns a new checkpoint of kind for seq and hash, following
// the checkpoint whose digest is prev.
func (a *Anchor) signed(kind string, seq int64, hash, prev string) *Checkpoint {
	c := &Checkpoint{Kind: kind, Seq: seq, Hash: hash, Time: formatTime(time.Now()), Prev: prev}
	a.key.sign(c)
	return c
}

// headUpdate is a commit waiting for the writer.
type headUpdate struct {
	seq  int64
	hash string
}

// begin records what the database held when the Log opened, as a start
// checkpoint, and starts the writer, which records every commit after
// it.
func (a *Anchor) begin(seq int64, hash string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.began {
		return errors.New("open audit log: the anchor is already in use by a log")
	}
	a.began = true
	c := a.signed(KindStart, seq, hash, a.lastDigest())
	if err := a.writeHead(c, true); err != nil {
		return err
	}
	if err := a.appendCheckpoint(c); err != nil {
		return err
	}
	a.head, a.last = c, c
	a.publish(c)
	a.wake, a.flushes = make(chan struct{}, 1), make(chan chan struct{})
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go a.run(a.stop, a.done)
	return nil
}

// advance hands the writer a commit that moved the head to seq and hash.
// It returns at once, unless the writer has not yet taken the commit
// before: then it waits for that, so the head file never trails the log
// by more than the commit being written and the one waiting. The
// appender calls it after every commit, in order; the events are stored
// by then, so a failure to write the anchor is logged and kept for
// Status, never returned.
func (a *Anchor) advance(seq int64, hash string) {
	a.mu.Lock()
	for a.pending != nil {
		taken := a.taken
		a.mu.Unlock()
		<-taken
		a.mu.Lock()
	}
	a.pending, a.taken = &headUpdate{seq: seq, hash: hash}, make(chan struct{})
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run is the writer: it signs the head of each commit into the head
// file, off the appender's path, writes a checkpoint every a.events
// events and, while the head moves, every a.every, until stop is closed
// and what is waiting is written.
func (a *Anchor) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		var flushed chan struct{}
		select {
		case <-stop:
			a.record(a.take())
			return
		case <-a.wake:
		case flushed = <-a.flushes:
		case <-t.C:
			a.mu.Lock()
			h, last := a.head, a.last
			a.mu.Unlock()
			if h != nil && h != last {
				a.checkpoint(h)
			}
			continue
		}
		a.record(a.take())
		if flushed != nil {
			close(flushed)
		}
	}
}

// take takes the waiting commit, nil when there is none.
func (a *Anchor) take() *headUpdate {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.pending
	if u != nil {
		a.pending = nil
		close(a.taken)
	}
	return u
}

// record writes the head file for commit u and a checkpoint when one is
// due. Only the writer calls it.
func (a *Anchor) record(u *headUpdate) {
	if u == nil {
		return
	}
	a.mu.Lock()
	last, prev := a.last, a.lastDigest()
	a.mu.Unlock()
	c := a.signed(KindHead, u.seq, u.hash, prev)
	err := a.writeHead(c, false)
	a.mu.Lock()
	if err == nil {
		a.head = c
	}
	a.noteWrite(err, u.seq)
	a.mu.Unlock()
	if err == nil && (last == nil || u.seq-last.Seq >= a.events) {
		a.checkpoint(c)
	}
}

// checkpoint appends c, the newest head, to the checkpoint file and hands
// it to the sinks. Only the writer (or end, once it stopped) calls it.
func (a *Anchor) checkpoint(c *Checkpoint) {
	err := a.appendCheckpoint(c)
	a.mu.Lock()
	if err == nil {
		a.last = c
	}
	a.noteWrite(err, c.Seq)
	a.mu.Unlock()
	if err == nil {
		a.publish(c)
	}
}

// flush returns once the commit waiting for the writer, if any, is
// written.
func (a *Anchor) flush() {
	a.mu.Lock()
	flushes, done := a.flushes, a.done
	a.mu.Unlock()
	if flushes == nil {
		return
	}
	req := make(chan struct{})
	select {
	case flushes <- req:
		<-req
	case <-done:
	}
}

// end stops the writer once it has written every commit handed to it
// and, when clean, records a clean stop at seq and hash: a stop
// checkpoint, in the head file and the checkpoint file, both synced.
func (a *Anchor) end(seq int64, hash string, clean bool) error {
	a.mu.Lock()
	stop, done := a.stop, a.done
	a.stop = nil
	a.mu.Unlock()
	if stop == nil {
		return nil
	}
	close(stop)
	<-done
	if !clean {
		return nil
	}
	a.mu.Lock()
	c := a.signed(KindStop, seq, hash, a.lastDigest())
	a.mu.Unlock()
	err := a.writeHead(c, true)
	if err == nil {
		a.mu.Lock()
		a.head = c
		a.mu.Unlock()
		a.checkpoint(c)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		err = a.writeErr
	}
	a.noteWrite(err, seq)
	return err
}

// noteWrite keeps err for Status and logs a change. Call with mu held.
func (a *Anchor) noteWrite(err error, seq int64) {
	switch {
	case err != nil && a.writeErr == nil:
		a.logger.Error("audit: the chain's head could not be anchored outside the database; events are stored but a truncation of them would go unseen after a restart",
			"seq", seq, "err", err)
	case err == nil && a.writeErr != nil:
		a.logger.Info("audit: the chain's head is anchored again", "seq", seq)
	}
	a.writeErr = err
}

// publish hands c to the sinks.
func (a *Anchor) publish(c *Checkpoint) {
	for _, s := range a.sinks {
		if err := s.Publish(*c); err != nil {
			a.logger.Warn("audit: a checkpoint sink failed", "seq", c.Seq, "err", err)
		}
	}
}

// writeHead replaces the head file with c, atomically: a temporary file,
// synced so that it can never be found empty or torn, renamed over it.
// Only with durable set does it wait for the rename to reach the disk
// too: after a power failure the head file may be an older one, but never
// older than the newest checkpoint before it, which each waits for the
// disk (see Log.slack).
func (a *Anchor) writeHead(c *Checkpoint, durable bool) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("write audit head file: %w", err)
	}
	f, err := os.CreateTemp(a.dir, HeadFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("write audit head file: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(a.dir, HeadFile))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write audit head file: %w", err)
	}
	if durable {
		syncDir(a.dir)
	}
	return nil
}

// appendCheckpoint adds c as a line of the checkpoint file and waits for
// the disk.
func (a *Anchor) appendCheckpoint(c *Checkpoint) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("write audit checkpoint: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(a.dir, CheckpointFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("write audit checkpoint: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write audit checkpoint: %w", err)
	}
	return nil
}

// anchorState is what the anchor knows, copied for a reader.
type anchorState struct {
	prior    *Checkpoint
	problem  string
	head     *Checkpoint // newest signed, in the file or not
	fileSize int64       // the checkpoint file's length when copied
	writeErr error
}

func (a *Anchor) state() anchorState {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := anchorState{prior: a.prior, problem: a.problem, head: a.head, writeErr: a.writeErr}
	if st, err := os.Stat(filepath.Join(a.dir, CheckpointFile)); err == nil {
		s.fileSize = st.Size()
	}
	return s
}

// scan calls fn with each checkpoint of the first size bytes of the
// checkpoint file, in order; a line that is not a checkpoint comes as
// bad. It stops at fn's first error and returns it.
func (a *Anchor) scan(size int64, fn func(line int, c *Checkpoint, bad error) error) error {
	f, err := os.Open(filepath.Join(a.dir, CheckpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read audit checkpoints: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, size))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		var c Checkpoint
		var bad error
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			bad = fmt.Errorf("line %d is not a checkpoint: %w", line, err)
		}
		if err := fn(line, &c, bad); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fn(line+1, &Checkpoint{}, fmt.Errorf("line %d is longer than any checkpoint", line+1))
		}
		return fmt.Errorf("read audit checkpoints: %w", err)
	}
	return nil
}

// checkpointReader reads the checkpoints above a seq one at a time (all
// of them from seq 0), as
// they were when it was made: the checkpoint file up to its length then,
// and the newest head if it was not in the file yet. Lines that are not
// checkpoints are skipped (a verifier sees the break in the chain).
type checkpointReader struct {
	after int64
	f     *os.File
	sc    *bufio.Scanner
	head  *Checkpoint // the newest head, read after the file
	last  string      // digest of the newest checkpoint read from the file
	next  *Checkpoint
	done  bool
	err   error
}

func (a *Anchor) reader(after int64) *checkpointReader {
	st := a.state()
	r := &checkpointReader{after: after, head: st.head}
	f, err := os.Open(filepath.Join(a.dir, CheckpointFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		r.err = fmt.Errorf("read audit checkpoints: %w", err)
	default:
		r.f = f
		r.sc = bufio.NewScanner(io.LimitReader(f, st.fileSize))
		r.sc.Buffer(make([]byte, 0, 4096), 64<<10)
	}
	return r
}

// peek returns the next checkpoint without taking it; nil at the end.
func (r *checkpointReader) peek() (*Checkpoint, error) {
	for r.next == nil && !r.done && r.err == nil {
		if r.sc != nil && r.sc.Scan() {
			var c Checkpoint
			if json.Unmarshal(r.sc.Bytes(), &c) != nil {
				continue
			}
			r.last = c.Digest()
			if r.includes(&c) {
				r.next = &c
			}
			continue
		}
		if r.sc != nil {
			if err := r.sc.Err(); err != nil {
				r.err = fmt.Errorf("read audit checkpoints: %w", err)
				break
			}
			r.sc = nil
		}
		r.done = true
		if h := r.head; h != nil && h.Digest() != r.last && r.includes(h) {
			r.next = h
		}
	}
	return r.next, r.err
}

// includes says whether c belongs in an export after r.after: from the
// start, every checkpoint (the first start signs an empty log, seq 0).
func (r *checkpointReader) includes(c *Checkpoint) bool {
	return c.Seq > r.after || r.after == 0
}

// pop takes the checkpoint peek returned.
func (r *checkpointReader) pop() { r.next = nil }

func (r *checkpointReader) close() {
	if r.f != nil {
		_ = r.f.Close()
	}
}
