package main

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"

	"standin/scripts/internal/benchproc"
)

// proc is one child process of the cluster.
type proc = benchproc.Proc

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
	if c.db, err = benchproc.Start("database", bin, filepath.Join(dir, "database.log"), nil,
		"database", "-addr", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "database")); err != nil {
		return nil, err
	}
	if c.dbURI, err = c.db.WaitLine("database ready: MONGODB_URI="); err != nil {
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
			if err := c.nodes[0].WaitReady(); err != nil {
				return err
			}
		}
	}
	for _, p := range c.nodes[1:] {
		if err := p.WaitReady(); err != nil {
			return err
		}
	}
	return nil
}

// startNode starts node i (from 0) on a free loopback port.
func (c *cluster) startNode(bin, key string, i int) error {
	port, err := benchproc.FreePort()
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
	p, err := benchproc.Start(name, bin, filepath.Join(c.dir, name+".log"), env)
	if err != nil {
		return err
	}
	p.URL = url
	c.nodes = append(c.nodes, p)
	return nil
}

// stop stops the nodes together, then the database; it reports a
// process that had exited on its own before.
func (c *cluster) stop() error {
	errs := make(chan error, len(c.nodes))
	done := make(chan struct{}, len(c.nodes))
	for _, p := range c.nodes {
		go func() {
			if err := p.Stop(); err != nil {
				errs <- err
			}
			done <- struct{}{}
		}()
	}
	for range c.nodes {
		<-done
	}
	if c.db != nil {
		_ = c.db.Stop()
	}
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// pids are the processes whose CPU is measured: the nodes, then the
// database.
func (c *cluster) pids() []int {
	var out []int
	for _, p := range c.nodes {
		out = append(out, p.PID())
	}
	return append(out, c.db.PID())
}
