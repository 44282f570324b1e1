package authz

import "sync"

// DefaultCacheSize is how many decisions an Authorizer remembers when
// Config.CacheSize is zero.
const DefaultCacheSize = 50_000

// decisionKey identifies a request. It holds the user id rather than the
// Casbin subject so that a cache hit builds no string.
type decisionKey struct{ user, dom, obj, act string }

// decisionCache remembers decisions with their reasons. It is bounded:
// when full, an arbitrary entry makes room (Go's map iteration order is
// randomised, which makes this a cheap random eviction).
//
// It never decides on its own whether an entry is stale; the Authorizer
// clears it on every change, under the same lock that orders changes
// before later decisions.
type decisionCache struct {
	mu  sync.RWMutex
	max int // <= 0: caching disabled
	m   map[decisionKey]Decision
}

func newDecisionCache(max int) *decisionCache {
	return &decisionCache{max: max, m: make(map[decisionKey]Decision)}
}

func (c *decisionCache) get(k decisionKey) (Decision, bool) {
	if c.max <= 0 {
		return Decision{}, false
	}
	c.mu.RLock()
	d, ok := c.m[k]
	c.mu.RUnlock()
	return d, ok
}

func (c *decisionCache) put(k decisionKey, d Decision) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = d
}

func (c *decisionCache) clear() {
	c.mu.Lock()
	// A fresh map gives back the memory of a large one.
	c.m = make(map[decisionKey]Decision)
	c.mu.Unlock()
}
