package httpapi

import (
	"sync"
	"time"
)

// loginLimiter counts failed sign-ins per key (an account, an address) in a
// fixed window and refuses further attempts once a key reaches its limit.
// It lives in memory: one server process guards its own door.
type loginLimiter struct {
	mu      sync.Mutex
	window  time.Duration
	limit   int
	entries map[string]*limitEntry
	lastGC  time.Time
}

type limitEntry struct {
	start    time.Time
	failures int
}

func newLoginLimiter(limit int, window time.Duration) *loginLimiter {
	return &loginLimiter{window: window, limit: limit, entries: make(map[string]*limitEntry)}
}

// blocked reports whether key has used up its failures, and for how long
// it stays blocked.
func (l *loginLimiter) blocked(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[key]
	if !ok || now.Sub(e.start) >= l.window {
		return false, 0
	}
	if e.failures >= l.limit {
		return true, e.start.Add(l.window).Sub(now)
	}
	return false, 0
}

// fail records a failed attempt for key.
func (l *loginLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.collect(now)
	e, ok := l.entries[key]
	if !ok || now.Sub(e.start) >= l.window {
		e = &limitEntry{start: now}
		l.entries[key] = e
	}
	e.failures++
}

// reset forgets key's failures, after a successful sign-in.
func (l *loginLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
}

// collect drops expired windows now and then, so the map stays as small as
// the set of keys that failed recently.
func (l *loginLimiter) collect(now time.Time) {
	if now.Sub(l.lastGC) < l.window {
		return
	}
	l.lastGC = now
	for k, e := range l.entries {
		if now.Sub(e.start) >= l.window {
			delete(l.entries, k)
		}
	}
}
