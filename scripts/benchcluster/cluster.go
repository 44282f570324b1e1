package main

import (
	"context"
	"errors"
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
	readyTimeout = 2 * time.Minute  // a process from start to ready
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

// proc is one child process, logging to a file.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	url    string        // a node's base URL; "" for the database
	exited chan struct{} // closed once it exited
	err    error         // how it exited, once exited is closed
}

// startProc runs bin with args and env (KEY=VALUE, on top of this
// process's environment without the console's settings), its stdout and
// stderr going to the file log.
func startProc(name, bin, log string, env []string, args ...string) (*proc, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	p := &proc{name: name, cmd: exec.Command(bin, args...), log: log, exited: make(chan struct{})}
	p.cmd.Env = append(baseEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// baseEnv is this process's environment without the console's settings,
// which each process is given itself.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STANDIN_") && !strings.HasPrefix(kv, "MONGODB_URI=") {
			env = append(env, kv)
		}
	}
	return env
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// failure describes p's exit with the end of its log.
func (p *proc) failure(what string) error {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Errorf("%s %s (%v); the end of %s:\n%s", p.name, what, p.err, p.log, b)
}

// waitLine waits until p's log has a line starting with prefix and
// returns what follows it on that line.
func (p *proc) waitLine(prefix string) (string, error) {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.log)
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest, nil
			}
		}
		select {
		case <-p.exited:
			return "", p.failure("exited before it printed " + strconv.Quote(prefix))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%s did not print %q within %s; see %s", p.name, prefix, readyTimeout, p.log)
}

// waitReady waits until the node answers GET /readyz with 200.
func (p *proc) waitReady() error {
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if res, err := hc.Get(p.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return p.failure("exited before it was ready")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready within %s; see %s", p.name, readyTimeout, p.log)
}

// stop sends SIGTERM and waits for the exit, then SIGKILL after
// stopGrace.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// cluster is the embedded database alone and nodes on it, as
// scripts/cluster runs them, without the balancer: the benchmark talks to
// each node directly.
type cluster struct {
	dir   string
	dbURI string
	db    *proc
	nodes []*proc
}

// startCluster starts, in dir, the database and n nodes sharing one
// audit key; the first node seeds the demo facility, the others start
// once it is ready. It returns when every node is ready.
func startCluster(bin, dir string, n int) (*cluster, error) {
	c := &cluster{dir: dir}
	key := filepath.Join(dir, "audit.key")
	out, err := exec.Command(bin, "audit-key", "-out", key).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("audit-key: %w\n%s", err, out)
	}
	if c.db, err = startProc("database", bin, filepath.Join(dir, "database.log"), nil,
		"database", "-addr", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "database")); err != nil {
		return nil, err
	}
	if c.dbURI, err = c.db.waitLine("database ready: MONGODB_URI="); err != nil {
		c.stop()
		return nil, err
	}
	if err := c.startNodes(bin, key, n); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// startNodes starts the first node and waits until it is ready (it
// seeds the demo facility), then the others together.
func (c *cluster) startNodes(bin, key string, n int) error {
	for i := range n {
		if err := c.startNode(bin, key, i); err != nil {
			return err
		}
		if i == 0 {
			if err := c.nodes[0].waitReady(); err != nil {
				return err
			}
		}
	}
	for _, p := range c.nodes[1:] {
		if err := p.waitReady(); err != nil {
			return err
		}
	}
	return nil
}

// startNode starts node i (from 0) on a free loopback port.
func (c *cluster) startNode(bin, key string, i int) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	name := "node" + strconv.Itoa(i+1)
	env := []string{
		"MONGODB_URI=" + c.dbURI, "STANDIN_AUDIT_KEY_FILE=" + key,
		"STANDIN_ADDR=127.0.0.1:" + strconv.Itoa(port), "STANDIN_DATA_DIR=" + filepath.Join(c.dir, name),
		"STANDIN_PUBLIC_URL=" + url, "STANDIN_DEMO=" + strconv.FormatBool(i == 0),
	}
	p, err := startProc(name, bin, filepath.Join(c.dir, name+".log"), env)
	if err != nil {
		return err
	}
	p.url = url
	c.nodes = append(c.nodes, p)
	return nil
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

// stop stops the nodes together, then the database; it reports a
// process that had exited on its own before.
func (c *cluster) stop() error {
	var errs []error
	done := make(chan struct{}, len(c.nodes))
	for _, p := range c.nodes {
		select {
		case <-p.exited:
			errs = append(errs, p.failure("exited during the benchmark"))
		default:
		}
		go func() { p.stop(); done <- struct{}{} }()
	}
	for range c.nodes {
		<-done
	}
	if c.db != nil {
		c.db.stop()
	}
	return errors.Join(errs...)
}

// pids are the processes whose CPU is measured: the nodes, then the
// database.
func (c *cluster) pids() []int {
	var out []int
	for _, p := range c.nodes {
		out = append(out, p.pid())
	}
	return append(out, c.db.pid())
}
