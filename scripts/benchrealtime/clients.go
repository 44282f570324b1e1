package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// dialers bounds the sockets being opened at once.
const dialers = 32

// clientOptions shape the clients of one scenario.
type clientOptions struct {
	// delivered counts the events received by all the clients sharing it.
	delivered *atomic.Int64
	// record keeps every event's publish-to-receive latency.
	record bool
	// readBuffer sets SO_RCVBUF of the socket when above zero.
	readBuffer int
	// hold, when set, stops the client reading after it has subscribed,
	// until hold is closed.
	hold chan struct{}
}

// client is one subscribed socket and the goroutine reading it.
type client struct {
	ws      *websocket.Conn
	opts    clientOptions
	lastSeq atomic.Int64
	done    chan struct{} // closed when the reading goroutine returns
	quit    chan struct{} // closed by close
	once    sync.Once

	// Owned by the reading goroutine until done is closed.
	events int64
	lat    []int64 // nanoseconds
	err    error
}

// openClients opens n subscribed clients against url; their tokens are
// prefix followed by their index.
func openClients(ctx context.Context, url, prefix string, n int, opts clientOptions) ([]*client, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: socketDialer(opts.readBuffer).DialContext}}
	cs := make([]*client, n)
	next := make(chan int)
	errs := make([]error, dialers)
	var wg sync.WaitGroup
	for w := range dialers {
		wg.Go(func() {
			for i := range next {
				if errs[w] != nil {
					continue
				}
				cs[i], errs[w] = openClient(ctx, hc, url, prefix+strconv.Itoa(i), opts)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeClients(cs)
		return nil, err
	}
	return cs, nil
}

func socketDialer(readBuffer int) *net.Dialer {
	d := &net.Dialer{}
	if readBuffer > 0 {
		// Set before connecting, so the window the client advertises
		// matches the small buffer from the start.
		d.Control = func(network, address string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, readBuffer)
			})
			return errors.Join(err, serr)
		}
	}
	return d
}

// openClient dials url with the session cookie token, subscribes to topic,
// waits for the answer and starts reading.
func openClient(ctx context.Context, hc *http.Client, url, token string, opts clientOptions) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Cookie", (&http.Cookie{Name: sessionCookie, Value: token}).String())
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", url, err)
	}
	ws.SetReadLimit(-1)
	if err := subscribe(ctx, ws); err != nil {
		ws.CloseNow()
		return nil, err
	}
	c := &client{ws: ws, opts: opts, done: make(chan struct{}), quit: make(chan struct{})}
	go c.read()
	return c, nil
}

func subscribe(ctx context.Context, ws *websocket.Conn) error {
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","topic":"`+topic+`"}`)); err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the subscription: %w", err)
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			switch {
			case bytes.HasPrefix(line, []byte(`{"type":"subscribed"`)):
				return nil
			case bytes.HasPrefix(line, []byte(`{"type":"error"`)):
				return fmt.Errorf("subscription refused: %s", line)
			}
		}
	}
}

// read counts the events in every frame until the socket ends.
func (c *client) read() {
	defer close(c.done)
	if c.opts.hold != nil {
		select {
		case <-c.opts.hold:
		case <-c.quit:
		}
	}
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.err = err
			return
		}
		now := time.Now().UnixNano()
		var n, last int64
		for line := range bytes.SplitSeq(buf.Bytes(), []byte("\n")) {
			seq, pub, ok := parseEvent(line)
			if !ok {
				continue
			}
			n++
			last = seq
			if c.opts.record {
				c.lat = append(c.lat, now-pub)
			}
		}
		if n > 0 {
			c.events += n
			c.lastSeq.Store(last)
			if c.opts.delivered != nil {
				c.opts.delivered.Add(n)
			}
		}
	}
}

// parseEvent reads the seq and publish time of an event line without
// decoding all of it, so the clients take little of the CPU both servers
// share with them.
func parseEvent(line []byte) (seq, pubNanos int64, ok bool) {
	if !bytes.HasPrefix(line, []byte(`{"type":"event"`)) {
		return 0, 0, false
	}
	seq, ok1 := intAfter(line, `"seq":`)
	pubNanos, ok2 := intAfter(line, `"pub_ns":`)
	return seq, pubNanos, ok1 && ok2
}

func intAfter(line []byte, key string) (int64, bool) {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	end := 0
	for end < len(rest) && '0' <= rest[end] && rest[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n, err == nil
}

// payload returns an event object of about size bytes carrying seq and
// the time it is published.
func payload(seq int64, size int) []byte {
	b := make([]byte, 0, size+16)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"pub_ns":`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, `,"pad":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// close drops the client's socket.
func (c *client) close() {
	c.once.Do(func() { close(c.quit) })
	c.ws.CloseNow()
}

// closeClients drops every client's socket and waits for its reader.
func closeClients(cs []*client) {
	for _, c := range cs {
		if c != nil {
			c.close()
		}
	}
	for _, c := range cs {
		if c != nil {
			<-c.done
		}
	}
}

// minSeq returns the lowest seq every client still open has received, or
// -1 when none is open.
func minSeq(cs []*client) int64 {
	low := int64(-1)
	for _, c := range cs {
		select {
		case <-c.done:
			continue
		default:
		}
		if s := c.lastSeq.Load(); low < 0 || s < low {
			low = s
		}
	}
	return low
}

// waitSeq waits until every client has received seq, or timeout passes.
func waitSeq(cs []*client, seq int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for minSeq(cs) < seq {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
