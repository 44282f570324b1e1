package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/fanoutfloor"
)

// sample holds one run's measurements by metric key.
type sample = benchresult.Sample

// system is the real server with its signed-in clients.
type system struct {
	owner, admin *client
	wsURL        string
}

// waitTime is base plus 10 ms per watcher: how long to wait for the last
// deliveries of a run.
func waitTime(base time.Duration, watchers int) time.Duration {
	return base + time.Duration(watchers)*10*time.Millisecond
}

// pacedStandin opens n watchers as the owner and takes one action at a
// time, rate a second for d, as the admin impersonating Ben. For each
// action it measures the time to the HTTP answer and to the event at the
// first and at the last watcher, from when the request was sent.
func pacedStandin(sys system, n, rate int, d time.Duration) (sample, error) {
	head, err := sys.owner.Head()
	if err != nil {
		return nil, err
	}
	ws, err := openWatchers(sys.owner.HTTP, sys.wsURL, n, head)
	if err != nil {
		return nil, err
	}
	defer closeWatchers(ws)

	var sent, answered []time.Time
	tick := time.NewTicker(time.Second / time.Duration(rate))
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		<-tick.C
		t0 := time.Now()
		if err := sys.admin.act(); err != nil {
			tick.Stop()
			return nil, err
		}
		sent, answered = append(sent, t0), append(answered, time.Now())
	}
	tick.Stop()
	last := head + int64(len(sent))
	if !waitAll(ws, last, waitTime(30*time.Second, n)) {
		return nil, fmt.Errorf("%d watchers: not every watcher received event %d", n, last)
	}
	var answer, first, lastW, fan []time.Duration
	for i := range sent {
		lo, hi := spread(ws, head+int64(i)+1)
		answer = append(answer, answered[i].Sub(sent[i]))
		first, lastW = append(first, lo.Sub(sent[i])), append(lastW, hi.Sub(sent[i]))
		fan = append(fan, hi.Sub(lo))
	}
	s := sample{"actions": float64(len(sent)), "lost": float64(lost(ws))}
	s.Quantiles("http_", answer)
	s.Quantiles("first_", first)
	s.Quantiles("last_", lastW)
	s.Quantiles("spread_", fan)
	return s, nil
}

// pacedFloor serves a fanoutfloor server on loopback in this process,
// opens n watchers to it and publishes rate events a second for d, each
// carrying payload. For each event it measures the time from the publish
// call to the event at the first and at the last watcher.
func pacedFloor(n, rate int, d time.Duration, payload []byte) (sample, error) {
	floor := fanoutfloor.New(realtime.TopicActivity)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("floor: listening: %w", err)
	}
	srv := &http.Server{Handler: floor}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		floor.Shutdown(ctx)
		srv.Close()
	}()
	ws, err := openWatchers(&http.Client{}, "ws://"+ln.Addr().String()+"/ws", n, 0)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	defer closeWatchers(ws)

	var published []time.Time
	tick := time.NewTicker(time.Second / time.Duration(rate))
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		<-tick.C
		published = append(published, time.Now())
		if err := floor.Publish(int64(len(published)), payload); err != nil {
			tick.Stop()
			return nil, err
		}
	}
	tick.Stop()
	last := int64(len(published))
	if !waitAll(ws, last, waitTime(30*time.Second, n)) {
		return nil, fmt.Errorf("floor, %d watchers: not every watcher received event %d", n, last)
	}
	var first, lastW, fan []time.Duration
	for i, at := range published {
		lo, hi := spread(ws, int64(i)+1)
		first, lastW = append(first, lo.Sub(at)), append(lastW, hi.Sub(at))
		fan = append(fan, hi.Sub(lo))
	}
	s := sample{"events": float64(last), "lost": float64(lost(ws)), "event_bytes": float64(len(payload))}
	s.Quantiles("floor_first_", first)
	s.Quantiles("floor_last_", lastW)
	s.Quantiles("floor_spread_", fan)
	return s, nil
}

// saturate opens n watchers and has workers requests at a time in flight
// for d; actions a second, and deliveries a second until the last
// watcher received the last event.
func saturate(sys system, n, workers int, d time.Duration) (sample, error) {
	head, err := sys.owner.Head()
	if err != nil {
		return nil, err
	}
	ws, err := openWatchers(sys.owner.HTTP, sys.wsURL, n, head)
	if err != nil {
		return nil, err
	}
	defer closeWatchers(ws)

	var acted atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	t0 := time.Now()
	end := t0.Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				if err := sys.admin.act(); err != nil {
					failed.Store(err)
					return
				}
				acted.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return nil, err
	}
	actions := acted.Load()
	last := head + actions
	if !waitAll(ws, last, waitTime(60*time.Second, n)) {
		return nil, fmt.Errorf("%d watchers: not every watcher received event %d", n, last)
	}
	_, hi := spread(ws, last)
	elapsed := hi.Sub(t0)
	return sample{
		"actions_per_s":    float64(actions) / d.Seconds(),
		"deliveries_per_s": float64(actions*int64(n)) / elapsed.Seconds(),
		"last_delivery_s":  elapsed.Seconds(),
		"actions":          float64(actions),
		"lost":             float64(lost(ws)),
	}, nil
}

// realEvent takes one action and returns its activity event as a watcher
// receives it: the "event" object of the event message. The floor
// publishes it, so that its events are the size of the real ones.
func realEvent(sys system) ([]byte, error) {
	head, err := sys.owner.Head()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, sys.wsURL, &websocket.DialOptions{HTTPClient: sys.owner.HTTP})
	if err != nil {
		return nil, fmt.Errorf("opening a watcher: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)
	sub := `{"type":"subscribe","topic":"activity","after_seq":` + strconv.FormatInt(head, 10) + `}`
	if err := conn.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		return nil, fmt.Errorf("subscribing: %w", err)
	}
	if err := sys.admin.act(); err != nil {
		return nil, err
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("waiting for an activity event: %w", err)
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if seq, ok := eventSeq([]byte(line)); !ok || seq <= head {
				continue
			}
			var m struct {
				Event json.RawMessage `json:"event"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				return nil, fmt.Errorf("reading an activity event: %w", err)
			}
			if len(m.Event) == 0 {
				return nil, errors.New("an activity event without its event object")
			}
			return m.Event, nil
		}
	}
}
