//go:build unix

package realtime

import (
	"math"
	"syscall"
)

// fileLimit returns the process's file descriptor limit (the soft
// RLIMIT_NOFILE, which Go raises to the hard limit at start-up), and false
// when there is none to speak of.
func fileLimit() (int, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	if lim.Cur == ^uint64(0) || lim.Cur > uint64(math.MaxInt) {
		return 0, false
	}
	return int(lim.Cur), true
}
