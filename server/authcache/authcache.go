// Package authcache keeps records the request path reads on every
// request (a session, its user, the impersonation in force) in memory, so
// that authenticating a request reads no database in the common case.
//
// A Cache answers a key from memory for at most TTL. The writer of a
// record forgets it (Forget) right after writing, so its own node reads
// its writes at once; other nodes forget it when they learn of the change
// (an audit event or a signal they follow), and TTL bounds the rest. A
// load that began before a Forget is not kept: it may have read the record
// as it was.
package authcache

import (
	"context"
	"sync"
	"time"
)

// DefaultTTL is how long a record answers from memory at most.
const DefaultTTL = 2 * time.Second

// Cache holds records of type T by key. It is safe for concurrent use.
// Clone makes the copy each caller gets, so that no caller changes what
// another reads.
type Cache[T any] struct {
	ttl   time.Duration
	now   func() time.Time
	clone func(T) T

	mu      sync.Mutex
	entries map[string]entry[T]
	hold    map[string]time.Time // keys not kept until then
	gen     uint64               // moves at every Forget: older loads are not kept
	swept   time.Time            // when records older than TTL were last dropped
}

type entry[T any] struct {
	v  T
	at time.Time
}

// New returns a Cache; ttl 0 means DefaultTTL, now nil the system clock.
func New[T any](ttl time.Duration, now func() time.Time, clone func(T) T) *Cache[T] {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache[T]{ttl: ttl, now: now, clone: clone, entries: map[string]entry[T]{}, hold: map[string]time.Time{}}
}

// Get returns the record under key: from memory when it was loaded less
// than TTL ago, else from load, whose answer is then kept unless the key
// was forgotten meanwhile or is held off. Errors are load's, never kept.
func (c *Cache[T]) Get(ctx context.Context, key string, load func(context.Context) (T, error)) (T, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now.Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return c.clone(e.v), nil
	}
	gen := c.gen
	c.mu.Unlock()
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen && !now.Before(c.hold[key]) {
		c.entries[key] = entry[T]{v: c.clone(v), at: now}
	}
	if now.Sub(c.swept) >= c.ttl {
		// Records no one asked for within TTL would only be read again:
		// dropping them keeps the memory to what is in use.
		c.swept = now
		for k, e := range c.entries {
			if now.Sub(e.at) >= c.ttl {
				delete(c.entries, k)
			}
		}
	}
	c.mu.Unlock()
	return v, nil
}

// Len returns how many records are kept.
func (c *Cache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Forget drops the records under keys; for holdOff after now they are
// read from load each time and not kept (for a change announced before it
// is written).
func (c *Cache[T]) Forget(holdOff time.Duration, keys ...string) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range keys {
		delete(c.entries, k)
		if holdOff > 0 {
			c.hold[k] = now.Add(holdOff)
		}
	}
	for k, until := range c.hold {
		if !now.Before(until) {
			delete(c.hold, k)
		}
	}
}

// ForgetAll drops every record.
func (c *Cache[T]) ForgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
