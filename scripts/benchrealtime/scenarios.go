package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/hostload"
)

// sample holds one run's measurements by metric key.
type sample = benchresult.Sample

// server is a target served on loopback by this process.
type server struct {
	t   target
	srv *httptest.Server
	url string
}

// startServer serves system; sndbuf, when above zero, sets SO_SNDBUF of
// every accepted socket.
func startServer(ctx context.Context, system string, sndbuf int) (*server, error) {
	t, err := newTarget(ctx, system)
	if err != nil {
		return nil, err
	}
	return serve(t, sndbuf), nil
}

// serve serves t on loopback; sndbuf as for startServer.
func serve(t target, sndbuf int) *server {
	srv := httptest.NewUnstartedServer(t)
	if sndbuf > 0 {
		srv.Listener = sendBufferListener{srv.Listener, sndbuf}
	}
	srv.Start()
	return &server{t: t, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

// sendBufferListener sets SO_SNDBUF on the sockets it accepts.
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		// On failure the socket keeps its autotuned buffer, which only
		// makes a stalled client take longer to fill it.
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}

func (s *server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := s.t.shutdown(ctx)
	s.srv.Close()
	if err != nil {
		return fmt.Errorf("shutting the server down: %w", err)
	}
	return nil
}

// saturation publishes as fast as the slowest of cfg.subs subscribers
// keeps up with, for cfg.satDuration. The publisher stays at most
// cfg.window events ahead of the slowest subscriber still connected, well
// inside both servers' queues whatever the number of subscribers, so that
// nobody is dropped for the publisher's sake and throughput is the
// servers' steady rate. A server may still drop a subscriber whose writes
// time out; dropped counts them.
func saturation(ctx context.Context, cfg config, system string) (sample, error) {
	s, err := startServer(ctx, system, 0)
	if err != nil {
		return nil, err
	}
	defer s.close()
	f, err := openFleet(ctx, s.url, cfg.subs, false, cfg.clientsApart, time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer f.close()

	var seq int64
	start := time.Now()
	end := start.Add(cfg.satDuration)
	cpu0, child0 := hostload.CPUTime(), f.cpu()
	for time.Now().Before(end) {
		low := f.minSeq()
		if low < 0 {
			return nil, errors.New("saturation: the server dropped every subscriber")
		}
		if seq-low >= cfg.window {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		for ; seq < low+cfg.window; seq++ {
			if err := s.t.publish(seq+1, payload(seq+1, cfg.payload)); err != nil {
				return nil, err
			}
		}
	}
	elapsed := time.Since(start).Seconds()
	cpu := (hostload.CPUTime() - cpu0 + f.cpu() - child0).Seconds()
	n := float64(f.deliveries())
	f.logDropped(cfg.logf, system)
	// The subscribers have at most cfg.window events each to catch up on.
	if !f.waitSeq(seq, perSubscriber(10*time.Second, cfg.subs)) {
		return nil, fmt.Errorf("saturation: subscribers did not all receive event %d; %d of %d sockets open",
			seq, s.t.conns(), cfg.subs)
	}
	dropped := float64(cfg.subs - s.t.conns())
	if _, err := f.close(); err != nil {
		return nil, err
	}
	return sample{
		"deliveries_per_s":    n / elapsed,
		"events_per_s":        float64(seq) / elapsed,
		"cpu_us_per_delivery": cpu / n * 1e6,
		"cpu_cores":           cpu / elapsed,
		"dropped":             dropped,
		"client_procs":        f.procs(),
	}, nil
}

// perSubscriber is base plus a millisecond per subscriber: the time to
// wait for deliveries still queued at the end of a run.
func perSubscriber(base time.Duration, subs int) time.Duration {
	return base + time.Duration(subs)*time.Millisecond
}

// latency publishes cfg.rate events a second to cfg.subs subscribers for
// cfg.latDuration and measures every delivery's delay.
func latency(ctx context.Context, cfg config, system string) (sample, error) {
	s, err := startServer(ctx, system, 0)
	if err != nil {
		return nil, err
	}
	defer s.close()
	f, err := openFleet(ctx, s.url, cfg.subs, true, cfg.clientsApart, 5*time.Millisecond)
	if err != nil {
		return nil, err
	}
	start, cpu0, child0 := time.Now(), hostload.CPUTime(), f.cpu()
	seq, err := publishAtRate(s.t, cfg.rate, cfg.latDuration, cfg.payload)
	if err != nil {
		f.close()
		return nil, err
	}
	f.waitSeq(seq, perSubscriber(5*time.Second, cfg.subs))
	cores := (hostload.CPUTime() - cpu0 + f.cpu() - child0).Seconds() / time.Since(start).Seconds()
	lat, err := f.close()
	if err != nil {
		return nil, err
	}
	out := latencyStats(lat, "")
	out["cpu_cores"] = cores
	out["lost"] = float64(int64(cfg.subs)*seq) - out["deliveries"]
	out["client_procs"] = f.procs()
	delete(out, "deliveries")
	return out, nil
}

// stallSendBuffer is SO_SNDBUF of the server's sockets in the stall
// scenario, and SO_RCVBUF of the stalled client's.
const stallSendBuffer = 4096

// stall runs cfg.stallSubs subscribers at cfg.rate events a second of
// cfg.stallPayload bytes, first alone and then beside one subscriber that
// stops reading once subscribed. When the server drops that subscriber it
// reads again, to find the close code the server sent.
func stall(ctx context.Context, cfg config, system string) (sample, error) {
	out := sample{}
	for _, stalled := range []bool{false, true} {
		prefix := "alone_"
		if stalled {
			prefix = "with_"
		}
		r, err := stallRun(ctx, cfg, system, stalled, prefix)
		if err != nil {
			return nil, err
		}
		for k, v := range r {
			out[k] = v
		}
	}
	return out, nil
}

func stallRun(ctx context.Context, cfg config, system string, stalled bool, prefix string) (sample, error) {
	// Small server send buffers let the stalled client's socket fill in a
	// second rather than the minutes an autotuned buffer of up to 4 MiB
	// takes at this rate.
	s, err := startServer(ctx, system, stallSendBuffer)
	if err != nil {
		return nil, err
	}
	defer s.close()
	cs, err := openClients(ctx, s.url, "tok-", cfg.stallSubs, clientOptions{record: true})
	if err != nil {
		return nil, err
	}
	defer closeClients(cs)
	want := len(cs)
	hold := make(chan struct{})
	var staller *client
	if stalled {
		st, err := openClients(ctx, s.url, "tok-stalled-", 1, clientOptions{readBuffer: stallSendBuffer, hold: hold})
		if err != nil {
			return nil, err
		}
		defer closeClients(st)
		staller = st[0]
		want++
	}
	if s.t.conns() != want {
		return nil, fmt.Errorf("stall: the server holds %d sockets, want %d", s.t.conns(), want)
	}

	start := time.Now()
	dropped := make(chan float64, 1)
	stopWatch := make(chan struct{})
	go func() {
		defer close(hold)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopWatch:
				dropped <- -1
				return
			case <-tick.C:
				if s.t.conns() < want {
					dropped <- time.Since(start).Seconds()
					return
				}
			}
		}
	}()
	seq, err := publishAtRate(s.t, cfg.rate, cfg.stallDuration, cfg.stallPayload)
	close(stopWatch)
	dropAfter := <-dropped
	if err != nil {
		return nil, err
	}
	waitSeq(cs, seq, 5*time.Second)

	out := sample{}
	if staller != nil {
		code := 0.0 // still open
		select {
		case <-staller.done:
			code = float64(websocket.CloseStatus(staller.err))
			cfg.logf("  %s: the stalled client read %d events, then: %v", system, staller.events, staller.err)
		case <-time.After(12 * time.Second):
			cfg.logf("  %s: the stalled client is still open", system)
		}
		out["drop_s"] = dropAfter
		out["close_code"] = code
		out["stalled_events"] = float64(staller.events)
	}
	closeClients(cs)
	lat := latencies(cs, prefix)
	for k, v := range lat {
		out[k] = v
	}
	out[prefix+"lost"] = float64(int64(len(cs))*seq) - lat[prefix+"deliveries"]
	delete(out, prefix+"deliveries")
	return out, nil
}

// publishAtRate publishes rate events a second for d with payloads of
// size bytes and returns the last seq published.
func publishAtRate(t target, rate int, d time.Duration, size int) (int64, error) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	total := int64(d.Seconds() * float64(rate))
	var seq int64
	for seq < total {
		<-tick.C
		seq++
		if err := t.publish(seq, payload(seq, size)); err != nil {
			return seq, err
		}
	}
	return seq, nil
}

// latencies summarizes the delays recorded by closed clients, in
// milliseconds; -1 when nothing was delivered.
func latencies(cs []*client, prefix string) sample {
	var all []int64
	for _, c := range cs {
		all = append(all, c.lat...)
	}
	return latencyStats(all, prefix)
}

// latencyStats summarizes delays in nanoseconds, in milliseconds; -1 when
// there are none.
func latencyStats(all []int64, prefix string) sample {
	slices.Sort(all)
	ms := func(q float64) float64 {
		if len(all) == 0 {
			return -1
		}
		i := max(int(math.Ceil(q*float64(len(all))))-1, 0)
		return float64(all[i]) / 1e6
	}
	return sample{
		prefix + "p50_ms":     ms(0.50),
		prefix + "p99_ms":     ms(0.99),
		prefix + "max_ms":     ms(1),
		prefix + "deliveries": float64(len(all)),
	}
}

// idle opens cfg.idle subscribed sockets to a server running in a child
// process and measures what they cost it, and what the clients cost this
// process.
func idle(ctx context.Context, cfg config, system string) (sample, error) {
	// The child inherits this process's limit and holds as many sockets.
	if err := checkDescriptors(cfg.idle + descriptorSlack); err != nil {
		return nil, fmt.Errorf("idle: the server's process and this one each hold %d sockets: %w", cfg.idle, err)
	}
	ch, err := startChild(ctx, system)
	if err != nil {
		return nil, err
	}
	defer ch.stop()
	before, err := ch.stats()
	if err != nil {
		return nil, err
	}
	selfBefore, err := selfRSS()
	if err != nil {
		return nil, err
	}
	cs, err := openClients(ctx, ch.url, "tok-", cfg.idle, clientOptions{})
	if err != nil {
		return nil, err
	}
	defer closeClients(cs)
	after, err := ch.stats()
	if err != nil {
		return nil, err
	}
	selfAfter, err := selfRSS()
	if err != nil {
		return nil, err
	}
	if after.Conns != cfg.idle {
		return nil, fmt.Errorf("idle: the %s holds %d sockets, want %d", system, after.Conns, cfg.idle)
	}
	n := float64(cfg.idle)
	return sample{
		"rss_kib_per_socket":        float64(after.rssKiB-before.rssKiB) / n,
		"heap_kib_per_socket":       float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / 1024 / n,
		"goroutines_per_socket":     float64(after.Goroutines-before.Goroutines) / n,
		"client_rss_kib_per_socket": float64(selfAfter-selfBefore) / n,
	}, nil
}

// child is this program serving one system in another process.
type child struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	url   string
	base  string
	hc    *http.Client
}

// measured is a child's stats with its resident set size.
type measured struct {
	childStats
	rssKiB int64
}

func startChild(ctx context.Context, system string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "-serve", system)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("starting the %s child: %w", system, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting the %s child: %w", system, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s child: %w", system, err)
	}
	ch := &child{cmd: cmd, stdin: stdin, hc: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		ch.stop()
		return nil, fmt.Errorf("reading the %s child's address: %w", system, err)
	}
	addr = strings.TrimSpace(addr)
	ch.url, ch.base = "ws://"+addr+"/ws", "http://"+addr
	return ch, nil
}

// stats has the child collect its garbage and return its stats, then
// reads its resident set size.
func (ch *child) stats() (measured, error) {
	var m measured
	resp, err := ch.hc.Get(ch.base + "/stats")
	if err != nil {
		return m, fmt.Errorf("asking the child for stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&m.childStats); err != nil {
		return m, fmt.Errorf("reading the child's stats: %w", err)
	}
	m.rssKiB, err = rssKiB(strconv.Itoa(ch.cmd.Process.Pid))
	return m, err
}

// stop closes the child's stdin, which ends it, and waits for it.
func (ch *child) stop() {
	ch.stdin.Close()
	done := make(chan struct{})
	go func() {
		ch.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		ch.cmd.Process.Kill()
		<-done
	}
}

// selfRSS returns this process's resident set size after a full
// collection.
func selfRSS() (int64, error) {
	debug.FreeOSMemory()
	return rssKiB("self")
}

// rssKiB reads VmRSS of process pid ("self" for this one).
func rssKiB(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading the resident set size: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS %q: %w", v, err)
			}
			return n, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + pid + "/status")
}
