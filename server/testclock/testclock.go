// Package testclock is a clock tests set and move by hand, safe for
// concurrent use, for code that takes its time from a func() time.Time.
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable time source. Its zero value reads the zero time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock reading at.
func New(at time.Time) *Clock { return &Clock{now: at} }

// Now returns the time the clock reads.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
