package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Timeouts, generous for a loaded machine.
const (
	readyTimeout = 2 * time.Minute  // the console from start to ready
	stopGrace    = 30 * time.Second // SIGTERM to exit, before SIGKILL
)

// buildBinary builds the standin binary into dir and returns its path.
func buildBinary(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, "standin")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", path, "standin").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build standin: %w\n%s", err, out)
	}
	return path, nil
}

// console is the standin process under measurement, logging to a file.
type console struct {
	cmd    *exec.Cmd
	url    string
	log    string
	exited chan struct{} // closed once it exited
	err    error         // how it exited, once exited is closed
}

// startConsole runs bin in dir as `standin` runs on one machine: the
// embedded database in a fresh data directory, the demo facility, sinks
// allowed to deliver to loopback only. It returns once the console is
// ready.
func startConsole(bin, dir string) (*console, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := &console{url: "http://" + addr, log: filepath.Join(dir, "console.log"), exited: make(chan struct{})}
	f, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c.cmd = exec.Command(bin)
	c.cmd.Env = append(baseEnv(),
		"STANDIN_ADDR="+addr, "STANDIN_PUBLIC_URL="+c.url, "STANDIN_DATA_DIR="+filepath.Join(dir, "data"),
		"STANDIN_DEMO=true", "STANDIN_SINK_ALLOW=127.0.0.1")
	c.cmd.Stdout, c.cmd.Stderr = f, f
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("standin: %w", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	if err := c.waitReady(); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// baseEnv is this process's environment without the console's settings,
// which the console is given itself.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STANDIN_") && !strings.HasPrefix(kv, "MONGODB_URI=") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort returns a loopback port free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pid is the console's process id.
func (c *console) pid() int { return c.cmd.Process.Pid }

// failure describes the console's exit with the end of its log.
func (c *console) failure(what string) error {
	b, _ := os.ReadFile(c.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Errorf("standin %s (%v); the end of %s:\n%s", what, c.err, c.log, b)
}

// waitReady waits until the console answers GET /readyz with 200.
func (c *console) waitReady() error {
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if res, err := hc.Get(c.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.exited:
			return c.failure("exited before it was ready")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("standin was not ready within %s; see %s", readyTimeout, c.log)
}

// alive reports a console that exited on its own.
func (c *console) alive() error {
	select {
	case <-c.exited:
		return c.failure("exited during the benchmark")
	default:
		return nil
	}
}

// stop sends SIGTERM and waits for the exit, then SIGKILL after
// stopGrace; it reports a console that had exited on its own before.
func (c *console) stop() error {
	err := c.alive()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(stopGrace):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	return err
}
