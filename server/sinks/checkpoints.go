package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"standin/server/audit"
	"standin/server/mongostore"
	"standin/server/standin"
)

// The signed checkpoints of the audit chain go to every sink after the
// events they attest: a copy of the log's head outside the database,
// which a sink checks with the log's public key (GET
// /api/v1/activity/key). Each node's anchor hands its checkpoints to a
// Publisher, which stores them for whichever node delivers each sink.

// CheckpointStore keeps the newest checkpoints.
type CheckpointStore interface {
	AddCheckpoint(ctx context.Context, c mongostore.StoredCheckpoint) error
	Checkpoints(ctx context.Context) ([]mongostore.StoredCheckpoint, error)
	PruneCheckpoints(ctx context.Context, keep int) error
}

// KeepCheckpoints is how many of the newest checkpoints are kept for the
// sinks: a sink that falls further behind gets the newest ones.
const KeepCheckpoints = 500

// CheckpointType is a checkpoint record's type, in its JSON and as its
// syslog MSGID.
const CheckpointType = "audit.checkpoint"

// Publisher stores the checkpoints a node's anchor signs, on its own
// goroutine: the anchor never waits for the database.
type Publisher struct {
	store CheckpointStore
	log   *slog.Logger
	queue chan audit.Checkpoint
	done  chan struct{}

	mu     sync.Mutex
	closed bool
}

// NewPublisher returns a running Publisher; Close stops it.
func NewPublisher(store CheckpointStore, log *slog.Logger) *Publisher {
	p := &Publisher{store: store, log: log, queue: make(chan audit.Checkpoint, 256), done: make(chan struct{})}
	go p.run()
	return p
}

// Publish implements audit.CheckpointSink: it queues c and returns.
func (p *Publisher) Publish(c audit.Checkpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("the server is stopping; checkpoint %d is in the checkpoint file, not sent to the sinks", c.Seq)
	}
	select {
	case p.queue <- c:
		return nil
	default:
		return fmt.Errorf("the checkpoints for the sinks are backed up; checkpoint %d is not sent", c.Seq)
	}
}

func (p *Publisher) run() {
	defer close(p.done)
	stored := 0
	for c := range p.queue {
		data, err := json.Marshal(c)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = p.store.AddCheckpoint(ctx, mongostore.StoredCheckpoint{Digest: c.Digest(), Seq: c.Seq, At: time.Now().UTC(), JSON: data})
			if err == nil && stored%50 == 0 {
				err = p.store.PruneCheckpoints(ctx, KeepCheckpoints)
			}
			cancel()
		}
		if err != nil {
			p.log.Warn("a checkpoint for the sinks was not stored", "seq", c.Seq, "err", err)
		}
		stored++
	}
}

// Close stores what is queued and stops.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkpointRecord is a checkpoint as a sink receives it, in every
// format: {"type": "audit.checkpoint", "seq", "id", "checkpoint"}.
func checkpointRecord(c mongostore.StoredCheckpoint) (record, error) {
	data, err := json.Marshal(struct {
		Type       string          `json:"type"`
		Seq        int64           `json:"seq"`
		ID         string          `json:"id"`
		Checkpoint json.RawMessage `json:"checkpoint"`
	}{CheckpointType, c.Seq, "checkpoint:" + c.Digest, c.JSON})
	if err != nil {
		return record{}, fmt.Errorf("encode checkpoint %d: %w", c.Seq, err)
	}
	return record{event: &standin.Event{Type: CheckpointType, Seq: c.Seq, ID: "checkpoint:" + c.Digest, Time: c.At,
		Outcome: "signed"}, data: data}, nil
}
