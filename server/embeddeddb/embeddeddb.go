// Package embeddeddb runs FerretDB in-process: a MongoDB wire-protocol server
// that keeps its data in SQLite files, so the console starts with nothing
// installed. Standard MongoDB clients and tools can connect to its address.
package embeddeddb

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// newMu serializes ferretdb.New, which writes a package-level variable of
// FerretDB's own (its version record); two databases started at once in one
// process (as parallel tests do) would otherwise race on it.
var newMu sync.Mutex

// DB is a running embedded database.
type DB struct {
	uri    string
	lock   *dirLock
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Start opens (or creates) the database files under dir and listens on addr
// (default "127.0.0.1:0", a free loopback port). FerretDB's own logs are
// passed to logger at error level only: it is chatty at info.
//
// The data directory is locked first (LockFile, an OS file lock held until
// Close or the process ends) and the holder's pid, host and database
// address written in it, before FerretDB opens anything: two databases on
// the same files would corrupt them. When another process, or another DB
// of this one, holds dir, Start returns a *LockedError naming the holder
// and touches no database file.
func Start(ctx context.Context, dir, addr string, logger *slog.Logger) (*DB, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded database: data directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("embedded database: data directory: %w", err)
	}
	lock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(&levelFilter{min: slog.LevelError, next: logger.Handler()})
	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    quiet.With("component", "ferretdb"),
	})
	newMu.Unlock()
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	db := &DB{lock: lock, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(db.done)
		_ = f.Run(runCtx) // returns only when runCtx ends
	}()
	// MongoDBURI waits until Run has bound the listener.
	db.uri = f.MongoDBURI()
	if err := lock.set(func(h *Holder) { h.Database = db.uri }); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// URI is the mongodb:// address clients connect to.
func (db *DB) URI() string { return db.uri }

// RecordConsole adds the address of the console this database serves to
// the data directory's lock file, so that a server refused the directory
// can name it. It returns an error when the file cannot be written.
func (db *DB) RecordConsole(url string) error {
	return db.lock.set(func(h *Holder) { h.Console = url })
}

// Close stops the listener, closes client connections and the SQLite files,
// waits for all of it, and then unlocks the data directory.
func (db *DB) Close() {
	db.once.Do(func() {
		db.cancel()
		<-db.done
		db.lock.release()
	})
	<-db.done
}

// levelFilter drops records below min; FerretDB takes a *slog.Logger and
// would otherwise log every connection at info.
//
// FerretDB derives a logger with attributes for every connection and
// command, and nearly none of them log anything: scope keeps what
// WithAttrs and WithGroup add, and applies it to next only for a record
// that is handled, instead of formatting it for every command.
type levelFilter struct {
	min   slog.Level
	next  slog.Handler
	scope []scopeStep
}

// scopeStep is one WithAttrs (attrs) or WithGroup (group) call.
type scopeStep struct {
	attrs []slog.Attr
	group string
}

func (h *levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.next.Enabled(ctx, l)
}

func (h *levelFilter) Handle(ctx context.Context, r slog.Record) error {
	next := h.next
	for _, s := range h.scope {
		if s.attrs != nil {
			next = next.WithAttrs(s.attrs)
		} else {
			next = next.WithGroup(s.group)
		}
	}
	return next.Handle(ctx, r)
}

func (h *levelFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(scopeStep{attrs: slices.Clone(attrs)})
}

func (h *levelFilter) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(scopeStep{group: name})
}

func (h *levelFilter) with(s scopeStep) *levelFilter {
	return &levelFilter{min: h.min, next: h.next, scope: append(slices.Clip(h.scope), s)}
}
