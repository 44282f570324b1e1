package mongostore_test

import (
	"context"
	"os"
	"testing"

	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/standin"
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

// Ready writes its probe on a database that takes writes, and says the
// database is unavailable once it cannot be reached.
func TestReady(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	ctx := context.Background()
	for range 3 {
		if err := db.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
	}
	other, err := mongostore.Open(ctx, dbtest.MustServer(t).URI, db.Name(), mongostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Ready(ctx); standin.ErrorCode(err) != standin.EUnavailable {
		t.Fatalf("Ready after Close = %v, want code %s", err, standin.EUnavailable)
	}
}
