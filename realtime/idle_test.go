//go:build unix

package realtime_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"standin/realtime"
)

// Environment of a child process started by BenchmarkIdleSockets to hold
// its client sockets.
const (
	idleClientsURL   = "STANDIN_IDLE_CLIENTS_URL"
	idleClientsCount = "STANDIN_IDLE_CLIENTS_COUNT"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(idleClientsURL); url != "" {
		if err := holdIdleClients(url, os.Getenv(idleClientsCount)); err != nil {
			fmt.Fprintln(os.Stderr, "idle clients:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkIdleSockets measures what an idle socket subscribed to one topic
// costs the server: goroutines, and heap and stack bytes, per socket. The
// clients run in a child process (this test binary again), so that only the
// hub's side of each socket is counted. Opening the sockets takes long
// enough that each size is measured once:
//
//	go test -run '^$' -bench IdleSockets -benchtime 1x ./realtime/
func BenchmarkIdleSockets(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				measureIdleSockets(b, n)
			}
		})
	}
}

// idleSnapshot is the process's state after a full garbage collection.
type idleSnapshot struct {
	goroutines int
	heap       uint64 // HeapInuse
	stack      uint64 // StackInuse
}

func takeIdleSnapshot() idleSnapshot {
	runtime.GC()
	debug.FreeOSMemory() // a second collection, which also shrinks stacks
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return idleSnapshot{goroutines: runtime.NumGoroutine(), heap: ms.HeapInuse, stack: ms.StackInuse}
}

func measureIdleSockets(b *testing.B, n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && realtime.SocketsWithin(int(lim.Cur), 0) < n {
		b.Skipf("%d sockets need more than the %d file descriptors allowed", n, lim.Cur)
	}
	// Every socket is one of Ada's sessions: far more than one person may
	// hold by default.
	e := newEnv(b, realtime.Config{MaxSocketsPerUser: n})
	for i := range n {
		e.sessions.add("s"+strconv.Itoa(i), "ada", time.Time{})
	}
	before := takeIdleSnapshot()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), idleClientsURL+"="+e.url, idleClientsCount+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
		waitFor(b, "the idle sockets to close", func() bool { return e.hub.Connections() == 0 })
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		b.Fatalf("the client process said %q (%v), want ready", line, err)
	}
	if got := e.hub.Connections(); got != n {
		b.Fatalf("%d sockets open, want %d", got, n)
	}
	// Work started by the subscriptions settles before the measurement.
	last := -1
	for g := runtime.NumGoroutine(); g != last; g = runtime.NumGoroutine() {
		last = g
		time.Sleep(200 * time.Millisecond)
	}
	after := takeIdleSnapshot()

	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/socket")
	b.ReportMetric(per(after.heap, before.heap), "heap-B/socket")
	b.ReportMetric(per(after.stack, before.stack), "stack-B/socket")
	b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "heap+stack-B/socket")
}

// holdIdleClients opens count sockets to url, with the tokens
// testSessions.add gives sessions s0, s1, ..., subscribes each to activity,
// says "ready" on stdout and keeps them open, answering pings, until stdin
// closes.
func holdIdleClients(url, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	e := &env{url: url}
	sockets := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range next {
				ws, err := openIdleClient(e, "token-s"+strconv.Itoa(i))
				if err != nil {
					errs <- fmt.Errorf("socket %d: %w", i, err)
					continue
				}
				sockets[i] = ws
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, ws := range sockets {
		ws.CloseRead(context.Background())
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

func openIdleClient(e *env, token string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := e.dial(ctx, token, dialOptions{})
	if err != nil {
		return nil, err
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","topic":"activity"}`)); err != nil {
		return nil, err
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(b), `"subscribed"`) {
		return nil, fmt.Errorf("subscribing: got %s", b)
	}
	return ws, nil
}
