package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/audit"
	"standin/server/standin"
)

// mustAnchor opens an anchor with a new key in dir.
func mustAnchor(t testing.TB, dir string) *audit.Anchor {
	t.Helper()
	key, err := audit.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	an, err := audit.OpenAnchor(audit.AnchorConfig{Key: key, Dir: dir, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	return an
}

// anchored is one server's audit log with its anchor, which a test
// closes and reopens as a restart would.
type anchored struct {
	t      testing.TB
	db     testDB
	key    *audit.Key
	dir    string
	events int64 // AnchorConfig.Events
	cfg    audit.Config
	l      *audit.Log
}

func newAnchored(t testing.TB, cfg audit.Config) *anchored {
	t.Helper()
	key, err := audit.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	a := &anchored{t: t, db: mustDB(t), key: key, dir: t.TempDir(), cfg: cfg}
	a.open()
	t.Cleanup(func() {
		if a.l != nil {
			_ = a.l.Close(context.Background())
		}
	})
	return a
}

// open opens the log as a server starting would.
func (a *anchored) open() {
	a.t.Helper()
	an, err := audit.OpenAnchor(audit.AnchorConfig{Key: a.key, Dir: a.dir, Events: a.events, Logger: discard()})
	if err != nil {
		a.t.Fatalf("OpenAnchor: %v", err)
	}
	cfg := a.cfg
	cfg.Anchor = an
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	a.l, err = audit.Open(context.Background(), a.db.Events(), cfg)
	if err != nil {
		a.t.Fatalf("Open: %v", err)
	}
}

// close stops the log cleanly.
func (a *anchored) close() {
	a.t.Helper()
	if err := a.l.Close(context.Background()); err != nil {
		a.t.Fatalf("Close: %v", err)
	}
	a.l = nil
}

// restart is a clean stop and a start.
func (a *anchored) restart() {
	a.t.Helper()
	a.close()
	a.open()
}

func (a *anchored) coll() *mongo.Collection { return a.db.Collection(collection) }

// verify runs Verify and checks its outcome: ok, or broken with code at
// a seq of at most brokenAt.
func (a *anchored) verify(code string, brokenAt int64) audit.Verification {
	a.t.Helper()
	v, err := a.l.Verify(context.Background())
	if err != nil {
		a.t.Fatalf("Verify: %v", err)
	}
	checkVerification(a.t, "Verify", v, code, brokenAt)
	return v
}

func checkVerification(t testing.TB, what string, v audit.Verification, code string, brokenAt int64) {
	t.Helper()
	if code == "" {
		if !v.OK || v.Code != "" || v.Problem != "" {
			t.Fatalf("%s = %+v, want OK", what, v)
		}
		return
	}
	if v.OK || v.Code != code || v.Problem == "" || v.BrokenAt > brokenAt || (brokenAt > 0 && v.BrokenAt == 0) {
		t.Fatalf("%s = %+v, want %s at or before seq %d", what, v, code, brokenAt)
	}
}

// storedEvent writes e as the log stores it, as someone with access to
// the database would.
func storedEvent(e *standin.Event) bson.D {
	projects := bson.A{}
	for _, p := range e.Projects {
		projects = append(projects, p)
	}
	return bson.D{
		{Key: "_id", Value: e.Seq}, {Key: "id", Value: e.ID}, {Key: "seq", Value: e.Seq}, {Key: "time", Value: e.Time},
		{Key: "type", Value: e.Type},
		{Key: "actor", Value: bson.D{{Key: "id", Value: e.Actor.ID}, {Key: "name", Value: e.Actor.Name}}},
		{Key: "subject", Value: bson.D{{Key: "id", Value: e.Subject.ID}, {Key: "name", Value: e.Subject.Name}}},
		{Key: "impersonation_id", Value: e.ImpersonationID}, {Key: "action", Value: e.Action}, {Key: "object", Value: e.Object},
		{Key: "project", Value: e.Project}, {Key: "outcome", Value: e.Outcome}, {Key: "reason", Value: e.Reason},
		{Key: "ip", Value: e.IP}, {Key: "user_agent", Value: e.UserAgent}, {Key: "projects", Value: projects},
		{Key: "prev_hash", Value: e.PrevHash}, {Key: "hash", Value: e.Hash},
	}
}

// rewrite changes the reason of event seq and recomputes the chain from
// there to the end, so that every hash and link is right again.
func rewrite(t testing.TB, l *audit.Log, c *mongo.Collection, seq int64) {
	t.Helper()
	ctx := context.Background()
	prev := ""
	for _, e := range all(t, l) {
		if e.Seq < seq {
			prev = e.Hash
			continue
		}
		if e.Seq == seq {
			e.Reason = "nothing happened here"
		}
		e.PrevHash = prev
		e.Hash = audit.ComputeHash(e)
		prev = e.Hash
		if _, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: e.Seq}}, storedEvent(e)); err != nil {
			t.Fatal(err)
		}
	}
}

// forge appends n events after the stored head with a correct chain.
func forge(t testing.TB, l *audit.Log, c *mongo.Collection, n int) {
	t.Helper()
	evs := all(t, l)
	head := evs[len(evs)-1]
	for i := range n {
		e := login("forged")
		e.ID = bson.NewObjectID().Hex()
		e.Seq, e.PrevHash, e.Time = head.Seq+1, head.Hash, time.Now().UTC().Truncate(time.Millisecond)
		e.Hash = audit.ComputeHash(e)
		if _, err := c.InsertOne(context.Background(), storedEvent(e)); err != nil {
			t.Fatalf("forge event %d: %v", i, err)
		}
		head = e
	}
}

func truncate(t testing.TB, c *mongo.Collection, from int64) {
	t.Helper()
	if _, err := c.DeleteMany(context.Background(), bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: from}}}}); err != nil {
		t.Fatal(err)
	}
}

// Someone who can write the database but not the server's files cannot
// make a changed log pass for a whole one after a restart: what Open
// finds and what Verify finds both say what was done, and keep saying it
// after further appends and restarts. The same holds, but for events
// added after the head, when other servers may share the database.
func TestAnchorAfterRestart(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		cfg  audit.Config
		sole bool
	}{
		{"OneWriter", audit.Config{Window: 100, StoredOrder: true}, true},
		{"SharedDatabase", audit.Config{}, false},
	} {
		for _, tc := range []struct {
			name     string
			tamper   func(a *anchored)
			code     string // "" when no tampering can be seen
			brokenAt int64
		}{
			{"Intact", func(*anchored) {}, "", 0},
			{"TruncatedNewest", func(a *anchored) { truncate(a.t, a.coll(), 11) }, audit.ProblemTruncated, 11},
			{"TruncatedAll", func(a *anchored) { truncate(a.t, a.coll(), 1) }, audit.ProblemTruncated, 1},
			{"HeadReplaced", func(a *anchored) { rewrite(a.t, a.l, a.coll(), 12) }, audit.ProblemRewritten, 12},
			{"PastRewritten", func(a *anchored) { rewrite(a.t, a.l, a.coll(), 3) }, audit.ProblemRewritten, 3},
			{"HeadForged", func(a *anchored) { forge(a.t, a.l, a.coll(), 1) }, audit.ProblemAdded, 13},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				a := newAnchored(t, mode.cfg)
				dataset(t, a.l, 12)
				a.close()
				a.open() // read events through a log, as the tamperer's tools would
				tc.tamper(a)
				a.restart()

				code, at := tc.code, tc.brokenAt
				if code == audit.ProblemAdded && !mode.sole {
					// Another server may have appended them: not a finding.
					code, at = "", 0
				}
				checkVerification(t, "the check at Open", a.l.Status().Startup, code, at)
				a.verify(code, at)

				// The finding outlives the server's own appends and restarts.
				dataset(t, a.l, 5)
				a.restart()
				a.verify(code, at)
			})
		}
	}
}

// A server that stops without closing the log (a crash, a power failure)
// may leave its last commit out of the head file, and after a power
// failure the head file may be as old as the newest checkpoint: a start
// allows for the checkpoint interval and one commit beyond the anchored
// head, and no more.
func TestAnchorAfterCrash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		after    int  // events committed after the copy of the anchor
		headLost bool // the head file's newest renames did not reach the disk
		code     string
	}{
		{"NothingMissed", 0, false, ""},
		{"OneCommitMissed", 2, false, ""},
		{"IntervalAndCommitsMissed", 11, false, ""},
		{"MoreMissed", 12, false, audit.ProblemAdded},
		{"HeadFileOlder", 10, true, ""},
		{"HeadFileOlderMoreMissed", 11, true, audit.ProblemAdded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Checkpoints every 3 events, commits of 2 at most: after a
			// crash the database may hold 3+4*2 events beyond the
			// anchored head.
			a := newAnchored(t, audit.Config{Window: 100, StoredOrder: true, MaxBatch: 2})
			a.events = 3
			a.restart()
			for range 7 {
				mustAppend(t, a.l, login("early"))
			}
			// The anchor's files as a crash would leave them: copied
			// before the last commits and before Close.
			audit.FlushAnchor(a.l)
			crashed := t.TempDir()
			copyDir(t, a.dir, crashed)
			if tc.headLost {
				// The head file as it was two checkpoints ago (event 3),
				// older than the newest checkpoint (event 6).
				cps := readCheckpoints(t, filepath.Join(crashed, audit.CheckpointFile))
				raw, _ := json.Marshal(cps[len(cps)-2])
				if err := os.WriteFile(filepath.Join(crashed, audit.HeadFile), raw, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for range tc.after {
				mustAppend(t, a.l, login("late"))
			}
			a.close()
			a.dir = crashed
			a.open()
			from := int64(8)
			if tc.headLost {
				from = 7
			}
			checkVerification(t, "the check at Open", a.l.Status().Startup, tc.code, from)
			a.verify(tc.code, from)
		})
	}
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// The anchor's own files are checked too: a checkpoint edited, removed or
// signed with another key, or a head file that does not follow the
// checkpoints, is reported as a problem of the anchor; a last line cut
// short by a crash is repaired without one.
func TestAnchorFiles(t *testing.T) {
	t.Parallel()
	editLine := func(i int, edit func(*audit.Checkpoint)) func(*anchored) {
		return func(a *anchored) {
			path := filepath.Join(a.dir, audit.CheckpointFile)
			lines := readLines(a.t, path)
			var c audit.Checkpoint
			if err := json.Unmarshal([]byte(lines[i]), &c); err != nil {
				a.t.Fatal(err)
			}
			edit(&c)
			raw, _ := json.Marshal(c)
			lines[i] = string(raw)
			writeLines(a.t, path, lines)
		}
	}
	for _, tc := range []struct {
		name   string
		tamper func(a *anchored)
		code   string
	}{
		{"CheckpointEdited", editLine(1, func(c *audit.Checkpoint) { c.Seq = 3 }), audit.ProblemAnchor},
		{"CheckpointRemoved", func(a *anchored) {
			path := filepath.Join(a.dir, audit.CheckpointFile)
			lines := readLines(a.t, path)
			writeLines(a.t, path, append(lines[:1:1], lines[2:]...))
		}, audit.ProblemAnchor},
		{"CheckpointGarbled", func(a *anchored) {
			path := filepath.Join(a.dir, audit.CheckpointFile)
			lines := readLines(a.t, path)
			lines[0] = "{not json"
			writeLines(a.t, path, lines)
		}, audit.ProblemAnchor},
		{"HeadFileRemoved", func(a *anchored) {
			if err := os.Remove(filepath.Join(a.dir, audit.HeadFile)); err != nil {
				a.t.Fatal(err)
			}
		}, audit.ProblemAnchor},
		{"OtherKey", func(a *anchored) {
			k, err := audit.NewKey()
			if err != nil {
				a.t.Fatal(err)
			}
			a.key = k
		}, audit.ProblemAnchor},
		{"LastLineCutShort", func(a *anchored) {
			path := filepath.Join(a.dir, audit.CheckpointFile)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				a.t.Fatal(err)
			}
			if _, err := f.WriteString(`{"version":"standin-audit-checkpoint-v1","kind":"he`); err != nil {
				a.t.Fatal(err)
			}
			_ = f.Close()
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newAnchored(t, audit.Config{Window: 100, StoredOrder: true})
			dataset(t, a.l, 8)
			a.restart()
			mustAppend(t, a.l, login("x"))
			a.close()
			tc.tamper(a)
			a.open()
			v := a.verify(tc.code, 0)
			if tc.code != "" && v.BrokenAt != 0 {
				t.Fatalf("Verify = %+v: a problem of the anchor alone names no event", v)
			}
			if v.Checked != 9 {
				t.Fatalf("Verify checked %d events, want 9: the events themselves are whole", v.Checked)
			}
		})
	}
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

func writeLines(t testing.TB, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Checkpoints are written every AnchorConfig.Events events and, while
// the head moves, every AnchorConfig.Every; each verifies with the public
// key and names the digest of the one before; the head file holds the
// newest head after every commit.
func TestAnchorCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, err := audit.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	an, err := audit.OpenAnchor(audit.AnchorConfig{Key: key, Dir: dir, Events: 10, Every: time.Hour, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	l := mustLog(t, mustDB(t), audit.Config{Anchor: an, MaxBatch: 4})
	for range 25 {
		mustAppend(t, l, login("a"))
	}
	audit.FlushAnchor(l)
	head := readCheckpoint(t, filepath.Join(dir, audit.HeadFile))
	if head.Kind != audit.KindHead || head.Seq != 25 || head.Hash != all(t, l)[24].Hash {
		t.Fatalf("head file %+v, want event 25", head)
	}
	cps := readCheckpoints(t, filepath.Join(dir, audit.CheckpointFile))
	var seqs []int64
	prev := ""
	pub := publicKey(t, key.Public())
	for _, c := range cps {
		if err := c.Verify(pub); err != nil {
			t.Fatalf("checkpoint %+v: %v", c, err)
		}
		if c.Prev != prev {
			t.Fatalf("checkpoint %d does not follow the one before", c.Seq)
		}
		prev = c.Digest()
		seqs = append(seqs, c.Seq)
	}
	// The start, then one at the first commit 10 or more past the last.
	if want := []int64{0, 10, 20}; !equal(seqs, want) {
		t.Fatalf("checkpoints at %v, want %v", seqs, want)
	}
	if cps[0].Kind != audit.KindStart {
		t.Fatalf("the first checkpoint is a %q", cps[0].Kind)
	}
	v, err := l.Verify(ctx)
	if err != nil || !v.OK || v.Checkpoints != 4 || v.Anchor == nil || v.Anchor.Seq != 25 {
		t.Fatalf("Verify = %+v, %v; want OK against 3 checkpoints and the head", v, err)
	}

	t.Run("Timer", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		an, err := audit.OpenAnchor(audit.AnchorConfig{Key: key, Dir: dir, Every: 20 * time.Millisecond, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		l := mustLog(t, mustDB(t), audit.Config{Anchor: an})
		mustAppend(t, l, login("a"), login("b"))
		path := filepath.Join(dir, audit.CheckpointFile)
		for deadline := time.Now().Add(10 * time.Second); ; {
			cps := readCheckpoints(t, path)
			if last := cps[len(cps)-1]; last.Seq == 2 {
				if len(cps) != 2 {
					t.Fatalf("checkpoints %+v: an unmoved head is not checkpointed again", cps)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of the moved head: %+v", cps)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func readCheckpoint(t testing.TB, path string) audit.Checkpoint {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c audit.Checkpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func readCheckpoints(t testing.TB, path string) []audit.Checkpoint {
	t.Helper()
	var out []audit.Checkpoint
	for _, line := range readLines(t, path) {
		var c audit.Checkpoint
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func publicKey(t testing.TB, k audit.PublicKey) ed25519.PublicKey {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil || len(raw) != ed25519.PublicKeySize || k.Algorithm != "ed25519" {
		t.Fatalf("public key %+v", k)
	}
	return ed25519.PublicKey(raw)
}

// The key file: created once with permissions 0600 in the format openssl
// writes, read back the same, refused when missing and not to be created,
// and never shown.
func TestKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys", "audit.key")
	if _, _, err := audit.LoadKey(path, false, discard()); !errors.Is(err, audit.ErrNoKey) {
		t.Fatalf("LoadKey of a missing file = %v, want ErrNoKey", err)
	}
	k, created, err := audit.LoadKey(path, true, discard())
	if err != nil || !created {
		t.Fatalf("LoadKey creating = %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	if !bytes.HasPrefix(raw, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Fatalf("key file is not a PKCS #8 PEM block: %q", raw[:min(len(raw), 40)])
	}
	again, created, err := audit.LoadKey(path, true, discard())
	if err != nil || created || again.ID() != k.ID() || again.Public() != k.Public() {
		t.Fatalf("reloading the key: %v, created %v, %s vs %s", err, created, again, k)
	}
	pub := k.Public()
	if !strings.Contains(pub.PEM, "BEGIN PUBLIC KEY") || len(pub.KeyID) != 16 {
		t.Fatalf("public key %+v", pub)
	}
	var logged bytes.Buffer
	secret := string(raw[28 : len(raw)-26]) // the base64 of the PKCS #8 block
	logger := slogText(&logged)
	logger.Info("key", "key", k)
	for _, shown := range []string{k.String(), logged.String(), fmt.Sprintf("%v %+v %#v", k, k, k)} {
		if strings.Contains(shown, strings.TrimSpace(secret)[:20]) || !strings.Contains(shown, k.ID()) {
			t.Fatalf("the key shows as %q", shown)
		}
	}
	for _, bad := range []string{"", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", "not a key"} {
		if _, err := audit.ParseKey([]byte(bad)); err == nil {
			t.Errorf("ParseKey(%q) accepted it", bad)
		}
	}
}

// A JSON Lines export of an anchored log carries what a verifier needs
// with nothing but the public key: a first record naming the key, then
// every event, each checkpoint after the event it signs.
func TestExportCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, err := audit.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	an, err := audit.OpenAnchor(audit.AnchorConfig{Key: key, Dir: t.TempDir(), Events: 5, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	l := mustLog(t, mustDB(t), audit.Config{Anchor: an, MaxBatch: 2})
	for range 13 {
		mustAppend(t, l, login("a"))
	}
	audit.FlushAnchor(l)

	for _, tc := range []struct {
		name        string
		f           standin.EventFilter
		events      int
		checkpoints []int64
	}{
		{"All", standin.EventFilter{}, 13, []int64{0, 5, 10, 13}},
		{"AfterSeq", standin.EventFilter{AfterSeq: 7}, 6, []int64{10, 13}},
		{"Filtered", standin.EventFilter{ActorID: "a"}, 13, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := l.Export(ctx, tc.f, audit.FormatJSONL, &buf); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(&buf)
			if !sc.Scan() {
				t.Fatal("empty export")
			}
			var h audit.ExportHeader
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Export.Version != audit.ExportVersion {
				t.Fatalf("first record %s: %v", sc.Bytes(), err)
			}
			if h.Export.Checkpoints != (tc.checkpoints != nil) {
				t.Fatalf("header says checkpoints: %v", h.Export.Checkpoints)
			}
			pub := publicKey(t, h.Export.Key)
			if h.Export.Key.KeyID != key.ID() {
				t.Fatalf("header names key %q, want %q", h.Export.Key.KeyID, key.ID())
			}
			// What an outside verifier does.
			var lastSeq int64
			var lastHash string
			var signed []int64
			events := 0
			for sc.Scan() {
				var rec map[string]json.RawMessage
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatal(err)
				}
				if raw, ok := rec["checkpoint"]; ok {
					var c audit.Checkpoint
					if err := json.Unmarshal(raw, &c); err != nil {
						t.Fatal(err)
					}
					if err := c.Verify(pub); err != nil {
						t.Fatalf("checkpoint %d: %v", c.Seq, err)
					}
					if c.Seq != lastSeq || c.Hash != lastHash {
						t.Fatalf("checkpoint of event %d follows event %d", c.Seq, lastSeq)
					}
					signed = append(signed, c.Seq)
					continue
				}
				var j audit.JSON
				if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
					t.Fatal(err)
				}
				e, err := j.Event()
				if err != nil {
					t.Fatal(err)
				}
				if audit.ComputeHash(e) != e.Hash {
					t.Fatalf("event %d does not re-hash", e.Seq)
				}
				lastSeq, lastHash = e.Seq, e.Hash
				events++
			}
			if events != tc.events || !equal(signed, tc.checkpoints) {
				t.Fatalf("%d events and checkpoints of %v, want %d and %v", events, signed, tc.events, tc.checkpoints)
			}
		})
	}
}

func slogText(w *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// VerifyInBackground runs the full verification off the caller's path and
// Status reports it, with what Open found and the anchor's key; Close
// stops one still running.
func TestVerifyInBackground(t *testing.T) {
	t.Parallel()
	a := newAnchored(t, audit.Config{Window: 100, StoredOrder: true})
	dataset(t, a.l, 10)
	if s := a.l.Status(); s.Background.State != audit.BackgroundIdle || !s.Startup.OK || s.Key.KeyID != a.key.ID() || s.AnchorError != "" {
		t.Fatalf("Status before = %+v", s)
	}
	a.close()
	// Altered in the middle, with the chain recomputed: only a walk
	// against the checkpoints finds where.
	a.open()
	rewrite(t, a.l, a.coll(), 4)
	a.restart()
	a.l.VerifyInBackground()
	var s audit.Status
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s = a.l.Status(); s.Background.State != audit.BackgroundRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background verification did not finish")
		}
	}
	if s.Background.State != audit.BackgroundDone || s.Background.Finished.Before(s.Background.Started) {
		t.Fatalf("Background = %+v", s.Background)
	}
	checkVerification(t, "the background verification", s.Background.Result, audit.ProblemRewritten, 4)
	checkVerification(t, "the check at Open", s.Startup, audit.ProblemRewritten, 4)

	// One still running when the log closes is stopped.
	a.restart()
	a.l.VerifyInBackground()
	a.close()
}

// An anchor that cannot be written (here its head file's place is taken
// by a directory) fails no append, since the events are stored: Status
// says so until a write succeeds again.
func TestAnchorWriteFailure(t *testing.T) {
	t.Parallel()
	a := newAnchored(t, audit.Config{Window: 100, StoredOrder: true})
	mustAppend(t, a.l, login("a"))
	head := filepath.Join(a.dir, audit.HeadFile)
	audit.FlushAnchor(a.l)
	if err := os.Remove(head); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(head, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, a.l, login("b"))
	audit.FlushAnchor(a.l)
	if s := a.l.Status(); s.AnchorError == "" {
		t.Fatalf("Status = %+v, want the anchor's failure", s)
	}
	if err := os.RemoveAll(head); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, a.l, login("c"))
	audit.FlushAnchor(a.l)
	if s := a.l.Status(); s.AnchorError != "" {
		t.Fatalf("Status = %+v, want the anchor written again", s)
	}
	if c := readCheckpoint(t, head); c.Seq != 3 {
		t.Fatalf("head file at event %d, want 3", c.Seq)
	}
	a.verify("", 0)
}
