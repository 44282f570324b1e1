package audit_test

import (
	"context"
	"testing"
	"time"

	"standin/server/audit"
)

// slowScans makes every read of a walk take a while, as a large log does.
type slowScans struct {
	audit.Store
	pause time.Duration
}

func (s *slowScans) Scan(ctx context.Context, sc audit.Scan, fn func(audit.Stored) error) error {
	time.Sleep(s.pause)
	return s.Store.Scan(ctx, sc, fn)
}

// A verification asked for over the API is shared and can be waited for
// in steps: one that does not finish within the wait says how far it got
// and goes on; asking again joins it rather than starting another;
// asking for it by its number collects its result, once and again; asking
// afresh after it finished starts a new one.
func TestCheckIsSharedAndCollected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustDB(t)
	store := &slowScans{Store: db.Events()}
	l := mustLog(t, db, audit.Config{Chunk: 4, Logger: discard()})
	mustAppend(t, l, chained("c", nil, 40)...)
	l.Close(ctx)
	l, err := audit.Open(ctx, store, audit.Config{Chunk: 4, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	store.pause = 50 * time.Millisecond

	first := l.Check(ctx, 0, 0)
	if first.Done || first.Run != 1 || first.Head != 40 || first.Checked >= 40 {
		t.Fatalf("a verification that cannot have finished: %+v", first)
	}
	if again := l.Check(ctx, 0, 0); again.Run != first.Run {
		t.Fatalf("asking again started run %d beside run %d", again.Run, first.Run)
	}
	done := l.Check(ctx, first.Run, time.Minute)
	if !done.Done || done.Err != nil || !done.Result.OK || done.Result.Checked != 40 || done.Checked != 40 {
		t.Fatalf("run %d collected: %+v", first.Run, done)
	}
	if again := l.Check(ctx, first.Run, 0); !again.Done || again.Run != first.Run || !again.Result.OK {
		t.Fatalf("run %d collected again: %+v", first.Run, again)
	}
	store.pause = 0
	if fresh := l.Check(ctx, 0, time.Minute); fresh.Run != 2 || !fresh.Done || !fresh.Result.OK {
		t.Fatalf("a new verification after the first finished: %+v", fresh)
	}
}
