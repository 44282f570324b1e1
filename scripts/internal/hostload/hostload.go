// Package hostload describes the machine a benchmark runs on and how busy
// it is: its load average, and the CPU that other processes take while a
// measurement runs, since on a shared machine they skew every figure.
package hostload

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Loadavg returns the first three fields of /proc/loadavg, or "unknown".
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Machine describes the Go runtime and the CPUs.
func Machine() string {
	return fmt.Sprintf("%s %s/%s, %d CPUs, GOMAXPROCS %d", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// CPUTime returns the CPU time this process has used, user and system.
func CPUTime() time.Duration { return rusage(syscall.RUSAGE_SELF) }

// rusage returns the CPU time, user and system, used by who: this process
// or its ended children. It cannot fail for these arguments.
func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// userHZ is the unit of /proc/stat, fixed by the kernel's ABI.
const userHZ = 100

// machineBusy returns the CPU time the whole machine has spent busy,
// including time stolen by the hypervisor, from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("reading machine CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("reading machine CPU time: unexpected line %q", line)
	}
	var ticks int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading machine CPU time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// ProcessCPU returns the CPU time, user and system, that the running
// process pid has used, from /proc/pid/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces; fields count
	// from after it.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("reading the CPU time of process %d: unexpected /proc/%d/stat", pid, pid)
	}
	var ticks int64
	for _, v := range f[11:13] { // utime, stime
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// OthersCPU runs fn and returns the cores that other processes (and the
// hypervisor) took meanwhile: the machine's busy time less that of this
// process and of the children it waited for. A child still running when
// fn returns counts as another process.
func OthersCPU(fn func() error) (float64, error) {
	m0, err := machineBusy()
	if err != nil {
		return 0, err
	}
	own0 := rusage(syscall.RUSAGE_SELF) + rusage(syscall.RUSAGE_CHILDREN)
	start := time.Now()
	if err := fn(); err != nil {
		return 0, err
	}
	m1, err := machineBusy()
	if err != nil {
		return 0, err
	}
	own := rusage(syscall.RUSAGE_SELF) + rusage(syscall.RUSAGE_CHILDREN) - own0
	return max(0, (m1-m0-own).Seconds()/time.Since(start).Seconds()), nil
}

// Descriptors returns the soft limit of open files of this process.
func Descriptors() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading the open files limit: %w", err)
	}
	return lim.Cur, nil
}

// Settle lets the goroutines of a finished run exit and collects their
// garbage, so that one run does not tax the next.
func Settle() {
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	runtime.GC()
}

// RSSMiB returns this process's resident set size in MiB (VmRSS of
// /proc/self/status), or -1 when it cannot be read.
func RSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					return kb / 1024
				}
			}
		}
	}
	return -1
}
