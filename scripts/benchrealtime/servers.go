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
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
	"standin/server/standin"
)

// The two systems under test.
const (
	systemHub   = "hub"
	systemFloor = "floor"
)

// topic is the one topic every scenario publishes on.
const topic = realtime.TopicActivity

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
		return &floor{subs: make(map[*floorConn]struct{})}, nil
	}
	return nil, fmt.Errorf("unknown system %q", system)
}

// newHub starts the realtime hub with its default configuration, replaying
// from backlog when it is not nil.
func newHub(ctx context.Context, backlog realtime.Backlog) (hubTarget, error) {
	h, err := realtime.New(ctx, realtime.Config{Sessions: tokenSessions{}, Authorizer: allowAll{}, Backlog: backlog})
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
// afresh on every call as a session store would, so the principal a socket
// holds counts towards the hub's memory.
type tokenSessions struct{}

func (tokenSessions) Authenticate(ctx context.Context, token string) (*standin.Principal, error) {
	if !strings.HasPrefix(token, "tok-") {
		return nil, standin.Errorf(standin.EUnauthenticated, "Unknown session.")
	}
	u := &standin.User{ID: "u" + token, Name: token, Role: standin.RoleSupport, Status: standin.StatusActive}
	return &standin.Principal{
		Actor:   u,
		Subject: u,
		Session: &standin.Session{ID: token, UserID: u.ID, ExpiresAt: time.Now().Add(24 * time.Hour)},
	}, nil
}

// allowAll lets everyone subscribe to and receive everything, the cheapest
// Authorizer possible, so the benchmark measures the hub itself.
type allowAll struct{}

func (allowAll) CanSubscribe(context.Context, *standin.Principal, string) error { return nil }

func (allowAll) CanReceive(context.Context, *standin.Principal, string, realtime.Event) bool {
	return true
}

// The floor's limits. Its queue is as long as the hub's default one.
const (
	floorQueue        = realtime.DefaultQueueSize
	floorBatch        = 64
	floorWriteTimeout = time.Second
)

// floor is the least a fan-out server on coder/websocket can do: every
// socket has a bounded queue and one writer goroutine that merges up to
// floorBatch queued lines into a frame. It neither authenticates nor
// authorizes, and takes any first message as a subscription to topic.
type floor struct {
	handlers sync.WaitGroup

	mu      sync.RWMutex
	closing bool
	subs    map[*floorConn]struct{}
}

type floorConn struct {
	ws    *websocket.Conn
	queue chan []byte
	stop  chan struct{}
	once  sync.Once
	code  websocket.StatusCode // set once, before stop is closed
}

// end asks the writer to close the socket with code.
func (c *floorConn) end(code websocket.StatusCode) {
	c.once.Do(func() {
		c.code = code
		close(c.stop)
	})
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	f.handlers.Add(1)
	f.mu.Unlock()
	defer f.handlers.Done()

	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	// Registered before answering, so that a client that has its answer
	// receives every event published after it.
	c := &floorConn{ws: ws, queue: make(chan []byte, floorQueue), stop: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, _, err = ws.Read(ctx)
	if err == nil {
		f.mu.Lock()
		if f.closing {
			err = errors.New("shutting down")
		} else {
			f.subs[c] = struct{}{}
		}
		f.mu.Unlock()
	}
	if err == nil {
		err = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribed","topic":"`+topic+`"}`))
	}
	cancel()
	if err != nil {
		f.remove(c)
		return
	}

	code := c.writeLoop(ws.CloseRead(context.Background()))
	f.remove(c)
	if code != 0 {
		ws.Close(code, "")
	}
}

func (f *floor) remove(c *floorConn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, c)
}

// writeLoop writes queued lines until the peer leaves, a write fails, or
// end is called; it returns the close code to send, 0 for none.
func (c *floorConn) writeLoop(ctx context.Context) websocket.StatusCode {
	var buf []byte
	for {
		var line []byte
		select {
		case <-ctx.Done():
			return 0
		case <-c.stop:
			return c.code
		case line = <-c.queue:
		}
		buf = append(buf[:0], line...)
	gather:
		for n := 1; n < floorBatch; n++ {
			select {
			case line = <-c.queue:
				buf = append(append(buf, '\n'), line...)
			default:
				break gather
			}
		}
		wctx, cancel := context.WithTimeout(ctx, floorWriteTimeout)
		err := c.ws.Write(wctx, websocket.MessageText, buf)
		cancel()
		if err != nil {
			return 0
		}
	}
}

// eventLine is the wire shape of an event, the same as the hub's.
type eventLine struct {
	Type  string          `json:"type"`
	Topic string          `json:"topic"`
	Seq   int64           `json:"seq"`
	Event json.RawMessage `json:"event"`
}

func (f *floor) publish(seq int64, payload []byte) error {
	line, err := json.Marshal(eventLine{Type: "event", Topic: topic, Seq: seq, Event: payload})
	if err != nil {
		return fmt.Errorf("encoding event %d: %w", seq, err)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	for c := range f.subs {
		select {
		case c.queue <- line:
		default:
			c.end(realtime.StatusSlowConsumer)
		}
	}
	return nil
}

func (f *floor) conns() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.subs)
}

func (f *floor) shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closing = true
	for c := range f.subs {
		c.end(websocket.StatusGoingAway)
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the floor's sockets: %w", ctx.Err())
	}
}

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
