package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
)

// storm subscribes cfg.storm clients on the hub, which replays from an
// in-memory backlog, while events are published at cfg.stormRate a second
// throughout. Every client drops its socket at once; once cfg.stormAway
// more events have been published, the clients reconnect with after_seq
// set to the last seq each received, spread evenly over cfg.stormSpread.
// Only the hub runs it: the floor cannot replay.
//
// A client is live again when it receives an event with a seq above the
// last one published before it began to reconnect: it then holds
// everything it missed. Every event a client receives is checked against
// the seq before it, across all its connections, for gaps and repeats. A
// client the server closes resumes at once, as the console does.
func storm(ctx context.Context, cfg config, system string) (sample, error) {
	if system != systemHub {
		return nil, fmt.Errorf("storm: the %s has no backlog to replay", system)
	}
	// Both ends of every socket are in this process, and the server's end
	// of a dropped socket may still be open when the client reconnects.
	if err := checkDescriptors(4*cfg.storm + 256); err != nil {
		return nil, err
	}
	backlog := &memBacklog{}
	hub, err := newHub(ctx, backlog)
	if err != nil {
		return nil, err
	}
	s := serve(hub, 0)
	defer s.close()
	hc := &http.Client{Transport: &http.Transport{}}

	cs := make([]*stormClient, cfg.storm)
	for i := range cs {
		cs[i] = &stormClient{token: "tok-" + strconv.Itoa(i)}
	}
	defer dropAll(cs)
	if err := connectAll(ctx, cs, hc, s.url); err != nil {
		return nil, err
	}

	pub := startPublisher(hub, backlog, cfg.payload, cfg.stormRate)
	defer pub.halt()

	// Steady state first: a quarter of a second of events reaches everyone.
	warm := int64(max(cfg.stormRate/4, 1))
	if !waitFor(10*time.Second, func() bool { return pub.head.Load() >= warm && minLast(cs) >= warm }) {
		return nil, fmt.Errorf("storm: clients did not all receive event %d before the drop", warm)
	}

	dropAll(cs)
	var dropHead int64
	for _, c := range cs {
		dropHead = max(dropHead, c.last.Load())
	}
	waitFor(time.Minute, func() bool { return pub.head.Load() >= dropHead+int64(cfg.stormAway) || pub.stopped() })
	if pub.stopped() {
		return nil, fmt.Errorf("storm: the publisher stopped at event %d: %w", pub.head.Load(), pub.halt())
	}

	began := time.Now()
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		at := began.Add(cfg.stormSpread * time.Duration(i) / time.Duration(len(cs)))
		wg.Go(func() {
			time.Sleep(time.Until(at))
			errs[i] = c.connect(ctx, hc, s.url, true, pub.head.Load())
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("storm: reconnecting: %w", err)
	}
	waitFor(30*time.Second, func() bool {
		for _, c := range cs {
			if c.caught.Load() == 0 && !c.ended() {
				return false
			}
		}
		return true
	})

	if err := pub.halt(); err != nil {
		return nil, err
	}
	final := pub.head.Load()
	waitFor(5*time.Second, func() bool {
		for _, c := range cs {
			if c.last.Load() < final && !c.ended() {
				return false
			}
		}
		return true
	})
	open := make([]bool, len(cs))
	for i, c := range cs {
		open[i] = !c.ended()
	}
	dropAll(cs)

	var lost, duplicated, serverClosed, notLive int64
	var lastLive time.Time
	missedMin := int64(math.MaxInt64)
	var catchUp []time.Duration
	shown := 0
	for i, c := range cs {
		if (c.firstRepeat != 0 || c.firstGap != 0 || c.serverClosed != 0) && shown < 5 {
			shown++
			cfg.logf("  %s resumed after %d with %d published: first repeated seq %d, first seq after a gap %d, server closed it %d times, last with %d (0: none)",
				c.token, c.from, c.head, c.firstRepeat, c.firstGap, c.serverClosed, c.lastClose)
		}
		lost += c.lost
		if open[i] {
			lost += final - c.last.Load()
		}
		duplicated += c.duplicated
		serverClosed += c.serverClosed
		missedMin = min(missedMin, c.head-c.from)
		if ns := c.caught.Load(); ns != 0 {
			at := time.Unix(0, ns)
			catchUp = append(catchUp, at.Sub(c.dialAt))
			if at.After(lastLive) {
				lastLive = at
			}
		} else {
			notLive++
		}
	}
	allLive := -1.0
	if notLive == 0 {
		allLive = lastLive.Sub(began).Seconds()
	}
	slices.Sort(catchUp)
	ms := func(q float64) float64 {
		if len(catchUp) == 0 {
			return -1
		}
		return float64(catchUp[max(int(math.Ceil(q*float64(len(catchUp))))-1, 0)]) / 1e6
	}
	return sample{
		"lost":          float64(lost),
		"duplicated":    float64(duplicated),
		"all_live_s":    allLive,
		"catchup_p50":   ms(0.50),
		"catchup_p99":   ms(0.99),
		"catchup_max":   ms(1),
		"not_live":      float64(notLive),
		"server_closed": float64(serverClosed),
		"missed_min":    float64(missedMin),
		"published":     float64(final),
	}, nil
}

// checkDescriptors fails when this process may not open need files.
func checkDescriptors(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading the open files limit: %w", err)
	}
	if lim.Cur < uint64(need) {
		return fmt.Errorf("about %d open files are needed and the limit is %d: raise it (ulimit -n) or use fewer clients",
			need, lim.Cur)
	}
	return nil
}

// waitFor polls done until it reports true or timeout passes, and returns
// its last answer.
func waitFor(timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// memBacklog keeps every published event in memory. Events have the seqs
// 1, 2, 3, … in order, so event n is at index n-1.
type memBacklog struct {
	mu     sync.RWMutex
	events []realtime.Event
}

var _ realtime.Backlog = (*memBacklog)(nil)

func (b *memBacklog) append(ev realtime.Event) {
	b.mu.Lock()
	b.events = append(b.events, ev)
	b.mu.Unlock()
}

// EventsAfter calls fn for the events stored when it is called; those
// stored later reach the subscriber live.
func (b *memBacklog) EventsAfter(ctx context.Context, _ *realtime.Principal, t string, afterSeq int64, fn func(realtime.Event) error) error {
	if t != topic {
		return nil
	}
	b.mu.RLock()
	evs := b.events[min(afterSeq, int64(len(b.events))):]
	b.mu.RUnlock()
	for _, ev := range evs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

// publisher publishes events at a steady rate, storing each in the
// backlog before publishing it, as the server writes the audit log
// before publishing, so a client that resumes never misses an event that
// was published.
type publisher struct {
	head atomic.Int64 // the last seq published
	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error // set before done is closed
}

func startPublisher(hub hubTarget, backlog *memBacklog, size, rate int) *publisher {
	p := &publisher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for seq := int64(1); ; seq++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			ev := realtime.Event{Seq: seq, Payload: payload(seq, size)}
			backlog.append(ev)
			if err := hub.publish(ev.Seq, ev.Payload); err != nil {
				p.err = err
				return
			}
			p.head.Store(seq)
		}
	}()
	return p
}

// halt stops the publisher and returns why it stopped by itself, if it
// did.
func (p *publisher) halt() error {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	return p.err
}

// stopped reports whether the publisher has stopped.
func (p *publisher) stopped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stormClient is one client of the storm. Like the console, it resumes
// with after_seq whenever the server closes its socket.
type stormClient struct {
	token string
	last  atomic.Int64 // the highest seq received
	// caught is when the client received an event above head, in Unix
	// nanoseconds; zero until then.
	caught atomic.Int64

	mu      sync.Mutex
	ws      *websocket.Conn
	closing bool // the client is closing its socket itself

	// Set by connect before its reader starts.
	done   chan struct{} // closed when the reader returns
	dialAt time.Time
	head   int64 // the last seq published when connect was called
	from   int64 // after_seq of connect's subscription

	// Owned by connect and then the reader, until done is closed.
	lost, duplicated int64
	serverClosed     int64                // sockets the server ended
	lastClose        websocket.StatusCode // the code of the last of them
	// The first seq received twice and the first seq received after a
	// gap, zero if none, to show where they fall.
	firstRepeat, firstGap int64
}

// connect opens a socket, subscribes (with after_seq set to the last seq
// received when resume is set), waits for the answer and starts the
// reader. head is the last seq published before connect was called.
func (c *stormClient) connect(ctx context.Context, hc *http.Client, url string, resume bool, head int64) error {
	c.dialAt, c.head = time.Now(), head
	c.caught.Store(0)
	if resume {
		c.from = c.last.Load()
	}
	ws, err := c.open(ctx, hc, url, resume)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.ws, c.closing = ws, false
	c.mu.Unlock()
	c.done = make(chan struct{})
	go c.read(ctx, hc, url, ws, c.done)
	return nil
}

func (c *stormClient) open(ctx context.Context, hc *http.Client, url string, resume bool) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Cookie", (&http.Cookie{Name: sessionCookie, Value: c.token}).String())
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", url, err)
	}
	ws.SetReadLimit(-1)
	msg := `{"type":"subscribe","topic":"` + topic + `"`
	if resume {
		msg += `,"after_seq":` + strconv.FormatInt(c.last.Load(), 10)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(msg+"}")); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("subscribing: %w", err)
	}
	for subscribed := false; !subscribed; {
		_, b, err := ws.Read(ctx)
		if err == nil {
			subscribed, err = c.frame(b)
		}
		if err != nil {
			ws.CloseNow()
			return nil, fmt.Errorf("waiting for the subscription: %w", err)
		}
	}
	return ws, nil
}

// read checks the events of every frame until the client closes its
// socket, resuming when the server closes it.
func (c *stormClient) read(ctx context.Context, hc *http.Client, url string, ws *websocket.Conn, done chan struct{}) {
	defer close(done)
	var buf bytes.Buffer
	for {
		_, r, err := ws.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err == nil {
			_, err = c.frame(buf.Bytes())
		}
		if err == nil {
			continue
		}
		ws.CloseNow()
		if c.isClosing() {
			return
		}
		c.serverClosed++
		c.lastClose = websocket.CloseStatus(err)
		if ws, err = c.open(ctx, hc, url, true); err != nil {
			return
		}
		c.mu.Lock()
		closing := c.closing
		if !closing {
			c.ws = ws
		}
		c.mu.Unlock()
		if closing {
			ws.CloseNow()
			return
		}
	}
}

func (c *stormClient) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// close drops the client's socket.
func (c *stormClient) close() {
	c.mu.Lock()
	c.closing = true
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		ws.CloseNow()
	}
}

// frame checks the events in a frame and reports whether it answers the
// subscription.
func (c *stormClient) frame(b []byte) (subscribed bool, err error) {
	now := time.Now().UnixNano()
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		switch {
		case bytes.HasPrefix(line, []byte(`{"type":"event"`)):
			seq, ok := intAfter(line, `"seq":`)
			if !ok {
				return subscribed, fmt.Errorf("an event without a seq: %s", line)
			}
			last := c.last.Load()
			if seq <= last {
				c.duplicated++
				if c.firstRepeat == 0 {
					c.firstRepeat = seq
				}
				continue
			}
			if seq > last+1 && c.firstGap == 0 {
				c.firstGap = seq
			}
			c.lost += seq - last - 1
			c.last.Store(seq)
			if seq > c.head && c.caught.Load() == 0 {
				c.caught.Store(now)
			}
		case bytes.HasPrefix(line, []byte(`{"type":"subscribed"`)):
			subscribed = true
		case bytes.HasPrefix(line, []byte(`{"type":"error"`)):
			return subscribed, fmt.Errorf("the server answered: %s", line)
		}
	}
	return subscribed, nil
}

// ended reports whether the client's reader has returned.
func (c *stormClient) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// connectAll connects the clients, at most dialers at a time.
func connectAll(ctx context.Context, cs []*stormClient, hc *http.Client, url string) error {
	next := make(chan *stormClient)
	errs := make([]error, dialers)
	var wg sync.WaitGroup
	for w := range dialers {
		wg.Go(func() {
			for c := range next {
				if errs[w] == nil {
					errs[w] = c.connect(ctx, hc, url, false, 0)
				}
			}
		})
	}
	for _, c := range cs {
		next <- c
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// dropAll closes every client's socket at once and waits for the readers.
func dropAll(cs []*stormClient) {
	for _, c := range cs {
		c.close()
	}
	for _, c := range cs {
		if c.done != nil {
			<-c.done
		}
	}
}

// minLast returns the lowest seq every client has received.
func minLast(cs []*stormClient) int64 {
	low := int64(math.MaxInt64)
	for _, c := range cs {
		low = min(low, c.last.Load())
	}
	return low
}
