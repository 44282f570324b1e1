//go:build unix

package realtime_test

import (
	"syscall"
	"testing"

	"standin/realtime"
)

// TestSocketLimitFollowsFileLimit: with no MaxSockets, or one above what
// the file descriptor limit allows, the hub's bound is that limit less the
// reserve.
func TestSocketLimitFollowsFileLimit(t *testing.T) {
	t.Parallel()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := realtime.SocketsWithin(int(lim.Cur), 0)
	for _, max := range []int{0, 1 << 30} {
		e := newEnv(t, realtime.Config{MaxSockets: max})
		if got := e.hub.SocketLimit(); got != want {
			t.Errorf("SocketLimit with MaxSockets %d and %d file descriptors = %d, want %d", max, lim.Cur, got, want)
		}
	}
	e := newEnv(t, realtime.Config{ReservedFiles: int(lim.Cur) - 10})
	if got := e.hub.SocketLimit(); got != 10 {
		t.Errorf("SocketLimit keeping all but 10 file descriptors = %d, want 10", got)
	}
}
