package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"standin/server"
	"standin/server/audit"
	"standin/server/embeddeddb"
	"standin/server/mongostore"
	"standin/server/standin"
)

// A data directory whose database already keeps its audit log in the one
// collection "events" (as consoles before segments did) is read where it
// is: the console starts on it, shows its events, appends after them and
// the whole chain verifies. A fresh one is segmented (the other tests
// read logSegment).
func TestExistingLogStaysInItsCollection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	oneCollectionLog(t, dir)
	srv := mustRun(t, server.Config{DataDir: dir})
	owner := newClient(t, srv.URL)
	owner.mustLogin("owner@example.org")
	evs := items(t, owner.do(http.MethodGet, "/api/v1/activity?limit=500", nil))
	if len(evs) < 2 {
		t.Fatalf("activity: %v", evs)
	}
	if first := evs[len(evs)-1]; first["seq"] != float64(1) || first["actor"].(map[string]any)["name"] != "Kept Before" {
		t.Errorf("the oldest event is %v, want the one kept before", first)
	}
	if v := owner.verify().JSON(t); v["ok"] != true || v["checked"].(float64) != float64(len(evs)) {
		t.Errorf("verify: %v, want all %d events checked", v, len(evs))
	}
}

// oneCollectionLog makes dataDir's database keep its audit log in the one
// collection "events", as consoles did before segments, by storing there
// a first event: a sign-in of "Kept Before".
func oneCollectionLog(t *testing.T, dataDir string) {
	t.Helper()
	ctx := context.Background()
	edb, err := embeddeddb.Start(ctx, dataDir, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer edb.Close()
	db, err := mongostore.Open(ctx, edb.URI(), "standin", mongostore.Options{AppendOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close(ctx) }()
	l, err := audit.Open(ctx, db.Events(), audit.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	kept := &standin.Event{Type: standin.EventLogin, Actor: standin.EventUser{ID: "kept", Name: "Kept Before"},
		Subject: standin.EventUser{ID: "kept", Name: "Kept Before"}, Action: "session.start", Outcome: "signed_in"}
	if err := l.Append(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
