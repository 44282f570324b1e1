// Package server wires the console together and runs it: the database
// (embedded FerretDB or MONGODB_URI), the stores, the realtime hub and the
// HTTP API on one port, with an ordered graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"standin/realtime"
	"standin/server/demo"
	"standin/server/embeddeddb"
	"standin/server/httpapi"
	"standin/server/mongostore"
	"standin/server/session"
	"standin/ui"
)

// Run starts the console and serves until ctx is cancelled, then shuts down
// in order: stop accepting, close sockets with going-away, drain requests,
// disconnect from the database, stop the embedded database last.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	log := cfg.Logger

	uri, embedded := cfg.MongoURI, cfg.MongoURI == ""
	if embedded {
		started := time.Now()
		edb, err := embeddeddb.Start(ctx, cfg.DataDir, "", log)
		if err != nil {
			return err
		}
		defer edb.Close()
		uri = edb.URI()
		log.Info("embedded database started", "address", uri, "data_dir", cfg.DataDir,
			"elapsed", time.Since(started).Round(time.Millisecond))
	}

	db, err := mongostore.Open(ctx, uri, cfg.Database, mongostore.Options{})
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := db.Close(closeCtx); err != nil {
			log.Warn("closing database", "err", err)
		}
	}()

	if cfg.demoEnabled() {
		seeded, err := demo.Seed(ctx, db, cfg.DemoPassword, cfg.PasswordCost, time.Now())
		if err != nil {
			return err
		}
		if seeded {
			log.Info("demo facility seeded")
		}
		log.Warn("demo mode: every demo account signs in with the demo password; do not expose this server",
			"password", cfg.DemoPassword, "accounts", "owner@, admin@, support@, manager@, ada@, ben@, cleo@example.org")
	}

	// The hub outlives requests: it gets a context of its own, ended only
	// by Shutdown.
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHub()
	var hub *realtime.Hub
	sessions := session.NewManager(db, db, session.Config{
		OnEnd: func(id string) {
			hub.CloseSession(id, realtime.StatusSessionEnded, realtime.ReasonSessionEnded)
		},
	})
	hub, err = realtime.New(hubCtx, realtime.Config{
		Sessions: sessions,
		Logger:   log.With("component", "realtime"),
	})
	if err != nil {
		return err
	}

	app, err := httpapi.New(httpapi.Config{
		Users:         db,
		Sessions:      sessions,
		DB:            db,
		Logger:        log.With("component", "http"),
		WebSocket:     hub,
		UI:            ui.Files(),
		SecureCookies: cfg.SecureCookies,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(ln) }()
	log.Info("console ready", "url", "http://"+ln.Addr().String())
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}

	select {
	case err := <-serveErr:
		_ = hub.Shutdown(context.Background())
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	// Sockets first: they are hijacked, so the HTTP server would not close
	// them, and clients should hear "going away" rather than a reset.
	if err := hub.Shutdown(shutCtx); err != nil {
		log.Warn("closing sockets", "err", err)
	}
	if err := app.ShutdownWithContext(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("http shutdown", "err", err)
	}
	if err := <-serveErr; err != nil {
		log.Warn("http server stopped", "err", err)
	}
	log.Info("stopped")
	return nil
}
