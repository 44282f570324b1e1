package mongostore_test

import (
	"context"
	"os"
	"testing"

	"standin/server/dbtest"
	"standin/server/mongostore"
)

// Opening a database whose indexes exist already must succeed: every start
// of the server after the first does it.
func TestReopen(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	ctx := context.Background()
	srv := dbtest.MustServer(t)
	if want := os.Getenv("STANDIN_TEST_MONGODB_URI") == ""; db.FerretDB() != want {
		t.Fatalf("FerretDB() = %v on %s, want %v", db.FerretDB(), srv.URI, want)
	}
	for range 2 {
		again, err := mongostore.Open(ctx, srv.URI, db.Name(), mongostore.Options{})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if err := again.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
