package embeddeddb_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/embeddeddb"
)

var quiet = slog.New(slog.DiscardHandler)

func mustStart(t *testing.T, dir string) *embeddeddb.DB {
	t.Helper()
	db, err := embeddeddb.Start(context.Background(), dir, "", quiet)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// mustInsert stores a document through the database's address.
func mustInsert(t *testing.T, uri string, doc bson.M) {
	t.Helper()
	ctx := context.Background()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(ctx)
	if _, err := mc.Database("lock").Collection("docs").InsertOne(ctx, doc); err != nil {
		t.Fatalf("insert through %s: %v", uri, err)
	}
}

// names lists dir's files.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// A second database on a directory in use, in the same process, is refused
// before it opens anything, with an error naming the holder and the address
// to use instead; the first carries on, and once it closes the directory is
// free again.
func TestLockedInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := mustStart(t, dir)
	if err := first.RecordConsole("http://127.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, first.URI(), bson.M{"n": 1})
	before := names(t, dir)

	second, err := embeddeddb.Start(context.Background(), dir, "", quiet)
	if err == nil {
		second.Close()
		t.Fatal("a second database started on a directory in use")
	}
	locked, ok := errors.AsType[*embeddeddb.LockedError](err)
	if !ok {
		t.Fatalf("Start = %v, want a *LockedError", err)
	}
	h := locked.Holder
	if h.PID != os.Getpid() || h.Database != first.URI() || h.Console != "http://127.0.0.1:8080" || h.Host == "" || h.Since.IsZero() {
		t.Fatalf("holder %+v, want this process, %s and its console", h, first.URI())
	}
	for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid()), "console http://127.0.0.1:8080", "MONGODB_URI=" + first.URI()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if after := names(t, dir); !slices.Equal(before, after) {
		t.Fatalf("the refused start changed the directory: %v, then %v", before, after)
	}
	mustInsert(t, first.URI(), bson.M{"n": 2})

	first.Close()
	if b, err := os.ReadFile(filepath.Join(dir, embeddeddb.LockFile)); err != nil || len(b) != 0 {
		t.Fatalf("lock file after Close: %q, %v; want it empty", b, err)
	}
	again := mustStart(t, dir)
	mustInsert(t, again.URI(), bson.M{"n": 3})
}

// The lock file says who holds the directory.
func TestLockFileNamesHolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := mustStart(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, embeddeddb.LockFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pid: " + strconv.Itoa(os.Getpid()) + "\n", "database: " + db.URI() + "\n", "host: "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("lock file %q lacks %q", b, want)
		}
	}
}

// An error names what it knows: a holder that has not written its address
// yet is still named, with a hint where to find the address.
func TestLockedErrorMessage(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name   string
		holder embeddeddb.Holder
		want   []string
	}{
		{"Complete", embeddeddb.Holder{PID: 7, Host: host, Database: "mongodb://127.0.0.1:4000/", Console: "http://localhost:8080"},
			[]string{"pid 7", "console http://localhost:8080", "MONGODB_URI=mongodb://127.0.0.1:4000/"}},
		{"NoAddressYet", embeddeddb.Holder{PID: 7, Host: host},
			[]string{"pid 7", "MONGODB_URI set to the database address it logged"}},
		{"OtherHost", embeddeddb.Holder{PID: 7, Host: "elsewhere.example", Database: "mongodb://127.0.0.1:4000/"},
			[]string{"on host elsewhere.example", "run this one on elsewhere.example beside it with MONGODB_URI=mongodb://127.0.0.1:4000/"}},
		{"Unknown", embeddeddb.Holder{}, []string{"in use by another Standin server: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := (&embeddeddb.LockedError{Dir: "/srv/data", Holder: tc.holder}).Error()
			for _, w := range append(tc.want, "/srv/data", "Stop it first") {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
		})
	}
}
