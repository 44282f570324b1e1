//go:build !unix

package realtime

// fileLimit reports no file descriptor limit: other systems do not count
// sockets against one the hub can read.
func fileLimit() (int, bool) { return 0, false }
