// Package clustertest starts a Standin cluster for tests in other
// packages: the standin binary, built once per test binary, runs the
// embedded database alone, several console nodes on it that share one
// audit key, and the balancer in front of them, each a real process. Tests
// reach the cluster through the balancer's URL or a node's own, kill a node
// with SIGKILL and start it again.
//
// Every process logs to a file in the cluster's temporary directory; what
// they wrote is printed when the test fails.
package clustertest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeouts, generous for a loaded machine.
const (
	readyTimeout = 2 * time.Minute  // a process from start to ready
	stopGrace    = 30 * time.Second // SIGTERM to exit, before SIGKILL
)

// Options shape a cluster. Zero values are the defaults.
type Options struct {
	// Nodes is how many consoles run (default 3).
	Nodes int
	// Env is added to every node's environment, as KEY=VALUE.
	Env []string
	// NodeEnv, when set, returns what is added to node i's environment
	// after Env.
	NodeEnv func(i int) []string
}

// Cluster is a running database, its nodes and the balancer.
type Cluster struct {
	t     testing.TB
	opts  Options
	bin   string
	dir   string
	key   string
	dbURI string
	url   string
	bal   *process
	nodes []*Node

	mu    sync.Mutex
	procs []*process // every process started, in order, for the output
}

// Node is one console of the cluster, on a port of its own that it keeps
// across restarts, with a data directory of its own for the audit anchor.
type Node struct {
	c    *Cluster
	i    int
	addr string
	dir  string
	proc *process // the running process; nil when killed
}

// Start builds the standin binary if this test binary has not yet, then
// starts the database, the balancer and opts.Nodes nodes (the first seeds
// the demo facility; the others start once it is ready). It returns when
// every node answers GET /readyz with 200 and the balancer sends it
// requests. It
// stops everything at the test's cleanup: SIGTERM, then SIGKILL.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, opts: opts, bin: bin, dir: t.TempDir()}
	c.key = filepath.Join(c.dir, "audit.key")
	t.Cleanup(c.cleanup)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// StartDatabase runs only the database, as a process of its own (`standin
// database`), and returns its MONGODB_URI; it is stopped at the test's
// cleanup. Tests of several servers in one test binary use it so that the
// database runs at its own speed, not instrumented with the test binary
// (the race detector slows the embedded database many times over).
func StartDatabase(t testing.TB) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(c.cleanup)
	p, err := c.run("database", nil, "database", "-addr", "127.0.0.1:0", "-data-dir", filepath.Join(c.dir, "database"))
	if err != nil {
		t.Fatal(err)
	}
	uri, err := p.waitLine("database ready: MONGODB_URI=", readyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return uri
}

// start brings the cluster up, in order.
func (c *Cluster) start() error {
	p, err := c.run("audit-key", nil, "audit-key", "-out", c.key)
	if err != nil {
		return err
	}
	if _, err := p.waitLine(c.key+": created", readyTimeout); err != nil {
		return err
	}
	if p, err = c.run("database", nil, "database", "-addr", "127.0.0.1:0", "-data-dir", filepath.Join(c.dir, "database")); err != nil {
		return err
	}
	if c.dbURI, err = p.waitLine("database ready: MONGODB_URI=", readyTimeout); err != nil {
		return err
	}
	ports, err := freePorts(c.opts.Nodes)
	if err != nil {
		return err
	}
	args := []string{"balance", "-addr", "127.0.0.1:0"}
	for i, port := range ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		c.nodes = append(c.nodes, &Node{c: c, i: i, addr: addr, dir: filepath.Join(c.dir, "node"+strconv.Itoa(i))})
		args = append(args, "-backend", "http://"+addr)
	}
	if c.bal, err = c.run("balancer", nil, args...); err != nil {
		return err
	}
	if c.url, err = c.bal.waitLine("balancer ready: URL=", readyTimeout); err != nil {
		return err
	}
	return c.startNodes()
}

// startNodes starts the first node, which seeds the demo, and then the
// others together, and waits until the balancer serves.
func (c *Cluster) startNodes() error {
	if err := c.nodes[0].start(); err != nil {
		return err
	}
	if err := c.nodes[0].waitReady(); err != nil {
		return err
	}
	for _, n := range c.nodes[1:] {
		if err := n.start(); err != nil {
			return err
		}
	}
	for _, n := range c.nodes[1:] {
		if err := n.waitReady(); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := n.waitBalanced(0); err != nil {
			return err
		}
	}
	return nil
}

// run starts the binary with args and keeps the process for the output.
func (c *Cluster) run(name string, env []string, args ...string) (*process, error) {
	p, err := startProcess(name, c.bin, args, env, filepath.Join(c.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

// cleanup stops the balancer, the nodes, then the database, and prints
// what every process wrote when the test failed.
func (c *Cluster) cleanup() {
	c.mu.Lock()
	procs := append([]*process(nil), c.procs...)
	c.mu.Unlock()
	var stopping sync.WaitGroup
	for _, p := range procs {
		if p.name == "database" {
			continue
		}
		stopping.Go(func() {
			if err := p.stop(stopGrace); err != nil {
				c.t.Error(err)
			}
		})
	}
	stopping.Wait()
	for _, p := range procs {
		if p.name == "database" {
			if err := p.stop(stopGrace); err != nil {
				c.t.Error(err)
			}
		}
	}
	if c.t.Failed() {
		for _, p := range procs {
			c.t.Logf("--- output of %s (pid %d, in %s) ---\n%s", p.name, p.cmd.Process.Pid, c.dir, p.Output())
		}
	}
}

// URL is the balancer's base URL, the address people open.
func (c *Cluster) URL() string { return c.url }

// DatabaseURI is the MONGODB_URI the nodes share.
func (c *Cluster) DatabaseURI() string { return c.dbURI }

// AuditKeyFile is the key every node signs the audit log's checkpoints
// with.
func (c *Cluster) AuditKeyFile() string { return c.key }

// Node returns node i, counted from 0.
func (c *Cluster) Node(i int) *Node {
	c.t.Helper()
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("clustertest: no node %d in a cluster of %d", i, len(c.nodes))
	}
	return c.nodes[i]
}

// Kill kills node i with SIGKILL and waits until it is gone.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	n := c.Node(i)
	if n.proc == nil {
		c.t.Fatalf("clustertest: node %d is not running", i)
	}
	down := n.timesDown()
	n.proc.kill()
	n.proc = nil
	// Until the balancer has seen the node down, a restart it never
	// noticed would never be taken in again (Start waits for that).
	if err := n.waitDown(down); err != nil {
		c.t.Fatal(err)
	}
}

// Start starts node i again, on its port and data directory, and waits
// until it is ready and the balancer has taken it back.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	n := c.Node(i)
	if n.proc != nil {
		c.t.Fatalf("clustertest: node %d is running", i)
	}
	before := n.timesUp()
	if err := n.start(); err != nil {
		c.t.Fatal(err)
	}
	if err := n.waitReady(); err != nil {
		c.t.Fatal(err)
	}
	if err := n.waitBalanced(before); err != nil {
		c.t.Fatal(err)
	}
}

// URL is the node's own base URL, beside the balancer.
func (n *Node) URL() string { return "http://" + n.addr }

// Output is what the node's running process wrote so far; empty when it
// is not running.
func (n *Node) Output() string {
	if n.proc == nil {
		return ""
	}
	return n.proc.Output()
}

// start runs the node's process.
func (n *Node) start() error {
	env := []string{
		"MONGODB_URI=" + n.c.dbURI,
		"STANDIN_AUDIT_KEY_FILE=" + n.c.key,
		"STANDIN_ADDR=" + n.addr,
		"STANDIN_DATA_DIR=" + n.dir,
		"STANDIN_PUBLIC_URL=" + n.c.url,
		// The balancer runs on loopback and names the client.
		"STANDIN_TRUSTED_PROXIES=127.0.0.1",
	}
	if n.i == 0 {
		env = append(env, "STANDIN_DEMO=true")
	}
	env = append(env, n.c.opts.Env...)
	if n.c.opts.NodeEnv != nil {
		env = append(env, n.c.opts.NodeEnv(n.i)...)
	}
	p, err := n.c.run("node"+strconv.Itoa(n.i), env)
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// waitReady waits until the node answers GET /readyz with 200.
func (n *Node) waitReady() error {
	if err := waitReady(n.URL(), n.proc.exited); err != nil {
		return fmt.Errorf("node %d: %w", n.i, err)
	}
	return nil
}

// timesUp counts the times the balancer logged that it took the node in.
func (n *Node) timesUp() int {
	return strings.Count(n.c.bal.Output(), `msg="backend up" backend=`+n.URL()+"\n")
}

// timesDown counts the times the balancer took the node out.
func (n *Node) timesDown() int {
	return strings.Count(n.c.bal.Output(), `msg="backend down" backend=`+n.URL()+" ")
}

// waitDown waits until the balancer has taken the node out more than
// before times.
func (n *Node) waitDown(before int) error {
	deadline := time.After(readyTimeout)
	for n.timesDown() <= before {
		select {
		case <-n.c.bal.exited:
			return fmt.Errorf("the balancer exited (%v)", n.c.bal.err)
		case <-deadline:
			return fmt.Errorf("the balancer did not take node %d out within %s", n.i, readyTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// waitBalanced waits until the balancer has taken the node in more than
// before times: until then it sends the node nothing.
func (n *Node) waitBalanced(before int) error {
	deadline := time.After(readyTimeout)
	for n.timesUp() <= before {
		select {
		case <-n.c.bal.exited:
			return fmt.Errorf("the balancer exited (%v)", n.c.bal.err)
		case <-deadline:
			return fmt.Errorf("the balancer did not take node %d in within %s", n.i, readyTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// waitReady polls base's /readyz until it answers 200, exited is closed
// or readyTimeout passes.
func waitReady(base string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		if res, err := client.Do(req); err != nil {
			last = err.Error()
		} else {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = res.Status
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready (last: %s)", last)
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s (last: %s)", readyTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts finds n ports free on loopback, holding all of them at once so
// that they differ.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
