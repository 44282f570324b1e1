package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"standin/server/alerts"
	"standin/server/bookings"
	"standin/server/lease"
	"standin/server/presence"
	"standin/server/sinks"
)

// announce writes, on lines of their own, where to open the console and,
// with the demo on, how to sign in.
func (n *node) announce() {
	w := n.cfg.Announce
	if w == nil {
		return
	}
	url := n.cfg.PublicURL
	if url == "" {
		url = "http://" + n.ln.Addr().String()
	}
	fmt.Fprintf(w, "Standin is ready: open %s\n", url)
	if n.cfg.demoEnabled() {
		fmt.Fprintf(w, "Demo: sign in as support@example.org with the password %q (every demo account: see README)\n", n.cfg.DemoPassword)
	}
}

// serve hands the address to the console, runs the background jobs and
// serves until ctx ends or the HTTP server fails, then shuts down.
func (n *node) serve(ctx context.Context) error {
	consoleLn := n.starting.Handoff()
	n.handedOff = true
	serveErr := make(chan error, 1)
	go func() { serveErr <- n.app.Listener(consoleLn) }()
	n.log.Info("console ready", "url", "http://"+n.ln.Addr().String())
	n.announce()
	if n.allowedHosts == nil {
		n.log.Warn("listening beyond loopback without STANDIN_PUBLIC_URL: requests for any host name are answered")
	}
	if n.cfg.OnListen != nil {
		n.cfg.OnListen(n.ln.Addr())
	}

	var background sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(ctx)
	n.runJobs(bgCtx, &background)

	var runErr error
	select {
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	n.log.Info("shutting down")
	stopBackground()
	background.Wait()
	n.shutdown(ctx, runErr == nil, serveErr)
	n.log.Info("stopped")
	return runErr
}

// Terms of the leases under which jobs shared by the nodes on one
// database run: a node that stops holds its job until its term ends.
const (
	sweepTerm  = sweepEvery      // a sweep a term, on one node
	expireTerm = 5 * time.Second // how late an expiry may be when a node stops
)

// runJobs starts the console's timed jobs on wg; they stop when ctx ends.
// Jobs whose work is the database's, not this node's, run on one node
// per term (package lease).
func (n *node) runJobs(ctx context.Context, wg *sync.WaitGroup) {
	// What any server committed that changes the access rules is read
	// again here.
	wg.Go(func() { n.follower.run(ctx, n.rbac) })
	log := n.log
	leases := lease.New(n.db.Leases(), lease.Config{Logger: log.With("component", "lease")})
	log.Info("background jobs run under leases", "node", leases.Holder())
	wg.Go(func() {
		// Expired sessions are removed.
		leases.Every(ctx, "sweep-sessions", sweepEvery, sweepTerm, func(ctx context.Context) {
			if count, err := n.sessions.Sweep(ctx); err != nil && ctx.Err() == nil {
				log.Warn("sweeping expired sessions", "err", err)
			} else if count > 0 {
				log.Info("expired sessions removed", "count", count)
			}
		})
	})
	wg.Go(func() {
		// Impersonations end as they expire, whether or not a request
		// is in flight.
		leases.Every(ctx, "expire-impersonations", time.Second, expireTerm, func(ctx context.Context) {
			if _, err := n.imps.ExpireDue(ctx); err != nil && ctx.Err() == nil {
				log.Warn("ending expired impersonations", "err", err)
			}
		})
	})
	wg.Go(func() {
		// Requests to impersonate expire unanswered, with no request in
		// flight.
		leases.Every(ctx, "expire-requests", time.Second, expireTerm, func(ctx context.Context) {
			if _, err := n.imps.ExpireRequests(ctx); err != nil && ctx.Err() == nil {
				log.Warn("expiring requests to impersonate", "err", err)
			}
		})
	})
	wg.Go(func() {
		// Moderated sessions pause, resume and end by their moderators'
		// watches, as one node sees them.
		leases.Every(ctx, "moderate-sessions", time.Second, expireTerm, func(ctx context.Context) {
			if _, err := n.imps.Moderate(ctx); err != nil && ctx.Err() == nil {
				log.Warn("moderating sessions", "err", err)
			}
		})
	})
	wg.Go(func() {
		// Often enough for a moderator's lapsed watch to pause its
		// session soon after presence.DefaultWatchTTL.
		every(ctx, presence.DefaultWatchTTL/5, func(context.Context) { n.tracker.Sweep() })
	})
	wg.Go(func() {
		// The audit log goes out to its sinks, each under a lease of its
		// own: one node at a time delivers it.
		sinks.NewDeliverer(sinks.Config{Store: n.db, Log: n.events, Leases: leases, Allow: n.allow, Now: n.cfg.Clock, Checkpoints: n.db,
			OnHealth: n.feed.SinkHealth, Logger: log.With("component", "sinks")}).Run(ctx)
	})
	wg.Go(func() {
		// The alert rules watch the log, on one node at a time.
		alerts.New(alerts.Config{Store: n.db, Log: n.events, Leases: leases, Location: n.cfg.Location, Now: n.cfg.Clock,
			Logger: log.With("component", "alerts")}).Run(ctx)
	})
	wg.Go(func() {
		// Booking writes a database failure stopped midway are finished.
		// Not under a lease: each node repairs what its own writes left
		// (Repair returns at once when they left nothing), which a lease
		// held by another node would leave waiting.
		every(ctx, bookings.RepairEvery, func(ctx context.Context) {
			if err := n.bookings.Repair(ctx); err != nil && ctx.Err() == nil {
				log.Warn("finishing half-written bookings; trying again later", "err", err)
			}
		})
	})
	wg.Go(func() {
		// Sign-in ledgers of periods no attempt reads or writes any more
		// are removed: those before the previous window's.
		// One node a term is enough: deleting a period is the same
		// work wherever it runs.
		window := n.cfg.SignInLimits.WithDefaults().Window
		leases.Every(ctx, "sweep-signin-limits", sweepEvery, sweepTerm, func(ctx context.Context) {
			if _, err := n.db.SweepSignInLimits(ctx, n.cfg.Clock().Add(-2*window)); err != nil && ctx.Err() == nil {
				log.Warn("sweeping sign-in limits", "err", err)
			}
		})
	})
	wg.Go(func() {
		finishCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := n.starting.Finish(finishCtx); err != nil {
			log.Debug("closed connections that sent nothing while the console started", "err", err)
		}
	})
}

// shutdown stops the listener and drains requests while, at the same
// time, sockets are told "going away": they are hijacked, so the HTTP
// server would neither wait for nor close them. When the HTTP server
// failed (serving false) there is nothing to drain.
func (n *node) shutdown(ctx context.Context, serving bool, serveErr <-chan error) {
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := n.hub.Shutdown(shutCtx); err != nil {
			n.log.Warn("closing sockets", "err", err)
		}
	})
	if serving {
		if err := n.app.ShutdownWithContext(shutCtx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				n.log.Warn("requests still running at the shutdown deadline were abandoned")
			} else {
				n.log.Warn("http shutdown", "err", err)
			}
		}
		if err := <-serveErr; err != nil {
			n.log.Warn("http server stopped", "err", err)
		}
	}
	wg.Wait()
}
