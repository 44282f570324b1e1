package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"standin/server/audit"
	"standin/server/standin"
)

// A stored event that no longer decodes (a field of the wrong type, as a
// hand edit in a database shell leaves it) stops nothing: the log opens,
// whether it loads recent events into memory or reads its head from the
// database, Verify names the damaged seq, Query, ByObject and Export
// carry on around it, and appends continue after the head.
func TestDamagedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		field  string
		value  any
		seq    int64
		reason string
	}{
		{"TimeString", "time", "yesterday", 5, "time"},
		{"ActorNumber", "actor", int64(7), 3, "actor"},
		{"ProjectsString", "projects", "p1", 8, "projects"},
		{"HashNumber", "hash", int64(1), 8, "hash"},
		{"SeqString", "seq", "five", 2, "seq"},
	} {
		for _, mode := range []struct {
			name string
			cfg  audit.Config
		}{
			{"Database", audit.Config{}},
			{"Window", audit.Config{Window: 100, StoredOrder: true}},
		} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				db := mustDB(t)
				writer := mustLog(t, db, audit.Config{})
				evs := dataset(t, writer, 8)
				if _, err := db.Collection(collection).UpdateOne(ctx, bson.D{{Key: "_id", Value: tc.seq}},
					bson.D{{Key: "$set", Value: bson.D{{Key: tc.field, Value: tc.value}}}}); err != nil {
					t.Fatal(err)
				}

				l, err := audit.Open(ctx, db.Events(), mode.cfg)
				if err != nil {
					t.Fatalf("Open over a damaged event: %v", err)
				}
				t.Cleanup(func() { _ = l.Close(context.Background()) })

				v, err := l.Verify(ctx)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if v.OK || v.BrokenAt != tc.seq || v.Checked != tc.seq-1 || v.Code != audit.ProblemDamaged ||
					!strings.Contains(v.Problem, "damaged") || !strings.Contains(v.Problem, tc.reason) {
					t.Fatalf("Verify = %+v, want event %d reported damaged (%s)", v, tc.seq, tc.reason)
				}

				page, _, err := l.Query(ctx, standin.EventFilter{}, standin.Page{Limit: 50})
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if len(page) != 8 || page[8-tc.seq].Seq != tc.seq {
					t.Fatalf("Query returned %v, want all 8 events, the damaged one in its place", seqsOf(page))
				}
				if _, err := l.ByObject(ctx, "", evs[tc.seq-1].Object); err != nil {
					t.Fatalf("ByObject: %v", err)
				}

				for _, format := range []string{audit.FormatCSV, audit.FormatJSONL} {
					var buf bytes.Buffer
					if err := l.Export(ctx, standin.EventFilter{}, format, &buf); err != nil {
						t.Fatalf("Export %s: %v", format, err)
					}
					if format == audit.FormatCSV {
						rows, err := csv.NewReader(&buf).ReadAll()
						if err != nil || len(rows) != 9 {
							t.Fatalf("CSV export: %d rows, %v", len(rows), err)
						}
					} else if got := parseJSONL(t, buf.Bytes()); len(got) != 8 {
						t.Fatalf("JSONL export has %d events", len(got))
					}
				}

				e := login("after")
				if err := l.Append(ctx, e); err != nil {
					t.Fatalf("Append after a damaged event: %v", err)
				}
				if e.Seq != 9 {
					t.Fatalf("appended at seq %d, want 9", e.Seq)
				}
			})
		}
	}

	t.Run("NotANumberID", func(t *testing.T) {
		// A document whose _id is not a seq is not an event of the
		// chain: the log opens and goes on around it.
		t.Parallel()
		db := mustDB(t)
		writer := mustLog(t, db, audit.Config{})
		dataset(t, writer, 4)
		if _, err := db.Collection(collection).InsertOne(ctx, bson.D{{Key: "_id", Value: "junk"}, {Key: "time", Value: 3}}); err != nil {
			t.Fatal(err)
		}
		for _, cfg := range []audit.Config{{}, {Window: 100, StoredOrder: true}} {
			l, err := audit.Open(ctx, db.Events(), cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			mustVerify(t, l, 4)
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}
