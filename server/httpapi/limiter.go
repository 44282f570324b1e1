package httpapi

import (
	"net"
	"sync"
	"time"
)

// loginLimiter bounds sign-in attempts per key (an account at an address,
// an address, an account) in a fixed window. An attempt is reserved before
// the password is checked, so parallel guesses cannot all slip past the
// check, and given back when it succeeds: only failures use up the window.
// It lives in memory: one server process guards its own door.
type loginLimiter struct {
	mu      sync.Mutex
	window  time.Duration
	limit   int
	maxKeys int
	entries map[string]*limitEntry
	lastGC  time.Time
}

type limitEntry struct {
	start time.Time
	used  int
}

func newLoginLimiter(limit int, window time.Duration) *loginLimiter {
	return &loginLimiter{window: window, limit: limit, maxKeys: 100_000, entries: make(map[string]*limitEntry)}
}

// reserve takes one attempt for key. It returns false, and how long to
// wait, when the key has no attempts left.
func (l *loginLimiter) reserve(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.collect(now)
	e, ok := l.entries[key]
	if !ok || now.Sub(e.start) >= l.window {
		if !ok && len(l.entries) >= l.maxKeys {
			// Too many distinct keys at once is itself an attack: refuse
			// rather than grow without bound.
			return false, l.window
		}
		e = &limitEntry{start: now}
		l.entries[key] = e
	}
	if e.used >= l.limit {
		return false, e.start.Add(l.window).Sub(now)
	}
	e.used++
	return true, 0
}

// release gives back an attempt reserved for key: it succeeded, or it was
// not judged at all.
func (l *loginLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[key]; ok && e.used > 0 {
		e.used--
	}
}

// collect drops expired windows now and then, so the map stays as small as
// the set of keys that failed recently.
func (l *loginLimiter) collect(now time.Time) {
	if now.Sub(l.lastGC) < l.window/4 {
		return
	}
	l.lastGC = now
	for k, e := range l.entries {
		if now.Sub(e.start) >= l.window {
			delete(l.entries, k)
		}
	}
}

// addressKey groups IPv6 clients by their /64, which one host controls;
// IPv4 addresses stand alone.
func addressKey(ip string) string {
	parsed := net.ParseIP(ip)
	if parsed == nil || parsed.To4() != nil {
		return ip
	}
	return parsed.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
