// Package server wires the console together and runs it: the database
// (embedded FerretDB or MONGODB_URI), the stores, authorization, the
// realtime hub and the HTTP API on one port, with an ordered graceful
// shutdown.
package server

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"

	"standin/realtime"
	"standin/server/access"
	"standin/server/accounts"
	"standin/server/audit"
	"standin/server/bookings"
	"standin/server/demo"
	"standin/server/impersonation"
	"standin/server/livefeed"
	"standin/server/mongostore"
	"standin/server/presence"
	"standin/server/rbac"
	"standin/server/session"
	"standin/server/signals"
	"standin/server/sinks"
	"standin/server/startup"
)

// sweepEvery is how often expired sessions are removed.
const sweepEvery = 10 * time.Minute

// rotateGrace is how long a replaced session's sockets stay open: long
// enough for the response with the new cookie to arrive first.
const rotateGrace = 300 * time.Millisecond

// defaultAuditWindow is Config.AuditWindow's default.
const defaultAuditWindow = 100_000

// Run starts the console and serves until ctx is cancelled, then shuts down
// in order: stop accepting, drain requests while sockets are told "going
// away", disconnect from the database, stop the embedded database last.
func Run(ctx context.Context, cfg Config) error {
	n, err := open(ctx, cfg.withDefaults())
	if n != nil {
		defer n.close(ctx)
	}
	if err != nil {
		return err
	}
	if err := n.build(ctx); err != nil {
		return err
	}
	return n.serve(ctx)
}

// node is one running console: what open and build make, and what serve
// runs and shuts down.
type node struct {
	cfg          Config
	log          *slog.Logger
	ln           net.Listener    // the console's address, taken first
	starting     *startup.Server // answers on ln until the console is ready
	handedOff    bool            // ln is the console's, no longer start-up's
	allowedHosts []string
	publicOrigin string
	closers      []func(context.Context)

	db          *mongostore.DB // requests' connection
	facility    facilityStore  // db, with the catalog answered from memory
	auth        *authStore     // db, with what authentication reads answered from memory
	eventsDB    *mongostore.DB // the audit log's own connection
	events      *audit.Log
	sinks       *sinks.Service   // the audit log's outside sinks
	checkpoints *sinks.Publisher // the anchor's checkpoints, for the sinks
	allow       *sinks.Allowlist

	rbac     *rbac.Authorizer
	sessions *session.Manager
	accounts *accounts.Service
	imps     *impersonation.Service
	decider  *access.Decider
	bookings *bookings.Service
	feed     *livefeed.Feed    // the one way to the hub's sockets
	follower *follower         // reacts to what any server committed
	signals  *signals.Stream   // what every server learns that is not an audit fact
	tracker  *presence.Tracker // who looks at whom, who holds an impersonation
	presence *presenceRelay    // presence changes, to and from every node
	hubCtx   context.Context   // the hub's: it outlives requests
	hub      *realtime.Hub
	app      *fiber.App
}

// onClose adds a step to the shutdown; steps run last added first.
func (n *node) onClose(fn func(context.Context)) { n.closers = append(n.closers, fn) }

// close runs the shutdown steps, last added first.
func (n *node) close(ctx context.Context) {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i](ctx)
	}
}

// step says what start-up is doing, on the address and to the
// configuration's hook.
func (n *node) step(what string) {
	n.starting.Step(what)
	if n.cfg.OnStarting != nil {
		n.cfg.OnStarting(n.ln.Addr(), what)
	}
}

// seedDemo seeds the demo facility when demo mode is on and says so.
func seedDemo(ctx context.Context, cfg Config, db *mongostore.DB) error {
	if !cfg.demoEnabled() {
		return nil
	}
	seeded, err := demo.Seed(ctx, db, cfg.DemoPassword, cfg.PasswordCost, time.Now())
	if err != nil {
		return err
	}
	if seeded {
		cfg.Logger.Warn("demo facility seeded: every demo account signs in with the demo password; do not expose this server",
			"password", cfg.DemoPassword, "accounts", "owner@, admin@, support@, manager@, ada@, ben@, cleo@example.org")
		return nil
	}
	cfg.Logger.Warn("demo mode: demo accounts sign in with the password they were seeded with (STANDIN_DEMO_PASSWORD, default demo); do not expose this server",
		"password", cfg.DemoPassword)
	return nil
}

// holdActive tells the presence tracker of the impersonations in force.
func holdActive(ctx context.Context, db *mongostore.DB, t *presence.Tracker, now time.Time) error {
	active, err := db.ActiveImpersonations(ctx)
	if err != nil {
		return err
	}
	for _, imp := range active {
		if imp.ActiveAt(now) {
			t.Hold(presence.HoldOf(imp))
		}
	}
	return nil
}

// every calls fn every period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() == nil {
				fn(ctx)
			}
		}
	}
}

// closeWithin runs a Close method with its own deadline, even after ctx
// ended, and logs a failure.
func closeWithin(ctx context.Context, d time.Duration, closeFn func(context.Context) error, log *slog.Logger, what string) {
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	if err := closeFn(closeCtx); err != nil {
		log.Error(what, "err", err)
	}
}

// freeStaleHolds frees the impersonation holds an end that did not finish
// left behind.
func freeStaleHolds(ctx context.Context, db *mongostore.DB, log *slog.Logger) error {
	n, err := db.FreeStaleHolds(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Warn("freed impersonation holds left by an earlier stop", "count", n)
	}
	return nil
}
