package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"standin/realtime"
	"standin/scripts/internal/fanoutfloor"
	"standin/server/standin"
)

// The two systems under test.
const (
	systemHub   = "hub"
	systemFloor = "floor"
)

// topic is the one topic every scenario publishes on.
const topic = realtime.TopicActivity

// sessionCookie names the cookie the benchmark's clients carry their token in.
const sessionCookie = "standin_session"

// target is a fan-out server: the realtime hub or the floor. Its handler
// serves the WebSocket endpoint.
type target interface {
	http.Handler
	// publish sends an event to every subscriber without blocking.
	publish(seq int64, payload []byte) error
	// conns returns the number of open sockets.
	conns() int
	shutdown(ctx context.Context) error
}

func newTarget(ctx context.Context, system string) (target, error) {
	switch system {
	case systemHub:
		return newHub(ctx, nil)
	case systemFloor:
		return floorTarget{fanoutfloor.New(topic)}, nil
	}
	return nil, fmt.Errorf("unknown system %q", system)
}

// newHub starts the realtime hub with its default configuration, replaying
// from backlog when it is not nil. Only the file descriptors kept from
// sockets differ: this process serves no HTTP and holds no database, so it
// keeps as few as the floor's process needs.
func newHub(ctx context.Context, backlog realtime.Backlog) (hubTarget, error) {
	h, err := realtime.New(ctx, realtime.Config{Sessions: tokenSessions{}, Authorizer: allowAll{}, Backlog: backlog,
		Cookie: sessionCookie, ReservedFiles: descriptorSlack})
	if err != nil {
		return hubTarget{}, fmt.Errorf("starting the realtime hub: %w", err)
	}
	return hubTarget{h}, nil
}

// hubTarget is the realtime hub.
type hubTarget struct{ *realtime.Hub }

func (h hubTarget) publish(seq int64, payload []byte) error {
	if err := h.Publish(topic, realtime.Event{Seq: seq, Payload: payload}); err != nil {
		return fmt.Errorf("publishing event %d: %w", seq, err)
	}
	return nil
}

func (h hubTarget) conns() int { return h.Connections() }

func (h hubTarget) shutdown(ctx context.Context) error { return h.Shutdown(ctx) }

// tokenSessions signs in every token as its own user and session, built
// afresh on every call as the console's session store would, carrying the
// console's principal, so the principal a socket holds counts towards the
// hub's memory.
type tokenSessions struct{}

func (tokenSessions) Authenticate(ctx context.Context, token string) (*realtime.Principal, error) {
	if !strings.HasPrefix(token, "tok-") {
		return nil, realtime.Errorf(realtime.EUnauthenticated, "Unknown session.")
	}
	u := &standin.User{ID: "u" + token, Name: token, Role: standin.RoleSupport, Status: standin.StatusActive}
	p := &standin.Principal{
		Actor:   u,
		Subject: u,
		Session: &standin.Session{ID: token, UserID: u.ID, ExpiresAt: time.Now().Add(24 * time.Hour)},
	}
	return &realtime.Principal{SessionID: p.Session.ID, UserID: u.ID, ExpiresAt: p.Session.ExpiresAt, Value: p}, nil
}

// allowAll lets everyone subscribe to and receive everything, the cheapest
// Authorizer possible, so the benchmark measures the hub itself.
type allowAll struct{}

func (allowAll) CanSubscribe(context.Context, *realtime.Principal, string) error { return nil }

func (allowAll) CanReceive(context.Context, *realtime.Principal, string, realtime.Event) bool {
	return true
}

// floorTarget is the floor, a minimal fan-out server on coder/websocket.
type floorTarget struct{ *fanoutfloor.Server }

func (f floorTarget) publish(seq int64, payload []byte) error { return f.Publish(seq, payload) }

func (f floorTarget) conns() int { return f.Conns() }

func (f floorTarget) shutdown(ctx context.Context) error { return f.Shutdown(ctx) }

// childStats is what a serving child reports about itself after a full
// garbage collection.
type childStats struct {
	Goroutines int    `json:"goroutines"`
	Conns      int    `json:"conns"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
}

// serveChild serves system on a loopback port, for a parent process that
// measures the memory of the server alone. It prints the address, serves
// /ws and /stats, and returns when stdin closes or on SIGTERM.
func serveChild(system string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t, err := newTarget(ctx, system)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", t)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(childStats{
			Goroutines: runtime.NumGoroutine(),
			Conns:      t.conns(),
			HeapInuse:  ms.HeapInuse,
			StackInuse: ms.StackInuse,
		})
	})
	srv := &http.Server{Handler: mux}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, ln.Addr().String())
	if err := out.Flush(); err != nil {
		return fmt.Errorf("announcing the address: %w", err)
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(t.shutdown(sctx), srv.Shutdown(sctx))
}
