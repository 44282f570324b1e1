// Package cpuprofile writes a CPU profile of part of a benchmark
// program's run, for its -cpuprofile flag.
package cpuprofile

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Start starts profiling the CPU into the file at path and returns what
// stops it and closes the file. An empty path profiles nothing: stop then
// does nothing.
func Start(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
