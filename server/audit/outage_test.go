package audit_test

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/embeddeddb"
	"standin/server/mongostore"
	"standin/server/standin"
)

// A database that goes down makes Append fail with EUnavailable in
// bounded time, storing and publishing nothing; when it comes back on the
// same files, the same Log, and a new one, continue the chain.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	edb, err := embeddeddb.Start(ctx, dir, "", discard())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { edb.Close() }()
	u, err := url.Parse(edb.URI())
	if err != nil {
		t.Fatal(err)
	}
	connect := func() *mongostore.DB {
		t.Helper()
		db, err := mongostore.Open(ctx, edb.URI(), "audit_outage", mongostore.Options{Timeout: time.Second, AppendOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close(context.Background()) })
		return db
	}

	const timeout = time.Second
	var rec recorder
	l := mustLog(t, connect(), audit.Config{OnCommit: rec.onCommit, Timeout: timeout, Logger: discard()})
	mustAppend(t, l, login("a"), login("b"))
	mustAppend(t, l, login("c"))

	stopped := time.Now()
	edb.Close()
	t.Logf("database stopped in %v", time.Since(stopped))
	for _, name := range []string{"Single", "Several"} {
		t.Run(name, func(t *testing.T) {
			evs := []*standin.Event{login("lost1")}
			if name == "Several" {
				evs = append(evs, login("lost2"), login("lost3"))
			}
			start := time.Now()
			err := l.Append(ctx, evs...)
			wantCode(t, err, standin.EUnavailable)
			if d := time.Since(start); d > 3*timeout {
				t.Errorf("Append took %v with a %v timeout", d, timeout)
			}
			for _, e := range evs {
				if e.Seq != 0 || e.Hash != "" {
					t.Errorf("failed event kept seq %d", e.Seq)
				}
			}
		})
	}
	_, _, err = l.Query(ctx, standin.EventFilter{}, standin.Page{})
	wantCode(t, err, standin.EUnavailable)
	if s := rec.seqs(); !slices.Equal(s, seqRange(1, 3)) {
		t.Fatalf("published %v while down", s)
	}

	// Back on the same files and address: the client reconnects by itself.
	edb, err = embeddeddb.Start(ctx, dir, u.Host, discard())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	var resumed error
	restarted := time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resumed = l.Append(ctx, login("d")); resumed == nil {
			break
		}
	}
	if resumed != nil {
		t.Fatalf("Append after restart: %v", resumed)
	}
	t.Logf("result: appending again after the restart=%v", time.Since(restarted).Round(time.Millisecond))
	if s := rec.seqs(); !slices.Equal(s, seqRange(1, 4)) {
		t.Fatalf("published %v", s)
	}

	again := mustLog(t, connect(), audit.Config{})
	if again.Head() != 4 {
		t.Fatalf("reopened Head = %d", again.Head())
	}
	e := login("e")
	mustAppend(t, again, e)
	if e.Seq != 5 {
		t.Fatalf("seq %d", e.Seq)
	}
	stored := all(t, again)
	for _, s := range stored {
		if s.Actor.ID == "lost1" || s.Actor.ID == "lost2" || s.Actor.ID == "lost3" {
			t.Fatalf("failed event %d stored", s.Seq)
		}
	}
	if len(stored) != 5 {
		t.Fatalf("%d events stored", len(stored))
	}
	mustVerify(t, again, 5)
}
