package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/server"
	"standin/server/audit"
	"standin/server/dbtest"
	"standin/server/embeddeddb"
	"standin/server/standin"
)

// storedEvent is an event as the events collection holds it, read and
// written over the wire by the tests that tamper with it.
type storedEvent struct {
	Seq             int64     `bson:"_id"`
	ID              string    `bson:"id"`
	SeqField        int64     `bson:"seq"`
	Time            time.Time `bson:"time"`
	Type            string    `bson:"type"`
	Actor           eventUser `bson:"actor"`
	Subject         eventUser `bson:"subject"`
	ImpersonationID string    `bson:"impersonation_id"`
	Action          string    `bson:"action"`
	Object          string    `bson:"object"`
	Project         string    `bson:"project"`
	Outcome         string    `bson:"outcome"`
	Reason          string    `bson:"reason"`
	IP              string    `bson:"ip"`
	UserAgent       string    `bson:"user_agent"`
	Projects        []string  `bson:"projects"`
	PrevHash        string    `bson:"prev_hash"`
	Hash            string    `bson:"hash"`
}

type eventUser struct {
	ID   string `bson:"id"`
	Name string `bson:"name"`
}

// rehash recomputes d's hash after prev, as anyone who read the hash
// format in the code or the docs can.
func (d *storedEvent) rehash(prev string) {
	d.PrevHash = prev
	d.Hash = audit.ComputeHash(&standin.Event{
		ID: d.ID, Seq: d.SeqField, Time: d.Time, Type: d.Type,
		Actor: standin.EventUser(d.Actor), Subject: standin.EventUser(d.Subject), ImpersonationID: d.ImpersonationID,
		Action: d.Action, Object: d.Object, Project: d.Project, Outcome: d.Outcome, Reason: d.Reason,
		IP: d.IP, UserAgent: d.UserAgent, Projects: d.Projects, PrevHash: d.PrevHash,
	})
}

// withDatabase opens the embedded database in a stopped server's data
// directory and hands fn its events collection over the wire: what
// anyone who can reach the database can do, without the server's files.
func withDatabase(t *testing.T, dataDir string, fn func(events *mongo.Collection, all []storedEvent)) {
	t.Helper()
	ctx := context.Background()
	edb, err := embeddeddb.Start(ctx, dataDir, "", silent)
	if err != nil {
		t.Fatal(err)
	}
	defer edb.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(edb.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(ctx) }()
	// A log kept in the one collection of consoles before segments, or
	// the first segment.
	coll := client.Database("standin").Collection("events")
	if n, err := coll.EstimatedDocumentCount(ctx); err != nil || n == 0 {
		coll = client.Database("standin").Collection(logSegment)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var all []storedEvent
	if err := cur.All(ctx, &all); err != nil {
		t.Fatal(err)
	}
	fn(coll, all)
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Tampering with the database behind a stopped server's back is
// reported once it starts again, by GET /activity/verify and by the
// check it made at start-up, even though every hash and link was
// recomputed; a damaged document does not stop it starting and appending.
func TestAuditAnchorAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, c *mongo.Collection, all []storedEvent) (code string, brokenAt int64)
	}{
		{"TruncatedNewest", func(t *testing.T, c *mongo.Collection, all []storedEvent) (string, int64) {
			from := all[len(all)-2].Seq
			_, err := c.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: from}}}})
			mustDo(t, err)
			return audit.ProblemTruncated, from
		}},
		{"ForgedHead", func(t *testing.T, c *mongo.Collection, all []storedEvent) (string, int64) {
			head := all[len(all)-1]
			forged := head
			forged.Seq, forged.SeqField, forged.ID = head.Seq+1, head.Seq+1, bson.NewObjectID().Hex()
			forged.Time, forged.Reason = head.Time.Add(time.Second), "signed in from the office"
			forged.rehash(head.Hash)
			_, err := c.InsertOne(ctx, forged)
			mustDo(t, err)
			return audit.ProblemAdded, forged.Seq
		}},
		{"PastRewritten", func(t *testing.T, c *mongo.Collection, all []storedEvent) (string, int64) {
			prev := ""
			for i, d := range all {
				if i == 2 {
					d.Actor.Name = "Someone Else"
				}
				if i >= 2 {
					d.rehash(prev)
					_, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.Seq}}, d)
					mustDo(t, err)
				}
				prev = d.Hash
			}
			return audit.ProblemRewritten, all[2].Seq
		}},
		{"Damaged", func(t *testing.T, c *mongo.Collection, all []storedEvent) (string, int64) {
			_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: all[1].Seq}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "time", Value: "last Tuesday"}}}})
			mustDo(t, err)
			return audit.ProblemDamaged, all[1].Seq
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			srv := mustStart(t, dir)
			for _, who := range []string{"ada@example.org", "ben@example.org", "cleo@example.org"} {
				newClient(t, srv.URL).mustLogin(who)
			}
			admin := newClient(t, srv.URL)
			admin.mustLogin("admin@example.org")
			if v := admin.verify().JSON(t); v["ok"] != true || v["anchor"] == nil {
				t.Fatalf("verify before: %v", v)
			}
			srv.Stop(t)

			var code string
			var brokenAt int64
			withDatabase(t, dir, func(c *mongo.Collection, all []storedEvent) {
				if len(all) < 4 {
					t.Fatalf("only %d events to tamper with", len(all))
				}
				code, brokenAt = tc.tamper(t, c, all)
			})

			srv = mustStart(t, dir)
			admin = newClient(t, srv.URL)
			me := admin.mustLogin("admin@example.org")["user"].(map[string]any)["id"]
			r := admin.verify()
			if r.Status != http.StatusOK {
				t.Fatalf("verify: %d %s", r.Status, r.Body)
			}
			v := r.JSON(t)
			at, _ := v["broken_at"].(float64)
			if v["ok"] != false || v["code"] != code || at < 1 || int64(at) > brokenAt || v["problem"] == "" {
				t.Fatalf("verify after tampering, want %s at or before event %d: %v", code, brokenAt, v)
			}
			startup, _ := v["startup"].(map[string]any)
			if code != audit.ProblemDamaged && (startup["ok"] != false || startup["code"] != code) {
				t.Fatalf("the check at start-up, want %s: %v", code, startup)
			}
			// The log took the sign-in after the head it found.
			newest := items(t, admin.do(http.MethodGet, "/api/v1/activity?limit=1", nil))[0]
			if newest["type"] != standin.EventLogin || newest["actor"].(map[string]any)["id"] != me {
				t.Fatalf("the newest event is not the admin's sign-in: %v", newest)
			}
			bg := waitBackground(t, admin)
			if bg["ok"] != false || bg["code"] != code {
				t.Fatalf("the background verification, want %s: %v", code, bg)
			}
		})
	}
}

// waitBackground waits for the verification the server started with to
// finish and returns its report.
func waitBackground(t *testing.T, admin *client) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		v := admin.verify().JSON(t)
		bg, _ := v["background"].(map[string]any)
		if bg["state"] == audit.BackgroundDone {
			return bg
		}
		if bg["state"] != audit.BackgroundRunning || time.Now().After(deadline) {
			t.Fatalf("background verification: %v", bg)
		}
	}
}

// The public key is published at GET /activity/key to those who may
// verify, and with every export; a JSON Lines export of the whole log is
// enough, with that key, to check every checkpoint and the events they
// sign.
func TestAuditKeyPublished(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := mustStart(t, dir)
	admin, manager := newClient(t, srv.URL), newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")
	manager.mustLogin("manager@example.org")
	if r := manager.do(http.MethodGet, "/api/v1/activity/key", nil); r.Status != http.StatusForbidden || r.ErrorCode(t) != standin.EForbidden {
		t.Fatalf("a manager reads the key: %d %s", r.Status, r.Body)
	}
	k := admin.do(http.MethodGet, "/api/v1/activity/key", nil).JSON(t)
	raw, err := base64.StdEncoding.DecodeString(fmt.Sprint(k["public_key"]))
	if err != nil || len(raw) != ed25519.PublicKeySize || k["algorithm"] != "ed25519" || !strings.Contains(fmt.Sprint(k["pem"]), "PUBLIC KEY") {
		t.Fatalf("key: %v", k)
	}
	pub := ed25519.PublicKey(raw)
	// The key file was created with the data directory, for its owner only.
	st, err := os.Stat(filepath.Join(dir, "audit.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	// A restart is a checkpoint of its own; the export carries them.
	srv.Stop(t)
	srv = mustStart(t, dir)
	admin = newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")

	r := admin.do(http.MethodGet, "/api/v1/activity/export?format=jsonl", nil)
	if r.Status != http.StatusOK || r.Header.Get("Standin-Audit-Key-Id") != k["key_id"] || r.Header.Get("Standin-Audit-Public-Key") != k["public_key"] {
		t.Fatalf("export: %d, headers %v", r.Status, r.Header)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	sc.Scan()
	var h audit.ExportHeader
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Export.Key.KeyID != k["key_id"] || !h.Export.Checkpoints {
		t.Fatalf("first record %s: %v", sc.Bytes(), err)
	}
	hashes := map[int64]string{}
	checkpoints := 0
	for sc.Scan() {
		var rec struct {
			Checkpoint *audit.Checkpoint `json:"checkpoint"`
			Seq        int64             `json:"seq"`
			Hash       string            `json:"hash"`
		}
		mustDo(t, json.Unmarshal(sc.Bytes(), &rec))
		if c := rec.Checkpoint; c != nil {
			if err := c.Verify(pub); err != nil || hashes[c.Seq] != c.Hash {
				t.Fatalf("checkpoint %+v: %v", c, err)
			}
			checkpoints++
			continue
		}
		hashes[rec.Seq] = rec.Hash
	}
	if checkpoints < 2 {
		t.Fatalf("%d checkpoints in the export, want the stop and the start at least", checkpoints)
	}
}

// With MONGODB_URI no key is created: every server sharing the database
// must sign with the same one, so a missing key file stops the start with
// a message naming the setting.
func TestAuditKeyRequiredWithMongoURI(t *testing.T) {
	t.Parallel()
	db := dbtest.MustOpen(t)
	missing := filepath.Join(t.TempDir(), "audit.key")
	err := server.Run(context.Background(), server.Config{
		MongoURI: dbtest.MustServer(t).URI, Database: db.Name(), DataDir: t.TempDir(), AuditKeyFile: missing,
		Addr: "127.0.0.1:0", Logger: silent,
	})
	if err == nil || !strings.Contains(err.Error(), "STANDIN_AUDIT_KEY_FILE") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Run without a key = %v, want a refusal naming STANDIN_AUDIT_KEY_FILE", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key was created: %v", err)
	}
}

// A failed export does not look like a finished one: once it has begun
// streaming, the response is broken off before its end, so every client
// sees an incomplete transfer rather than a cleanly ended file.
func TestActivityExportFailureIsVisible(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A log in the one collection, which a walk reads in stored order.
	oneCollectionLog(t, dir)
	srv := mustStart(t, dir)
	ada := newClient(t, srv.URL)
	for range 200 {
		ada.mustLogin("ada@example.org")
	}
	srv.Stop(t)
	// The embedded database keeps events in the order they were written,
	// which the server's walk through a log kept in one collection relies
	// on; an event deleted and written again breaks it, and the walk fails
	// where it meets it.
	withDatabase(t, dir, func(c *mongo.Collection, all []storedEvent) {
		moved := all[2]
		_, err := c.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: moved.Seq}})
		mustDo(t, err)
		_, err = c.InsertOne(context.Background(), moved)
		mustDo(t, err)
	})
	srv = mustStart(t, dir)
	admin := newClient(t, srv.URL)
	admin.mustLogin("admin@example.org")

	for _, format := range []string{"csv", "jsonl"} {
		res, err := admin.http.Get(srv.URL + "/api/v1/activity/export?format=" + format)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s export: status %d, %d bytes read, then %v; want the transfer broken off", format, res.StatusCode, len(body), err)
		}
		if len(body) == 0 {
			t.Fatalf("%s export: nothing arrived before the break", format)
		}
	}
	// The chain's walk does not fail on it: it names the event.
	v := admin.verify().JSON(t)
	if v["ok"] != false || v["code"] != audit.ProblemMissing {
		t.Fatalf("verify: %v", v)
	}
}
