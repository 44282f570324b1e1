package clustertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one child process of the cluster, with its output kept.
type process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once it exited and its output is read
	err    error         // how it exited, once exited is closed
	lines  chan string   // the first lines it prints on stdout

	mu     sync.Mutex
	output bytes.Buffer // stdout and stderr, interleaved
}

// startProcess runs bin with args and env (KEY=VALUE, on top of a
// filtered copy of this process's environment), logging to a file in dir
// as well as keeping its output.
func startProcess(name, bin string, args, env []string, logFile string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), exited: make(chan struct{}), lines: make(chan string, 16)}
	p.cmd.Env = append(baseEnv(), env...)
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stderr := &tee{p: p, file: log}
	p.cmd.Stderr = stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = stderr.Write([]byte(sc.Text() + "\n"))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		<-scanned
		p.err = p.cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	return p, nil
}

// baseEnv is this process's environment without the console's settings,
// which the cluster gives each process itself.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "STANDIN_") || strings.HasPrefix(kv, "MONGODB_URI=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// tee keeps what a process writes and copies it to its log file.
type tee struct {
	p    *process
	file *os.File
}

func (w *tee) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	_, _ = w.file.Write(b)
	return w.p.output.Write(b)
}

// Output is what the process wrote so far.
func (p *process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// waitLine returns what follows prefix on the first stdout line that has
// it, or an error when the process exits first or timeout passes.
func (p *process) waitLine(prefix string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case line := <-p.lines:
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return strings.TrimSpace(rest), nil
			}
		case <-p.exited:
			// What it printed before it exited counts.
			for {
				select {
				case line := <-p.lines:
					if rest, ok := strings.CutPrefix(line, prefix); ok {
						return strings.TrimSpace(rest), nil
					}
					continue
				default:
				}
				return "", fmt.Errorf("%s exited (%v) before printing %q", p.name, p.err, prefix)
			}
		case <-deadline:
			return "", fmt.Errorf("%s printed no %q within %s", p.name, prefix, timeout)
		}
	}
}

// kill stops the process at once (SIGKILL) and waits until it is gone.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop asks the process to shut down (SIGTERM) and kills it when it has
// not within grace. It returns an error when it had to kill it or the
// process failed.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil // killed or gone already
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.name, grace)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}
