package main

import (
	"bufio"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"standin/scripts/internal/hostload"
)

// descriptorSlack is the open files a process needs besides its sockets.
const descriptorSlack = 256

// fleet is the subscribers of a saturation or latency run: in this process
// when both ends of every socket fit its open files limit, otherwise in a
// child process.
type fleet struct {
	n         int
	local     []*client
	delivered atomic.Int64 // by the local clients
	child     *clientChild
}

// openFleet opens n subscribers of url, recording every delivery's delay
// when record is set.
// With apart set the subscribers run in a child process even when they
// fit in this one.
func openFleet(ctx context.Context, url string, n int, record, apart bool, every time.Duration) (*fleet, error) {
	limit, err := hostload.Descriptors()
	if err != nil {
		return nil, err
	}
	f := &fleet{n: n}
	switch {
	case !apart && uint64(2*n+descriptorSlack) <= limit:
		f.local, err = openClients(ctx, url, "tok-", n, clientOptions{delivered: &f.delivered, record: record})
	case uint64(n+descriptorSlack) <= limit:
		f.child, err = startClientChild(ctx, clientSpec{URL: url, Prefix: "tok-", N: n, Record: record, Every: every})
	default:
		err = fmt.Errorf("%d subscribers need about %d open files in this process and the limit is %d: raise it (ulimit -n) or use fewer",
			n, n+descriptorSlack, limit)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// procs is the number of processes the subscribers run in besides this
// one.
func (f *fleet) procs() float64 {
	if f.child != nil {
		return 1
	}
	return 0
}

// minSeq returns the lowest seq every subscriber still open has received,
// or -1 when none is open. From a child it is at most every old.
func (f *fleet) minSeq() int64 {
	if f.child != nil {
		return f.child.low.Load()
	}
	return minSeq(f.local)
}

// deliveries returns the events the subscribers have received so far.
func (f *fleet) deliveries() int64 {
	if f.child != nil {
		return f.child.delivered.Load()
	}
	return f.delivered.Load()
}

// waitSeq waits until every subscriber still open has received seq, or
// timeout passes.
func (f *fleet) waitSeq(seq int64, timeout time.Duration) bool {
	return waitFor(timeout, func() bool { return f.minSeq() >= seq })
}

// cpu returns the CPU time the child has used so far; zero without one.
func (f *fleet) cpu() time.Duration {
	if f.child == nil {
		return 0
	}
	d, err := hostload.ProcessCPU(f.child.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return d
}

// logDropped logs the subscribers the server has closed.
func (f *fleet) logDropped(logf func(string, ...any), system string) {
	for _, c := range f.local {
		select {
		case <-c.done:
			logf("  %s dropped a subscriber, which read: %v", system, c.err)
		default:
		}
	}
}

// close drops every subscriber and returns the delays they recorded, in
// nanoseconds.
func (f *fleet) close() ([]int64, error) {
	if f.child != nil {
		rep, err := f.child.stop()
		return rep.Lat, err
	}
	closeClients(f.local)
	var all []int64
	for _, c := range f.local {
		all = append(all, c.lat...)
	}
	return all, nil
}

// clientSpec is what a client child opens: N subscribers of URL, their
// tokens Prefix followed by their index. It reports its progress every
// Every.
type clientSpec struct {
	URL    string        `json:"url"`
	Prefix string        `json:"prefix"`
	N      int           `json:"n"`
	Record bool          `json:"record"`
	Every  time.Duration `json:"every"`
}

// clientReport is what a client child sends when it stops.
type clientReport struct {
	Lat     []int64 // every delivery's delay in nanoseconds, when recording
	Dropped int     // subscribers the server closed
}

// serveClients is a client child: it opens the subscribers spec
// describes, prints "ready", then every spec.Every a line "low delivered"
// (the lowest seq every open subscriber has received, -1 when none is
// open, and the events received in all) until stdin closes; then it closes
// them, prints "end" and a gob-encoded clientReport.
func serveClients(specJSON string) error {
	var spec clientSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("reading the client spec: %w", err)
	}
	signal.Ignore(os.Interrupt) // the parent stops it
	if err := checkDescriptors(spec.N + descriptorSlack); err != nil {
		return err
	}
	var delivered atomic.Int64
	cs, err := openClients(context.Background(), spec.URL, spec.Prefix, spec.N,
		clientOptions{delivered: &delivered, record: spec.Record})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	if err := out.Flush(); err != nil {
		closeClients(cs)
		return err
	}
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	tick := time.NewTicker(max(spec.Every, time.Millisecond))
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-stdinClosed:
			running = false
		case <-tick.C:
			fmt.Fprintf(out, "%d %d\n", minSeq(cs), delivered.Load())
			if err := out.Flush(); err != nil {
				running = false
			}
		}
	}
	var rep clientReport
	for _, c := range cs {
		select {
		case <-c.done:
			rep.Dropped++
			if rep.Dropped <= 5 {
				fmt.Fprintf(os.Stderr, "  the server dropped a subscriber, which read: %v\n", c.err)
			}
		default:
		}
	}
	closeClients(cs)
	for _, c := range cs {
		rep.Lat = append(rep.Lat, c.lat...)
	}
	fmt.Fprintln(out, "end")
	if err := gob.NewEncoder(out).Encode(rep); err != nil {
		return err
	}
	return out.Flush()
}

// clientChild is this program running subscribers in another process.
type clientChild struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	low       atomic.Int64
	delivered atomic.Int64
	ended     chan struct{} // closed when the reader returns
	rep       clientReport  // set before ended is closed
	err       error         // set before ended is closed
}

func startClientChild(ctx context.Context, spec clientSpec) (*clientChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program: %w", err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-clients", string(b))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("starting the client child: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting the client child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the client child: %w", err)
	}
	ch := &clientChild{cmd: cmd, stdin: stdin, ended: make(chan struct{})}
	// Every subscriber is open and has received nothing when the child is
	// ready.
	ch.low.Store(0)
	r := bufio.NewReader(stdout)
	ready := make(chan error, 1)
	go func() {
		line, err := r.ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		return nil, fmt.Errorf("the client child did not open its %d subscribers: %w", spec.N, err)
	}
	go ch.read(r)
	return ch, nil
}

// read follows the child's progress until it ends.
func (ch *clientChild) read(r *bufio.Reader) {
	defer close(ch.ended)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			ch.err = fmt.Errorf("the client child ended early: %w", err)
			return
		}
		line = strings.TrimSpace(line)
		if line == "end" {
			ch.err = gob.NewDecoder(r).Decode(&ch.rep)
			return
		}
		low, delivered, ok := strings.Cut(line, " ")
		l, err1 := strconv.ParseInt(low, 10, 64)
		d, err2 := strconv.ParseInt(delivered, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			ch.err = fmt.Errorf("the client child wrote %q", line)
			return
		}
		ch.low.Store(l)
		ch.delivered.Store(d)
	}
}

// stop has the child close its subscribers and waits for its report and
// its end.
func (ch *clientChild) stop() (clientReport, error) {
	ch.stdin.Close()
	select {
	case <-ch.ended:
	case <-time.After(time.Minute):
		ch.cmd.Process.Kill()
		<-ch.ended
	}
	werr := ch.cmd.Wait()
	if ch.err != nil || werr != nil {
		return ch.rep, errors.Join(ch.err, werr)
	}
	return ch.rep, nil
}
