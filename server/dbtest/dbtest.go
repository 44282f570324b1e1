// Package dbtest gives tests a real database: one embedded FerretDB per test
// binary (or the MongoDB named by STANDIN_TEST_MONGODB_URI), and a fresh,
// uniquely named database per test, dropped when the test ends.
package dbtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/embeddeddb"
	"standin/server/mongostore"
)

// Server is a database server shared by one test binary.
type Server struct {
	URI  string
	stop func()
	seq  atomic.Int64
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Main runs a test binary's tests and then stops the shared server. Call it
// from TestMain: os.Exit(dbtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil && shared.stop != nil {
		shared.stop()
	}
	return code
}

func server() (*Server, error) {
	sharedOnce.Do(func() {
		if uri := os.Getenv("STANDIN_TEST_MONGODB_URI"); uri != "" {
			shared = &Server{URI: uri}
			return
		}
		dir, err := os.MkdirTemp("", "standin-dbtest")
		if err != nil {
			sharedErr = err
			return
		}
		edb, err := embeddeddb.Start(context.Background(), dir, "", slog.New(slog.DiscardHandler))
		if err != nil {
			sharedErr = err
			return
		}
		shared = &Server{URI: edb.URI(), stop: func() {
			edb.Close()
			_ = os.RemoveAll(dir)
		}}
	})
	return shared, sharedErr
}

// MustServer returns the shared database server, starting it on first use.
func MustServer(t testing.TB) *Server {
	t.Helper()
	s, err := server()
	if err != nil {
		t.Fatalf("start test database: %v", err)
	}
	return s
}

// MustOpen opens a fresh database for one test and drops it at cleanup.
func MustOpen(t testing.TB) *mongostore.DB {
	t.Helper()
	s := MustServer(t)
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), s.seq.Add(1))
	ctx := context.Background()
	db, err := mongostore.Open(ctx, s.URI, name, mongostore.Options{})
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Drop(ctx); err != nil {
			t.Errorf("drop test database: %v", err)
		}
		if err := db.Close(ctx); err != nil {
			t.Errorf("close test database: %v", err)
		}
	})
	return db
}

// MustConnect opens another connection to the database of db, as a
// second server sharing it would, and closes it at cleanup (the database
// is dropped by whoever opened it).
func MustConnect(t testing.TB, db *mongostore.DB, o mongostore.Options) *mongostore.DB {
	t.Helper()
	ctx := context.Background()
	other, err := mongostore.Open(ctx, MustServer(t).URI, db.Name(), o)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(func() {
		if err := other.Close(ctx); err != nil {
			t.Errorf("close test database: %v", err)
		}
	})
	return other
}

// MustDriver returns the driver's handle on the database of db, through a
// client of its own closed at cleanup, for tests that change documents
// behind the stores' backs (damage, delete or forge them).
func MustDriver(t testing.TB, db *mongostore.DB) *mongo.Database {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(MustServer(t).URI))
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(db.Name())
}
