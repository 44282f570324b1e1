// Package server wires the console together and runs it: the database
// (embedded FerretDB or MONGODB_URI), the stores, authorization, the
// realtime hub and the HTTP API on one port, with an ordered graceful
// shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"standin/authz"
	"standin/realtime"
	"standin/server/access"
	"standin/server/audit"
	"standin/server/demo"
	"standin/server/embeddeddb"
	"standin/server/httpapi"
	"standin/server/impersonation"
	"standin/server/loginlimit"
	"standin/server/mongostore"
	"standin/server/presence"
	"standin/server/session"
	"standin/server/standin"
	"standin/server/startup"
	"standin/ui"
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
	cfg = cfg.withDefaults()
	log := cfg.Logger
	allowedHosts, publicOrigin, err := cfg.hostPolicy()
	if err != nil {
		return err
	}

	// The address answers at once: until the console is ready, a browser
	// sees what start-up is doing and API clients get 503.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	starting := startup.Serve(ln, log.With("component", "startup"))
	handedOff := false
	defer func() {
		if !handedOff {
			starting.Abort()
		}
	}()
	log.Info("starting", "url", "http://"+ln.Addr().String())
	step := func(what string) {
		starting.Step(what)
		if cfg.OnStarting != nil {
			cfg.OnStarting(ln.Addr(), what)
		}
	}

	uri := cfg.MongoURI
	if uri == "" {
		step("Starting the database")
		started := time.Now()
		edb, err := embeddeddb.Start(ctx, cfg.DataDir, "", log)
		if err != nil {
			return err
		}
		defer edb.Close()
		if err := edb.RecordConsole("http://" + ln.Addr().String()); err != nil {
			log.Warn("the data directory's lock file does not name this console", "err", err)
		}
		uri = edb.URI()
		log.Info("embedded database started", "address", uri, "data_dir", cfg.DataDir,
			"elapsed", time.Since(started).Round(time.Millisecond))
	}

	step("Connecting to the database")
	db, err := mongostore.Open(ctx, uri, cfg.Database, mongostore.Options{})
	if err != nil {
		return err
	}
	defer closeWithin(ctx, 5*time.Second, db.Close, log, "closing database")

	if cfg.demoEnabled() {
		step("Preparing the demo facility")
	}
	if err := seedDemo(ctx, cfg, db); err != nil {
		return err
	}

	// The hub outlives requests: it gets a context of its own, ended only
	// by Shutdown.
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHub()
	var hub *realtime.Hub

	// The audit log has a connection of its own: it only inserts and
	// reads, and long reads (export, verify) must not hold up requests.
	eventsDB, err := mongostore.Open(ctx, uri, cfg.Database, mongostore.Options{AppendOnly: true})
	if err != nil {
		return err
	}
	defer closeWithin(ctx, 5*time.Second, eventsDB.Close, log, "closing the audit log's database connection")
	// lv takes what happens to the realtime hub; it learns of the hub once
	// it exists, and publishes nothing before.
	lv := &live{db: db, log: log.With("component", "realtime")}
	lv.presence = presence.New(presence.Config{OnChange: lv.presenceChanged})
	auditCfg := audit.Config{Logger: log.With("component", "audit"), OnCommit: lv.committed, NoIndexes: eventsDB.FerretDB()}
	if cfg.MongoURI == "" {
		// The embedded database belongs to this process, so this server is
		// the audit log's one writer, and it scans for every query: recent
		// events are answered from memory, and a walk through the log
		// (export, verification) reads it once, in stored order.
		auditCfg.Window, auditCfg.StoredOrder = cfg.AuditWindow, true
	}
	if auditCfg.Anchor, err = openAnchor(cfg, log.With("component", "audit")); err != nil {
		return err
	}
	step("Reading the audit log")
	events, err := audit.Open(ctx, eventsDB.Events(), auditCfg)
	if err != nil {
		return err
	}
	// The whole chain is checked against its anchor without holding up
	// the start.
	events.VerifyInBackground()
	// Pending appends are drained before the connection closes.
	defer closeWithin(ctx, 10*time.Second, events.Close, log, "closing the audit log")
	if err := repair(ctx, db, events, log); err != nil {
		return err
	}

	step("Loading the access policies")
	rbac, err := authz.New(ctx, authz.Config{DB: db.Database(), Directory: db, Logger: log.With("component", "authz")})
	if err != nil {
		return err
	}

	sessions := session.NewManager(db, db, session.Config{
		Now: cfg.Clock,
		OnEnd: func(id string) {
			hub.CloseSession(id, realtime.StatusSessionEnded, realtime.ReasonSessionEnded)
		},
		OnRotate: func(id string) {
			// A moment's delay lets the response carrying the new cookie
			// reach the browser before its tabs reconnect with it.
			time.AfterFunc(rotateGrace, func() {
				hub.CloseSession(id, realtime.StatusSessionChanged, realtime.ReasonSessionChanged)
			})
		},
	})
	impersonations := impersonation.New(db, sessions, rbac, events, impersonation.Config{
		Now:      cfg.Clock,
		Logger:   log.With("component", "impersonation"),
		OnNotify: lv.notified,
		OnStarted: func(imp *standin.Impersonation, oldSession string) {
			lv.presence.Hold(presence.HoldOf(imp))
			lv.sessionChanged("impersonation.started", imp, []string{oldSession})
		},
		OnEnded: func(imp *standin.Impersonation, sessionIDs []string) {
			lv.presence.Release(imp.ID)
			lv.sessionChanged("impersonation.ended", imp, sessionIDs)
			// The actor's tabs learn at once that they are themselves
			// again (after the grace that lets a reply with a new cookie
			// arrive first, when the actor ended it).
			time.AfterFunc(rotateGrace, func() {
				for _, id := range sessionIDs {
					hub.CloseSession(id, realtime.StatusSessionChanged, realtime.ReasonSessionChanged)
				}
			})
		},
	})
	var origins []string
	if u, err := url.Parse(publicOrigin); err == nil && u.Host != "" {
		origins = append(origins, u.Host)
	}
	decider := access.New(rbac, db, cfg.Location, cfg.Clock)
	lv.access, lv.events, lv.imps = decider, events, impersonations
	if err := holdActive(ctx, db, lv.presence, cfg.Clock()); err != nil {
		return err
	}
	hub, err = realtime.New(hubCtx, realtime.Config{
		Sessions:       principals{sessions, impersonations},
		Authorizer:     lv,
		Backlog:        lv,
		OriginPatterns: origins,
		Logger:         log.With("component", "realtime"),

		MaxSocketsPerSession: cfg.MaxSocketsPerSession,
		MaxSocketsPerUser:    cfg.MaxSocketsPerUser,
		MaxSockets:           cfg.MaxSockets,
	})
	if err != nil {
		return err
	}
	lv.hub.Store(hub)
	log.Info("live connections", "at_most", hub.SocketLimit())

	if n, err := impersonations.RepairEnds(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Warn("audited impersonation ends an earlier stop left unaudited", "count", n)
	}

	app, err := httpapi.New(httpapi.Config{
		Users:          db,
		Facility:       db,
		Access:         decider,
		Policies:       policies{rbac},
		Impersonations: impersonations,
		Audit:          auditLog{events},
		Notifications:  db,
		Presence:       presenceViews{lv.presence},
		Sessions:       sessions,
		DB:             db,
		Logger:         log.With("component", "http"),
		WebSocket:      hub,
		UI:             ui.Files(),
		AllowedHosts:   allowedHosts,
		PublicOrigin:   publicOrigin,
		SecureCookies:  cfg.SecureCookies,
		PasswordCost:   cfg.PasswordCost,
		Demo:           cfg.demoEnabled(),
		Now:            cfg.Clock,
		SignIn:         loginlimit.New(cfg.SignInLimits, loginlimit.NewMemory(cfg.SignInAddresses)),
	})
	if err != nil {
		return err
	}

	consoleLn := starting.Handoff()
	handedOff = true
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(consoleLn) }()
	log.Info("console ready", "url", "http://"+ln.Addr().String())
	if allowedHosts == nil {
		log.Warn("listening beyond loopback without STANDIN_PUBLIC_URL: requests for any host name are answered")
	}
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}

	var background sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(ctx)
	background.Go(func() {
		// Expired sessions are removed.
		every(bgCtx, sweepEvery, func(ctx context.Context) {
			if n, err := sessions.Sweep(ctx); err != nil && ctx.Err() == nil {
				log.Warn("sweeping expired sessions", "err", err)
			} else if n > 0 {
				log.Info("expired sessions removed", "count", n)
			}
		})
	})
	background.Go(func() {
		// Impersonations end as they expire, whether or not a request
		// is in flight.
		every(bgCtx, time.Second, func(ctx context.Context) {
			if _, err := impersonations.ExpireDue(ctx); err != nil && ctx.Err() == nil {
				log.Warn("ending expired impersonations", "err", err)
			}
		})
	})
	background.Go(func() {
		every(bgCtx, presence.DefaultTTL/6, func(context.Context) { lv.presence.Sweep() })
	})
	background.Go(func() {
		// Booking writes a database failure stopped midway are finished.
		every(bgCtx, repairEvery, func(ctx context.Context) {
			if err := repairBookings(ctx, db, events, log); err != nil && ctx.Err() == nil {
				log.Warn("finishing half-written bookings; trying again later", "err", err)
			}
		})
	})
	background.Go(func() {
		finishCtx, cancel := context.WithTimeout(bgCtx, 5*time.Second)
		defer cancel()
		if err := starting.Finish(finishCtx); err != nil {
			log.Debug("closed connections that sent nothing while the console started", "err", err)
		}
	})

	var runErr error
	select {
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down")
	stopBackground()
	background.Wait()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	// The listener stops and requests drain while, at the same time,
	// sockets are told "going away": they are hijacked, so the HTTP
	// server would neither wait for nor close them.
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := hub.Shutdown(shutCtx); err != nil {
			log.Warn("closing sockets", "err", err)
		}
	})
	if runErr == nil {
		if err := app.ShutdownWithContext(shutCtx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				log.Warn("requests still running at the shutdown deadline were abandoned")
			} else {
				log.Warn("http shutdown", "err", err)
			}
		}
		if err := <-serveErr; err != nil {
			log.Warn("http server stopped", "err", err)
		}
	}
	wg.Wait()
	log.Info("stopped")
	return runErr
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

// presenceViews records the console's views of users in the tracker.
type presenceViews struct{ t *presence.Tracker }

func (v presenceViews) View(viewID string, viewer, user *standin.User) {
	v.t.View(viewID, presence.Person{ID: viewer.ID, Name: viewer.Name}, presence.Person{ID: user.ID, Name: user.Name})
}

func (v presenceViews) Leave(viewerID, viewID string) { v.t.Leave(viewerID, viewID) }

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

// bookingRepairAge is how long the repair must have seen a half-written
// booking without its commit record before it undoes it: well past the
// longest a request may still be writing it.
const bookingRepairAge = 4 * httpapi.BookingDeadline

// repairEvery is how often the server finishes booking writes that a
// database failure stopped midway (it looks only after one did).
const repairEvery = 15 * time.Second

// repair finishes what an earlier stop interrupted: bookings half-written
// are completed or undone by their commit record in the audit log, and
// impersonation holds left by an end that did not finish are freed.
func repair(ctx context.Context, db *mongostore.DB, events *audit.Log, log *slog.Logger) error {
	if err := repairBookings(ctx, db, events, log); err != nil {
		return err
	}
	if n, err := db.FreeCancelledSlots(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Warn("freed the time cancelled bookings still held", "slots", n)
	}
	if n, err := db.FreeStaleHolds(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Warn("freed impersonation holds left by an earlier stop", "count", n)
	}
	return nil
}

// repairBookings completes or undoes, by their commit records in the
// audit log, the bookings whose writes stopped midway.
func repairBookings(ctx context.Context, db *mongostore.DB, events *audit.Log, log *slog.Logger) error {
	settled := false
	n, err := db.RepairBookings(ctx, bookingRepairAge, func(ctx context.Context, typ, bookingID string) (bool, error) {
		if !settled {
			// A booking whose commit was in doubt is decided by its
			// record: the log first finds out whether the records in
			// doubt were stored.
			if err := events.Settle(ctx); err != nil {
				return false, err
			}
			settled = true
		}
		_, err := events.ByObject(ctx, typ, "booking:"+bookingID)
		if standin.ErrorCode(err) == standin.ENotFound {
			return false, nil
		}
		return err == nil, err
	})
	if n > 0 {
		log.Warn("bookings left half-written were completed or undone by their commit records", "count", n)
	}
	return err
}

// principals resolves a session cookie into the effective principal, for
// the WebSocket door: the session, then the impersonation in force.
type principals struct {
	sessions       *session.Manager
	impersonations *impersonation.Service
}

func (p principals) Authenticate(ctx context.Context, token string) (*standin.Principal, error) {
	pr, err := p.sessions.Authenticate(ctx, token)
	if err != nil {
		return nil, err
	}
	return p.impersonations.Resolve(ctx, pr)
}

// policies presents the authorizer's policies to the HTTP API in the
// domain's terms.
type policies struct{ a *authz.Authorizer }

func (p policies) Policies() []standin.Policy {
	ps := p.a.Policies()
	out := make([]standin.Policy, 0, len(ps))
	for _, x := range ps {
		out = append(out, standin.Policy(x))
	}
	return out
}

func (p policies) AddPolicy(ctx context.Context, x standin.Policy) error {
	return p.a.AddPolicy(ctx, authz.Policy(x))
}

func (p policies) RemovePolicy(ctx context.Context, x standin.Policy) error {
	return p.a.RemovePolicy(ctx, authz.Policy(x))
}
