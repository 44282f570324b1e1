package cpuprofile_test

import (
	"os"
	"path/filepath"
	"testing"

	"standin/scripts/internal/cpuprofile"
)

func TestStartWritesAProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pb")
	stop, err := cpuprofile.Start(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("profile %s: %v, %v", path, st, err)
	}
}

func TestStartWithoutPathProfilesNothing(t *testing.T) {
	stop, err := cpuprofile.Start("")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	// A second profile can start: the first never did.
	path := filepath.Join(t.TempDir(), "cpu.pb")
	stop, err = cpuprofile.Start(path)
	if err != nil {
		t.Fatalf("a profile after an empty path: %v", err)
	}
	stop()
}

func TestStartRefusesAPathItCannotCreate(t *testing.T) {
	if _, err := cpuprofile.Start(filepath.Join(t.TempDir(), "missing", "cpu.pb")); err == nil {
		t.Fatal("no error for a file in a missing directory")
	}
}
