package mongostore_test

import (
	"context"
	"testing"

	"standin/server/mongostore"
)

// Opening a database whose indexes exist already must succeed: every start
// of the server after the first does it.
func TestReopen(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	ctx := context.Background()
	for range 2 {
		again, err := mongostore.Open(ctx, testURI, db.Name(), mongostore.Options{Embedded: embedded})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if err := again.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
