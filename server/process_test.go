//go:build linux

package server_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// process is the server running in a child process (this test binary
// again, see runChild) over the embedded database in a data directory,
// with its output kept for the test.
type process struct {
	cmd    *exec.Cmd
	URL    string // once it serves
	exited chan struct{}
	err    error // how it exited, once exited is closed

	mu     sync.Mutex
	output bytes.Buffer // stderr, and stdout but for the "listening" line
}

// spawn starts the server process over dir. It returns once the process
// serves (URL set) or has exited; it is killed at cleanup.
func spawn(t *testing.T, dir string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(os.Args[0], "-test.run=^$"), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), childDataDir+"="+dir)
	p.cmd.Stderr = p
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
				continue
			}
			p.Write([]byte(sc.Text() + "\n"))
		}
	}()
	go func() {
		<-scanned
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("output of the server process %d:\n%s", p.cmd.Process.Pid, p.Output())
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.exited:
	case <-time.After(90 * time.Second):
		t.Fatal("the server process neither served nor exited within 90s")
	}
	return p
}

// Write keeps the process's output.
func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.Write(b)
}

// Output is what the process wrote so far.
func (p *process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// setLimit sets the soft limit of one resource of the process (RLIMIT_*),
// keeping the hard limit, as prlimit(1) does.
func (p *process) setLimit(t *testing.T, resource int, soft uint64) {
	t.Helper()
	var old syscall.Rlimit
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(p.cmd.Process.Pid), uintptr(resource),
		0, uintptr(unsafe.Pointer(&old)), 0, 0); errno != 0 {
		t.Fatalf("read the limit %d of process %d: %v", resource, p.cmd.Process.Pid, errno)
	}
	lim := syscall.Rlimit{Cur: min(soft, old.Max), Max: old.Max}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(p.cmd.Process.Pid), uintptr(resource),
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0); errno != 0 {
		t.Fatalf("set the limit %d of process %d to %d: %v", resource, p.cmd.Process.Pid, soft, errno)
	}
}

// unlimited is RLIM_INFINITY.
const unlimited = ^uint64(0)
