//go:build linux

package server_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"standin/server"
	"standin/server/embeddeddb"
)

// fileState is what a file looked like: its inode (the same file, not a
// new one of that name), size and contents.
type fileState struct {
	inode uint64
	size  int64
	sum   [sha256.Size]byte
}

// snapshot records every file of dir but SQLite's shared-memory index
// (-shm), which readers update in place.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := make(map[string]fileState)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "-shm") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(path, dir)] = fileState{inode: info.Sys().(*syscall.Stat_t).Ino, size: info.Size(), sum: sha256.Sum256(b)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSecondServerOnDataDir starts a second server, in another process, on
// the data directory of a running one: it refuses to start, naming the
// first (its pid and console) and the MONGODB_URI that joins it instead;
// the first server's files are untouched and it keeps serving; and a
// server started as the message says serves the same data.
func TestSecondServerOnDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := mustStart(t, dir)
	ada := newClient(t, first.URL)
	ada.mustLogin("ada@example.org")
	ids := mustDemoIDs(t, ada)
	before := snapshot(t, dir)

	second := spawn(t, dir)
	if second.URL != "" {
		t.Fatalf("a second server serves on the data directory at %s", second.URL)
	}
	out := second.Output()
	var exit *exec.ExitError
	if !errors.As(second.err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("the second server ended with %v, want exit status 1", second.err)
	}
	for _, want := range []string{"in use by another Standin server", "pid " + strconv.Itoa(os.Getpid()), "console " + first.URL} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`MONGODB_URI=(mongodb://\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the refusal suggests no MONGODB_URI:\n%s", out)
	}
	uri := m[1]

	after := snapshot(t, dir)
	for name, was := range before {
		if now, ok := after[name]; !ok || now != was {
			t.Errorf("the second server changed %s", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("the second server created %s", name)
		}
	}

	// The first server serves on.
	if r := ada.do(http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz of the first server: %d %s", r.Status, r.Body)
	}
	if r := ada.post("/api/v1/bookings", bookingBody(ids.confocal, ids.neuro, nextMonday(), 1)); r.Status != http.StatusCreated {
		t.Fatalf("booking on the first server: %d %s", r.Status, r.Body)
	}

	// Joining as suggested: the same data.
	joined := mustRun(t, server.Config{MongoURI: uri, Logger: silent})
	other := newClient(t, joined.URL)
	other.mustLogin("ada@example.org")
	if got := items(t, other.do(http.MethodGet, "/api/v1/bookings", nil)); len(got) != 1 {
		t.Fatalf("the joined server sees %d of Ada's bookings, want 1", len(got))
	}
}

// TestSecondServerInProcess: the lock is held by an open file, so a second
// server in the same process is refused as well.
func TestSecondServerInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := mustStart(t, dir)
	err := server.Run(context.Background(), server.Config{DataDir: dir, Addr: "127.0.0.1:0", Logger: silent})
	locked, ok := errors.AsType[*embeddeddb.LockedError](err)
	if !ok {
		t.Fatalf("a second server in this process: %v, want a *LockedError", err)
	}
	if locked.Holder.PID != os.Getpid() || locked.Holder.Console != first.URL {
		t.Fatalf("holder %+v, want this process and %s", locked.Holder, first.URL)
	}
	newClient(t, first.URL).mustLogin("ben@example.org")
}
