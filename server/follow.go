package server

import (
	"context"
	"log/slog"
	"time"

	"standin/server/livefeed"
	"standin/server/standin"
)

// Every server sharing a database follows the audit log (audit.Config's
// Follow) and the signals (package signals), and reacts to what any of
// them did by the same path as to what it did itself: the live feed
// publishes each committed event, and events that change what this
// server holds in memory make it read that again.

// defaultFollowEvery is how often a server probes for the other servers'
// audit events and signals (Config.FollowEvery).
const defaultFollowEvery = 50 * time.Millisecond

// reloader is what reacts to committed events.
type reloader interface {
	Reload(ctx context.Context) error
}

// follower hands every committed event, in seq order, to the live feed,
// makes the records authentication keeps in memory forget what it
// changed, and reloads the authorizer after a policy changed or an account
// was suspended, on whichever server that happened.
type follower struct {
	feed   *livefeed.Feed
	auth   *authStore // forgets what the events say changed
	log    *slog.Logger
	reload chan struct{}
}

func newFollower(feed *livefeed.Feed, auth *authStore, log *slog.Logger) *follower {
	return &follower{feed: feed, auth: auth, log: log, reload: make(chan struct{}, 1)}
}

// committed is the audit log's OnCommit: it runs on the log's goroutine
// and never blocks.
func (f *follower) committed(evs []*standin.Event) {
	for _, e := range evs {
		f.auth.forgetFor(e)
	}
	f.feed.Committed(evs)
	for _, e := range evs {
		if e.Type == standin.EventPolicyChanged || e.Type == standin.EventUserSuspended {
			select {
			case f.reload <- struct{}{}:
			default: // a reload is due already; it will read this change too
			}
		}
	}
}

// run reloads the authorizer when asked until ctx ends; reloads asked for
// while one runs are served by one more.
func (f *follower) run(ctx context.Context, rbac reloader) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.reload:
		}
		for attempt := 1; ; attempt++ {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := rbac.Reload(rctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			f.log.Warn("reloading the access policies after a change; trying again", "attempt", attempt, "err", err)
			select {
			case <-time.After(min(time.Duration(attempt)*time.Second, 10*time.Second)):
			case <-ctx.Done():
				return
			}
		}
	}
}
