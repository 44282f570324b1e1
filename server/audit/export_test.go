package audit

import (
	"context"

	"standin/server/standin"
)

// Seams for tests of the audit_test package.

// SetChunk sets how many seqs one query of an ascending walk covers, so
// tests cross chunk boundaries with little data.
func SetChunk(l *Log, n int64) { l.chunk = n }

// InsertFunc stores events, as Store.Insert.
type InsertFunc func(ctx context.Context, evs []*standin.Event) error

// SetInsert replaces the appender's insert with wrap(real). Call it while
// no Append is running.
func SetInsert(l *Log, wrap func(real InsertFunc) InsertFunc) {
	l.insert = wrap(l.store.Insert)
}

// ReadHashesFunc reads the stored hash of each seq in [from, to].
type ReadHashesFunc func(ctx context.Context, from, to int64) (map[int64]string, error)

// SetReadHashes replaces the appender's check of what an insert stored
// with wrap(real). Call it while no Append is running.
func SetReadHashes(l *Log, wrap func(real ReadHashesFunc) ReadHashesFunc) {
	l.readHashes = wrap(l.store.Hashes)
}

// Pending returns how many Append calls wait for the appender.
func Pending(l *Log) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// FlushAnchor returns once the anchor has written every commit of l
// handed to it, as a test reading its files needs.
func FlushAnchor(l *Log) { l.anchor.flush() }
