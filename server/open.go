package server

import (
	"context"
	"fmt"
	"net"
	"time"

	"standin/server/audit"
	"standin/server/embeddeddb"
	"standin/server/livefeed"
	"standin/server/mongostore"
	"standin/server/presence"
	"standin/server/signals"
	"standin/server/sinks"
	"standin/server/startup"
)

// open takes the address, then brings up the database, the demo facility
// and the audit log. The node it returns, even with an error, must be
// closed.
func open(ctx context.Context, cfg Config) (*node, error) {
	n := &node{cfg: cfg, log: cfg.Logger}
	var err error
	if n.allowedHosts, n.publicOrigin, err = cfg.hostPolicy(); err != nil {
		return nil, err
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	uri, err := n.startDatabase(ctx)
	if err != nil {
		return n, err
	}
	n.step("Connecting to the database")
	if n.db, err = mongostore.Open(ctx, uri, cfg.Database, mongostore.Options{}); err != nil {
		return n, err
	}
	n.onClose(func(ctx context.Context) { closeWithin(ctx, 5*time.Second, n.db.Close, n.log, "closing database") })
	if cfg.demoEnabled() {
		n.step("Preparing the demo facility")
	}
	if err := seedDemo(ctx, cfg, n.db); err != nil {
		return n, err
	}
	// The hub outlives requests: it gets a context of its own, ended only
	// by Shutdown.
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	n.hubCtx = hubCtx
	n.onClose(func(context.Context) { stopHub() })
	if err := n.openAudit(ctx, uri); err != nil {
		return n, err
	}
	return n, nil
}

// listen takes the address at once: until the console is ready, a browser
// sees what start-up is doing and API clients get 503.
func (n *node) listen() error {
	ln, err := net.Listen("tcp", n.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.cfg.Addr, err)
	}
	n.ln = ln
	n.starting = startup.Serve(ln, n.log.With("component", "startup"))
	n.onClose(func(context.Context) {
		if !n.handedOff {
			n.starting.Abort()
		}
	})
	n.log.Info("starting", "url", "http://"+ln.Addr().String())
	return nil
}

// startDatabase starts the embedded database unless MONGODB_URI names
// one, and returns the address to connect to.
func (n *node) startDatabase(ctx context.Context) (string, error) {
	if n.cfg.MongoURI != "" {
		return n.cfg.MongoURI, nil
	}
	n.step("Starting the database")
	started := time.Now()
	edb, err := embeddeddb.Start(ctx, n.cfg.DataDir, "", n.log)
	if err != nil {
		return "", err
	}
	n.onClose(func(context.Context) { edb.Close() })
	if err := edb.RecordConsole("http://" + n.ln.Addr().String()); err != nil {
		n.log.Warn("the data directory's lock file does not name this console", "err", err)
	}
	n.log.Info("embedded database started", "address", edb.URI(), "data_dir", n.cfg.DataDir,
		"elapsed", time.Since(started).Round(time.Millisecond))
	return edb.URI(), nil
}

// auditWindowFill is how many of the newest audit events a server reads
// into memory as it starts on a segmented log: two segments.
const auditWindowFill = 2 * mongostore.SegmentSize

// openAudit opens the audit log on a connection of its own: it only
// inserts and reads, and long reads (export, verify) must not hold up
// requests.
func (n *node) openAudit(ctx context.Context, uri string) error {
	var err error
	if n.eventsDB, err = mongostore.Open(ctx, uri, n.cfg.Database, mongostore.Options{AppendOnly: true}); err != nil {
		return err
	}
	n.onClose(func(ctx context.Context) {
		closeWithin(ctx, 5*time.Second, n.eventsDB.Close, n.log, "closing the audit log's database connection")
	})
	// feed takes what happens to the realtime hub; it learns of the hub
	// once it exists, and publishes nothing before. The audit log's
	// commits reach it from the start.
	n.feed = livefeed.New(n.log.With("component", "livefeed"))
	n.tracker = presence.New(presence.Config{OnChange: n.feed.PresenceChanged})
	n.presence = &presenceRelay{t: n.tracker, log: n.log.With("component", "presence")}
	// Before the signals: their handler makes it forget ended sessions.
	n.auth = newAuthStore(n.db)
	if err := n.openSignals(ctx); err != nil {
		return err
	}
	n.follower = newFollower(n.feed, n.auth, n.log.With("component", "follow"))
	// Every server follows the log: the events of all of them reach the
	// live feed and the follower's reactions by one path.
	// Recent events are answered from memory: the follower hands the
	// window every event of the log in order, whoever stored it.
	store, segmented, err := n.eventsDB.AuditLog(ctx)
	if err != nil {
		return err
	}
	auditCfg := audit.Config{Logger: n.log.With("component", "audit"), OnCommit: n.follower.committed,
		Follow: n.cfg.followEvery(), NoIndexes: n.eventsDB.FerretDB(), Window: n.cfg.AuditWindow,
		// The embedded database belongs to this process, so this server
		// is the audit log's one writer.
		Alone: n.cfg.MongoURI == ""}
	switch {
	case segmented:
		// The newest segments cost the same whatever the log's length:
		// the window starts with a few and grows with the log.
		auditCfg.WindowFill = auditWindowFill
	case auditCfg.Alone && n.eventsDB.FerretDB():
		// A log kept in one collection, which FerretDB reads whole for
		// every query: a walk through it (export, verification) reads it
		// once, in stored order.
		auditCfg.StoredOrder = true
	}
	// The checkpoints go to the audit log's sinks too: stored for the
	// node that delivers each sink.
	n.checkpoints = sinks.NewPublisher(n.db, n.log.With("component", "sinks"))
	n.onClose(func(ctx context.Context) {
		closeWithin(ctx, 5*time.Second, n.checkpoints.Close, n.log, "storing the last checkpoints for the sinks")
	})
	if auditCfg.Anchor, err = openAnchor(n.cfg, n.log.With("component", "audit"), n.checkpoints); err != nil {
		return err
	}
	n.step("Reading the audit log")
	if n.events, err = audit.Open(ctx, store, auditCfg); err != nil {
		return err
	}
	// The whole chain is checked against its anchor without holding up
	// the start.
	n.events.VerifyInBackground()
	// Pending appends are drained before the connection closes.
	n.onClose(func(ctx context.Context) {
		closeWithin(ctx, 10*time.Second, n.events.Close, n.log, "closing the audit log")
	})
	return nil
}

// openSignals opens the stream of signals on the audit log's connection
// (it only inserts and reads) and makes the live feed and presence send
// through it.
func (n *node) openSignals(ctx context.Context) error {
	stream, err := signals.Open(ctx, n.eventsDB.Signals(), signals.Config{
		Handle: func(s signals.Signal) {
			if id, ok := livefeed.SessionGone(s.Kind, s.Data); ok {
				n.auth.sessions.Forget(0, id)
			}
			if n.presence.handles(s.Kind) {
				n.presence.apply(s.Kind, s.Data)
				return
			}
			n.feed.Apply(s.Kind, s.Data)
		},
		Missed: func() {
			n.log.Warn("signals were lost to this server: some tabs may not hear of a change until they reconnect")
		},
		Every:  n.cfg.followEvery(),
		Logger: n.log.With("component", "signals"),
		// The embedded database is this process's alone.
		Alone: n.cfg.MongoURI == "",
	})
	if err != nil {
		return err
	}
	n.signals = stream
	n.feed.UseSignals(stream)
	n.presence.send = stream.Send
	n.onClose(func(ctx context.Context) { closeWithin(ctx, 5*time.Second, stream.Close, n.log, "closing the signals") })
	return nil
}
