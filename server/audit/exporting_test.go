package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"standin/server/audit"
	"standin/server/standin"
)

// parseJSONL reads a JSON Lines export back.
func parseJSONL(t *testing.T, data []byte) []*standin.Event {
	t.Helper()
	var out []*standin.Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var j audit.JSON
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		e, err := j.Event()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustDB(t)
	l := mustLog(t, db, audit.Config{})
	audit.SetChunk(l, 6)
	evs := dataset(t, l, 40)
	tricky := &standin.Event{Type: standin.EventActionDenied, Reason: "=HYPERLINK(\"x\"), \"quoted\"\nnext line",
		UserAgent: "-1+1", Actor: standin.EventUser{ID: "@me", Name: "Zoë <b>&"}, Projects: []string{"p1", "p2"}}
	mustAppend(t, l, tricky)
	evs = append(evs, tricky)
	// The same export from a Log that walks the database in stored order.
	stored := mustLog(t, db, audit.Config{StoredOrder: true})
	readers := []struct {
		name string
		l    *audit.Log
	}{{"Chunks", l}, {"StoredOrder", stored}}

	for _, tc := range []struct {
		name string
		f    standin.EventFilter
	}{
		{"All", standin.EventFilter{}},
		{"Type", standin.EventFilter{Type: standin.EventActionDenied}},
		{"Projects", standin.EventFilter{Projects: []string{"p3"}}},
		{"ProjectsEmpty", standin.EventFilter{Projects: []string{}}},
		{"AfterSeq", standin.EventFilter{AfterSeq: 33}},
	} {
		var want []*standin.Event
		for _, e := range evs {
			if matches(e, tc.f) {
				want = append(want, e)
			}
		}
		for _, r := range readers {
			t.Run(tc.name+"/JSONL/"+r.name, func(t *testing.T) {
				t.Parallel()
				var buf bytes.Buffer
				if err := r.l.Export(ctx, tc.f, audit.FormatJSONL, &buf); err != nil {
					t.Fatalf("Export: %v", err)
				}
				got := parseJSONL(t, buf.Bytes())
				if len(got) != len(want) || strings.Count(buf.String(), "\n") != len(want) {
					t.Fatalf("%d events in %d lines, want %d", len(got), strings.Count(buf.String(), "\n"), len(want))
				}
				for i, e := range got {
					w := want[i]
					if e.Seq != w.Seq || e.ID != w.ID || e.Reason != w.Reason || e.Actor != w.Actor || !e.Time.Equal(w.Time) || e.Hash != w.Hash {
						t.Fatalf("line %d: %+v\nwant %+v", i, e, w)
					}
					// The export is enough to check every hash.
					if audit.ComputeHash(e) != e.Hash {
						t.Fatalf("event %d does not re-hash from its export", e.Seq)
					}
				}
			})
		}
		t.Run(tc.name+"/CSV", func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := l.Export(ctx, tc.f, audit.FormatCSV, &buf); err != nil {
				t.Fatalf("Export: %v", err)
			}
			rows, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(want)+1 || !slices.Equal(rows[0], audit.CSVHeader()) {
				t.Fatalf("%d rows, header %v; want %d rows", len(rows), rows[0], len(want)+1)
			}
			col := map[string]int{}
			for i, name := range rows[0] {
				col[name] = i
			}
			for i, row := range rows[1:] {
				w := want[i]
				if row[col["seq"]] != strconv.FormatInt(w.Seq, 10) || row[col["id"]] != w.ID || row[col["hash"]] != w.Hash ||
					row[col["type"]] != w.Type || row[col["subject_id"]] != w.Subject.ID ||
					row[col["time"]] != w.Time.UTC().Format(audit.TimeLayout) || row[col["projects"]] != strings.Join(w.Projects, ";") {
					t.Fatalf("row %d: %v\nwant %+v", i, row, w)
				}
			}
		})
	}

	t.Run("FormulaCellsEscaped", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		if err := l.Export(ctx, standin.EventFilter{AfterSeq: tricky.Seq - 1}, audit.FormatCSV, &buf); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		row := rows[1]
		for name, want := range map[int]string{
			13: "'" + tricky.Reason, // reason
			15: "'-1+1",             // user_agent
			4:  "'@me",              // actor_id
			5:  "Zoë <b>&",          // actor_name
		} {
			if row[name] != want {
				t.Errorf("column %s = %q, want %q", audit.CSVHeader()[name], row[name], want)
			}
		}
	})

	t.Run("BadFormat", func(t *testing.T) {
		t.Parallel()
		for _, format := range []string{"", "xml", "CSV", "json"} {
			var buf bytes.Buffer
			wantCode(t, l.Export(ctx, standin.EventFilter{}, format, &buf), standin.EInvalid)
			if buf.Len() != 0 {
				t.Errorf("format %q wrote %q", format, buf.String())
			}
		}
		wantCode(t, l.Export(ctx, standin.EventFilter{AfterSeq: -1}, audit.FormatCSV, &bytes.Buffer{}), standin.EInvalid)
	})

	t.Run("WriterFails", func(t *testing.T) {
		t.Parallel()
		for _, format := range []string{audit.FormatCSV, audit.FormatJSONL} {
			err := l.Export(ctx, standin.EventFilter{}, format, failingWriter{})
			if !errors.Is(err, errDiskFull) {
				t.Errorf("%s: Export = %v", format, err)
			}
		}
	})

	t.Run("EventJSON", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(audit.EventJSON(&standin.Event{Seq: 3, Time: base}))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"id", "seq", "time", "type", "actor", "subject", "impersonation_id", "action",
			"object", "project", "outcome", "reason", "ip", "user_agent", "projects", "prev_hash", "hash"} {
			if _, ok := m[key]; !ok {
				t.Errorf("no %q in %s", key, b)
			}
		}
		if m["time"] != "2026-05-01T09:00:00.000Z" || m["seq"] != 3.0 {
			t.Errorf("got %s", b)
		}
		if a, ok := m["actor"].(map[string]any); !ok || a["id"] != "" || a["name"] != "" {
			t.Errorf("actor %v", m["actor"])
		}
		if p, ok := m["projects"].([]any); !ok || len(p) != 0 {
			t.Errorf("projects %v", m["projects"])
		}
	})
}

var errDiskFull = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }
