package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// BinaryEnv names a standin binary to run instead of building one.
const BinaryEnv = "STANDIN_CLUSTER_BINARY"

// build is the standin binary this test binary built, once: every cluster
// of a package's tests runs the same one.
var build struct {
	once sync.Once
	dir  string // the temporary directory it was built in, removed by Main
	path string
	err  error
}

// binary returns the path of the standin binary, building it on first use
// (go build into a temporary directory), or the one BinaryEnv names.
func binary() (string, error) {
	build.once.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			build.path = p
			return
		}
		dir, err := os.MkdirTemp("", "standin-clustertest-")
		if err != nil {
			build.err = fmt.Errorf("building standin: %w", err)
			return
		}
		build.dir = dir
		path := filepath.Join(dir, "standin")
		out, err := exec.Command("go", "build", "-o", path, "standin").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build standin: %w\n%s", err, out)
			return
		}
		build.path = path
	})
	return build.path, build.err
}

// Main runs the tests of a package that starts clusters and removes the
// standin binary they built. Call it from TestMain:
//
//	func TestMain(m *testing.M) { clustertest.Main(m) }
//
// Without it the binary stays in the system's temporary directory.
func Main(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

// RemoveBinary removes the standin binary this test binary built, if
// any: for a TestMain that runs its tests otherwise than through Main.
func RemoveBinary() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}
