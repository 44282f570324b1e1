package authz

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server/dbtest"
	"standin/server/standin"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// directory is an in-memory Directory whose users tests can change.
type directory struct {
	mu    sync.Mutex
	users []*standin.User
	err   error
}

func newDirectory(users ...*standin.User) *directory { return &directory{users: users} }

func (d *directory) AllUsers(context.Context) ([]*standin.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	return slices.Clone(d.users), nil
}

// user returns an active user with a global role and memberships given as
// projectID, role pairs.
func user(id string, role standin.Role, memberships ...string) *standin.User {
	u := &standin.User{ID: id, Name: id, Email: id + "@example.org", Role: role, Status: standin.StatusActive}
	for i := 0; i+1 < len(memberships); i += 2 {
		u.Memberships = append(u.Memberships, standin.Membership{
			ProjectID: memberships[i], Role: standin.ProjectRole(memberships[i+1]),
		})
	}
	return u
}

var dbSeq atomic.Int64

// mustDatabase connects to the shared test server and returns a fresh
// database, dropped when the test ends.
func mustDatabase(t *testing.T) *mongo.Database {
	t.Helper()
	srv := dbtest.MustServer(t)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	db := client.Database(fmt.Sprintf("authz_%d_%d", os.Getpid(), dbSeq.Add(1)))
	t.Cleanup(func() {
		ctx := context.Background()
		if err := db.Drop(ctx); err != nil {
			t.Errorf("drop database: %v", err)
		}
		if err := client.Disconnect(ctx); err != nil {
			t.Errorf("disconnect: %v", err)
		}
	})
	return db
}

// mustNew builds an Authorizer or fails the test.
func mustNew(t testing.TB, cfg Config) *Authorizer {
	t.Helper()
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}
