package audit_test

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/server/audit"
	"standin/server/standin"
)

// Verify names the first broken link whatever was done to the stored
// events behind the log's back.
func TestVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set := func(seq int64, field string, value any) func(*mongo.Collection) error {
		return func(c *mongo.Collection) error {
			_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: seq}}, bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: value}}}})
			return err
		}
	}
	del := func(seqs ...int64) func(*mongo.Collection) error {
		return func(c *mongo.Collection) error {
			_, err := c.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: seqs}}}})
			return err
		}
	}
	for _, tc := range []struct {
		name     string
		tamper   func(*mongo.Collection) error
		brokenAt int64
		problem  string
	}{
		{"Intact", nil, 0, ""},
		{"ReasonAltered", set(5, "reason", "nothing to see"), 5, "altered"},
		{"ActorAltered", set(3, "actor.name", "Someone Else"), 3, "altered"},
		{"TimeAltered", set(7, "time", base), 7, "altered"},
		{"ProjectsAltered", set(4, "projects", bson.A{"p9"}), 4, "altered"},
		{"FirstAltered", set(1, "type", "auth.logout"), 1, "altered"},
		{"HashReplaced", set(6, "hash", strings.Repeat("0", 64)), 6, "altered"},
		{"PrevHashAltered", set(6, "prev_hash", strings.Repeat("0", 64)), 6, "does not link"},
		{"FirstPrevHash", set(1, "prev_hash", "x"), 1, "links to nothing"},
		{"SeqFieldAltered", set(4, "seq", int64(40)), 4, "says its seq is 40"},
		{"Deleted", del(4), 4, "Event 4 is missing"},
		{"DeletedRun", del(3, 4, 5), 3, "Event 3 is missing"},
		{"FirstDeleted", del(1), 1, "Event 1 is missing"},
		{"LastDeleted", del(8), 8, "Event 8 is missing"},
	} {
		for _, stored := range []bool{false, true} {
			name := tc.name + "/Chunks"
			if stored {
				name = tc.name + "/StoredOrder"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				db := mustDB(t)
				l := mustLog(t, db, audit.Config{StoredOrder: stored})
				audit.SetChunk(l, 3)
				dataset(t, l, 8)
				if tc.tamper != nil {
					if err := tc.tamper(db.Collection(collection)); err != nil {
						t.Fatal(err)
					}
				}
				v, err := l.Verify(ctx)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tc.tamper == nil {
					if !v.OK || v.Checked != 8 || v.BrokenAt != 0 || v.Problem != "" {
						t.Fatalf("Verify = %+v", v)
					}
					return
				}
				if v.OK || v.BrokenAt != tc.brokenAt || !strings.Contains(v.Problem, tc.problem) || v.Checked != tc.brokenAt-1 {
					t.Fatalf("Verify = %+v, want broken at %d with %q", v, tc.brokenAt, tc.problem)
				}
			})
		}
	}

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		mustVerify(t, l, 0)
	})

	t.Run("AlteredAndRehashed", func(t *testing.T) {
		// Rewriting an event with a matching hash still breaks the link
		// from the event after it.
		t.Parallel()
		db := mustDB(t)
		l := mustLog(t, db, audit.Config{})
		evs := dataset(t, l, 6)
		e := *evs[2]
		e.Reason = "rewritten"
		e.Hash = audit.ComputeHash(&e)
		if _, err := db.Collection(collection).UpdateOne(ctx, bson.D{{Key: "_id", Value: e.Seq}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "reason", Value: e.Reason}, {Key: "hash", Value: e.Hash}}}}); err != nil {
			t.Fatal(err)
		}
		v, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.OK || v.BrokenAt != 4 || v.Checked != 3 {
			t.Fatalf("Verify = %+v", v)
		}
	})

	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		l := mustLog(t, mustDB(t), audit.Config{})
		cctx, cancel := context.WithTimeout(ctx, 0)
		defer cancel()
		_, err := l.Verify(cctx)
		wantCode(t, err, standin.EUnavailable)
	})
}
