// Package fanoutfloor is the least a fan-out server on coder/websocket can
// do, a floor to measure the realtime hub against: every socket has a
// bounded queue and one writer goroutine that merges up to Batch queued
// lines into a newline-separated frame, with a WriteTimeout on each write,
// and each event is encoded once for all sockets. It neither authenticates
// nor authorizes, and takes any first message as a subscription to its one
// topic. Events go out in the hub's wire shape:
// {"type":"event","topic":T,"seq":N,"event":{...}}.
package fanoutfloor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
)

// The floor's limits. Its queue is as long as the hub's default one.
const (
	QueueSize    = realtime.DefaultQueueSize
	Batch        = 64
	WriteTimeout = time.Second
)

// Server is the floor. It is an http.Handler for the WebSocket endpoint;
// its methods are safe for concurrent use.
type Server struct {
	topic    string
	handlers sync.WaitGroup

	mu      sync.RWMutex
	closing bool
	subs    map[*conn]struct{}
}

// New returns a floor that publishes on topic.
func New(topic string) *Server {
	return &Server{topic: topic, subs: make(map[*conn]struct{})}
}

type conn struct {
	ws    *websocket.Conn
	queue chan []byte
	stop  chan struct{}
	once  sync.Once
	code  websocket.StatusCode // set once, before stop is closed
}

// end asks the writer to close the socket with code.
func (c *conn) end(code websocket.StatusCode) {
	c.once.Do(func() {
		c.code = code
		close(c.stop)
	})
}

// ServeHTTP accepts a WebSocket, takes its first message as the
// subscription, answers {"type":"subscribed","topic":T} and writes events
// until the peer leaves, a write fails or times out, its queue overflows
// (close code realtime.StatusSlowConsumer) or Shutdown is called.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()

	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	// Registered before answering, so that a client that has its answer
	// receives every event published after it.
	c := &conn{ws: ws, queue: make(chan []byte, QueueSize), stop: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, _, err = ws.Read(ctx)
	if err == nil {
		s.mu.Lock()
		if s.closing {
			err = errors.New("shutting down")
		} else {
			s.subs[c] = struct{}{}
		}
		s.mu.Unlock()
	}
	if err == nil {
		err = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribed","topic":"`+s.topic+`"}`))
	}
	cancel()
	if err != nil {
		s.remove(c)
		return
	}

	code := c.writeLoop(ws.CloseRead(context.Background()))
	s.remove(c)
	if code != 0 {
		ws.Close(code, "")
	}
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs, c)
}

// writeLoop writes queued lines until the peer leaves, a write fails, or
// end is called; it returns the close code to send, 0 for none.
func (c *conn) writeLoop(ctx context.Context) websocket.StatusCode {
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
		for n := 1; n < Batch; n++ {
			select {
			case line = <-c.queue:
				buf = append(append(buf, '\n'), line...)
			default:
				break gather
			}
		}
		wctx, cancel := context.WithTimeout(ctx, WriteTimeout)
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

// Publish encodes the event seq with payload, a JSON value, once and
// queues it for every subscriber without blocking; a subscriber whose
// queue is full is closed with realtime.StatusSlowConsumer.
func (s *Server) Publish(seq int64, payload []byte) error {
	line, err := json.Marshal(eventLine{Type: "event", Topic: s.topic, Seq: seq, Event: payload})
	if err != nil {
		return fmt.Errorf("encoding event %d: %w", seq, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for c := range s.subs {
		select {
		case c.queue <- line:
		default:
			c.end(realtime.StatusSlowConsumer)
		}
	}
	return nil
}

// Conns returns the number of subscribed sockets.
func (s *Server) Conns() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.subs)
}

// Shutdown refuses new sockets, closes the subscribed ones with
// websocket.StatusGoingAway and waits for their handlers to return, or
// for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c := range s.subs {
		c.end(websocket.StatusGoingAway)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the floor's sockets: %w", ctx.Err())
	}
}
