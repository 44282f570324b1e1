package embeddeddb

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LockFile is the file in the data directory that a running embedded
// database holds locked, and in which it records who holds it.
const LockFile = "standin.lock"

// Holder describes the process that holds a data directory, as it wrote
// it in the lock file. Fields it had not written yet are empty.
type Holder struct {
	PID      int
	Host     string
	Database string // the mongodb:// address of its embedded database
	Console  string // the address of its console, when it runs one
	Since    time.Time
}

// LockedError is the error of Start when another embedded database, in
// another process or in this one, holds the data directory.
type LockedError struct {
	Dir    string // the data directory, absolute
	Holder Holder
}

func (e *LockedError) Error() string {
	h := e.Holder
	var b strings.Builder
	fmt.Fprintf(&b, "data directory %s is in use by another Standin server", e.Dir)
	var who []string
	if h.PID > 0 {
		who = append(who, "pid "+strconv.Itoa(h.PID))
	}
	if h.Host != "" {
		who = append(who, "on host "+h.Host)
	}
	if h.Console != "" {
		who = append(who, "console "+h.Console)
	}
	if h.Database != "" {
		who = append(who, "database "+h.Database)
	}
	if len(who) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(who, ", "))
	}
	b.WriteString(": two servers must not open the same database files. Stop it first, or")
	switch {
	case h.Database == "":
		b.WriteString(" run this one beside it with MONGODB_URI set to the database address it logged at start-up")
	case h.Host != "" && h.Host != hostname():
		fmt.Fprintf(&b, " run this one on %s beside it with MONGODB_URI=%s", h.Host, h.Database)
	default:
		fmt.Fprintf(&b, " run this one beside it on the same data with MONGODB_URI=%s", h.Database)
	}
	return b.String()
}

// dirLock is a data directory's lock: an exclusive flock(2) on LockFile,
// held by an open file for as long as the database runs. The kernel drops
// it when the process ends, however it ends, so a crash leaves no stale
// lock. flock locks belong to the open file, not the process: a second
// open in the same process conflicts too, which keeps two databases of one
// process (as parallel tests start) off the same files.
type dirLock struct {
	mu     sync.Mutex
	f      *os.File
	holder Holder
}

// lockDir takes the lock of dir (absolute, existing) without waiting. It
// returns a *LockedError when another holds it.
func lockDir(dir string) (*dirLock, error) {
	name := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded database: lock the data directory: %w", err)
	}
	err = tryLock(f)
	if errors.Is(err, errLocked) {
		f.Close()
		return nil, &LockedError{Dir: dir, Holder: readHolder(name)}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("embedded database: lock the data directory %s: %w", dir, err)
	}
	l := &dirLock{f: f}
	// What an earlier holder wrote goes.
	if err := l.set(func(h *Holder) { *h = Holder{PID: os.Getpid(), Host: hostname(), Since: time.Now().UTC()} }); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

// set changes the holder's description and writes it into the lock file.
func (l *dirLock) set(change func(*Holder)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	change(&l.holder)
	h := l.holder
	lines := []string{
		"pid: " + strconv.Itoa(h.PID),
		"host: " + h.Host,
		"since: " + h.Since.Format(time.RFC3339),
	}
	if h.Database != "" {
		lines = append(lines, "database: "+h.Database)
	}
	if h.Console != "" {
		lines = append(lines, "console: "+h.Console)
	}
	text := strings.Join(lines, "\n") + "\n"
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("embedded database: write the lock file: %w", err)
	}
	if _, err := l.f.WriteAt([]byte(text), 0); err != nil {
		return fmt.Errorf("embedded database: write the lock file: %w", err)
	}
	return nil
}

// release empties the lock file and drops the lock.
func (l *dirLock) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.f.Truncate(0)
	_ = l.f.Close() // closing the last descriptor drops the lock
}

// readHolder reads what the holder of a lock file wrote about itself.
// Whatever cannot be read is left empty: the lock itself is the truth.
func readHolder(name string) Holder {
	var h Holder
	f, err := os.Open(name)
	if err != nil {
		return h
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch key {
		case "pid":
			h.PID, _ = strconv.Atoi(value)
		case "host":
			h.Host = value
		case "database":
			h.Database = value
		case "console":
			h.Console = value
		case "since":
			h.Since, _ = time.Parse(time.RFC3339, value)
		}
	}
	return h
}

// hostname is this machine's name, or "" when it cannot be told.
func hostname() string {
	h, _ := os.Hostname()
	return h
}
