package balancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// shutdownGrace is how long requests in flight may finish once Serve is
// told to stop.
const shutdownGrace = 10 * time.Second

// Serve runs the health checks and serves on ln until ctx ends, then lets
// requests in flight finish for a few seconds and closes the WebSocket
// connections it carries. It returns nil after a stop asked by ctx.
func (b *Balancer) Serve(ctx context.Context, ln net.Listener) error {
	// Upgraded connections outlive http.Server.Shutdown; their requests'
	// context ends them once the rest is done.
	connCtx, closeConns := context.WithCancel(context.WithoutCancel(ctx))
	defer closeConns()
	srv := &http.Server{
		Handler:           b,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return connCtx },
		ErrorLog:          b.proxy.ErrorLog,
	}
	checks, stopChecks := context.WithCancel(ctx)
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		b.Run(checks)
	}()
	defer func() {
		stopChecks()
		<-checked
	}()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("balancer: %w", err)
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(stop)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if err != nil {
		return fmt.Errorf("balancer: shutting down: %w", err)
	}
	return nil
}
