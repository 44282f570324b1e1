// Package benchproc runs the standin binary as the benchmark programs
// measure it: built once, each process logging to a file of its own,
// ready once it answers GET /readyz, stopped with SIGTERM and, after a
// grace, SIGKILL.
package benchproc

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
	ReadyTimeout = 2 * time.Minute  // a process from start to ready
	StopGrace    = 30 * time.Second // SIGTERM to exit, before SIGKILL
)

// Build builds the standin binary into dir and returns its path.
func Build(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, "standin")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", path, "standin").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build standin: %w\n%s", err, out)
	}
	return path, nil
}

// Proc is one child process, logging to a file.
type Proc struct {
	Name string
	// URL is a console's base URL; "" for other processes.
	URL string
	// Log is the file its stdout and stderr go to.
	Log    string
	cmd    *exec.Cmd
	exited chan struct{} // closed once it exited
	err    error         // how it exited, once exited is closed
}

// Start runs bin with args and env (KEY=VALUE, on top of BaseEnv), its
// stdout and stderr going to the file log.
func Start(name, bin, log string, env []string, args ...string) (*Proc, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	p := &Proc{Name: name, cmd: exec.Command(bin, args...), Log: log, exited: make(chan struct{})}
	p.cmd.Env = append(BaseEnv(), env...)
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

// BaseEnv is this process's environment without the console's settings,
// which each process is given itself.
func BaseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STANDIN_") && !strings.HasPrefix(kv, "MONGODB_URI=") {
			env = append(env, kv)
		}
	}
	return env
}

// FreePort returns a loopback port free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed once the process exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Failure describes p's exit with the end of its log.
func (p *Proc) Failure(what string) error {
	b, _ := os.ReadFile(p.Log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Errorf("%s %s (%v); the end of %s:\n%s", p.Name, what, p.err, p.Log, b)
}

// WaitLine waits until p's log has a line starting with prefix and
// returns what follows it on that line.
func (p *Proc) WaitLine(prefix string) (string, error) {
	deadline := time.Now().Add(ReadyTimeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.Log)
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest, nil
			}
		}
		select {
		case <-p.exited:
			return "", p.Failure("exited before it printed " + strconv.Quote(prefix))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%s did not print %q within %s; see %s", p.Name, prefix, ReadyTimeout, p.Log)
}

// WaitReady waits until the console at p.URL answers GET /readyz with
// 200.
func (p *Proc) WaitReady() error {
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(ReadyTimeout)
	for time.Now().Before(deadline) {
		if res, err := hc.Get(p.URL + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return p.Failure("exited before it was ready")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready within %s; see %s", p.Name, ReadyTimeout, p.Log)
}

// Alive reports a process that exited on its own.
func (p *Proc) Alive() error {
	select {
	case <-p.exited:
		return p.Failure("exited during the benchmark")
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits for the exit, then SIGKILL after
// StopGrace; it reports a process that had exited on its own before.
func (p *Proc) Stop() error {
	err := p.Alive()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(StopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	return err
}
