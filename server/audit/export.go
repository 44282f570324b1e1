package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"standin/server/standin"
)

// UserJSON is a person in an event's JSON form.
type UserJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// JSON is an audit event's JSON form (PRODUCT.md section 8), the one
// definition of it: the activity API and the live feed show it as
// ViewJSON makes it, the JSON Lines export writes it as EventJSON makes
// it. Every field is always present, and those of Chain too in the
// export.
type JSON struct {
	ID              string   `json:"id"`
	Seq             int64    `json:"seq"`
	Time            string   `json:"time"`
	Type            string   `json:"type"`
	Actor           UserJSON `json:"actor"`
	Subject         UserJSON `json:"subject"`
	ImpersonationID string   `json:"impersonation_id"`
	Action          string   `json:"action"`
	Object          string   `json:"object"`
	Project         string   `json:"project"`
	Outcome         string   `json:"outcome"`
	Reason          string   `json:"reason"`
	IP              string   `json:"ip"`
	UserAgent       string   `json:"user_agent"`
	// Chain is nil, and its fields absent, where the event is shown
	// rather than exported.
	*Chain
	Hash string `json:"hash"`
}

// Chain holds the fields of an exported event that, with its hash, make
// the hash chain checkable from outside.
type Chain struct {
	Projects []string `json:"projects"`
	PrevHash string   `json:"prev_hash"`
}

// EventJSON converts an event to its exported JSON form: with Chain, and
// the time formatted with TimeLayout, exactly as it is hashed.
func EventJSON(e *standin.Event) JSON {
	projects := e.Projects
	if projects == nil {
		projects = []string{}
	}
	j := jsonOf(e, formatTime(e.Time))
	j.Chain = &Chain{Projects: projects, PrevHash: e.PrevHash}
	return j
}

// ViewJSON converts an event to the JSON form the activity API and the
// live feed show: without Chain, the time in RFC 3339 with as many
// fractional digits as it needs.
func ViewJSON(e *standin.Event) JSON {
	return jsonOf(e, e.Time.UTC().Format(time.RFC3339Nano))
}

func jsonOf(e *standin.Event, t string) JSON {
	return JSON{
		ID: e.ID, Seq: e.Seq, Time: t, Type: e.Type,
		Actor:           UserJSON{ID: e.Actor.ID, Name: e.Actor.Name},
		Subject:         UserJSON{ID: e.Subject.ID, Name: e.Subject.Name},
		ImpersonationID: e.ImpersonationID, Action: e.Action, Object: e.Object, Project: e.Project,
		Outcome: e.Outcome, Reason: e.Reason, IP: e.IP, UserAgent: e.UserAgent, Hash: e.Hash,
	}
}

// Event converts the JSON form back, for tools that check an export with
// ComputeHash. It returns EInvalid for a time that is not RFC 3339.
func (j JSON) Event() (*standin.Event, error) {
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return nil, standin.Errorf(standin.EInvalid, "Event %d has a malformed time %q.", j.Seq, j.Time)
	}
	e := &standin.Event{
		ID: j.ID, Seq: j.Seq, Time: t.UTC(), Type: j.Type,
		Actor:           standin.EventUser{ID: j.Actor.ID, Name: j.Actor.Name},
		Subject:         standin.EventUser{ID: j.Subject.ID, Name: j.Subject.Name},
		ImpersonationID: j.ImpersonationID, Action: j.Action, Object: j.Object, Project: j.Project,
		Outcome: j.Outcome, Reason: j.Reason, IP: j.IP, UserAgent: j.UserAgent, Hash: j.Hash,
	}
	if j.Chain != nil {
		e.Projects, e.PrevHash = j.Chain.Projects, j.Chain.PrevHash
	}
	return e, nil
}

// Export formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// CSVHeader returns the header row of the CSV export. Columns follow the
// JSON field names, with actor and subject flattened to actor_id,
// actor_name, subject_id and subject_name, and projects joined by ";".
func CSVHeader() []string {
	return []string{"id", "seq", "time", "type", "actor_id", "actor_name", "subject_id", "subject_name",
		"impersonation_id", "action", "object", "project", "outcome", "reason", "ip", "user_agent",
		"projects", "prev_hash", "hash"}
}

// ExportVersion labels the first record of a JSON Lines export from an
// anchored log.
const ExportVersion = "standin-audit-export-v1"

// ExportHeader is the first record of a JSON Lines export from an
// anchored log: {"export": {...}}. It names the encodings and the public
// key the checkpoints that follow are signed with.
type ExportHeader struct {
	Export ExportInfo `json:"export"`
}

// ExportInfo is the content of an ExportHeader.
type ExportInfo struct {
	Version           string    `json:"version"`
	HashVersion       string    `json:"hash_version"`
	CheckpointVersion string    `json:"checkpoint_version"`
	Key               PublicKey `json:"key"`
	// Checkpoints says whether checkpoint records follow: only an export
	// of the whole log (or of all of it after a seq) carries them.
	Checkpoints bool `json:"checkpoints"`
}

// CheckpointRecord is a checkpoint in a JSON Lines export:
// {"checkpoint": {...}}, right after the event whose seq it signs.
type CheckpointRecord struct {
	Checkpoint Checkpoint `json:"checkpoint"`
}

// Export writes the events matching f (as Query filters them; AfterSeq is
// where the export starts) to w in ascending seq order, in format
// FormatCSV (a header row, then one row per event) or FormatJSONL (one
// JSON object per line, as EventJSON makes it). It reads the log in chunks and
// writes as it goes, so the whole log is never in memory.
//
// The CSV export is for people and spreadsheets: a cell that begins with
// "=", "+", "-", "@", a tab or a carriage return is prefixed with "'" so a
// spreadsheet does not run it as a formula. The JSON Lines export is exact
// and is the one to check hashes against. From an anchored log it starts
// with an ExportHeader naming the public key, and when f filters nothing
// but AfterSeq, each checkpoint above AfterSeq (every one, from the start)
// follows the event whose seq it signs (a CheckpointRecord; one beyond the
// last event comes at the end, showing that events it records are
// missing), so that anyone with the export and the key can check the
// chain and who vouched for it.
//
// Errors: EInvalid for another format or a negative AfterSeq (nothing is
// written then); EUnavailable when the database cannot be reached; the
// error of w when writing fails. After an error, w may hold part of the
// export, so a caller streaming it over HTTP should break the response off
// rather than end it cleanly.
func (l *Log) Export(ctx context.Context, f standin.EventFilter, format string, w io.Writer) error {
	if format != FormatCSV && format != FormatJSONL {
		return standin.Errorf(standin.EInvalid, "Export format %q is not one of csv or jsonl.", format)
	}
	none, err := checkFilter(f)
	if err != nil {
		return err
	}
	// Both writers buffer, so the walk never waits on w for each event.
	var x exporter
	if format == FormatCSV {
		x, err = newCSVExport(w)
	} else {
		x, err = l.newJSONLExport(w, f.AfterSeq, !filtered(f) && !none)
	}
	if err != nil {
		return fmt.Errorf("export audit log: %w", err)
	}
	defer x.close()
	if !none {
		if err := l.walk(ctx, f.AfterSeq, f, false, x.event); err != nil {
			return err
		}
	}
	return x.finish()
}

// exporter writes the events of an export in one format.
type exporter interface {
	// event writes one event.
	event(d Stored) error
	// finish writes what follows the last event and flushes.
	finish() error
	// close lets go of what the export holds open.
	close()
}

// csvExport writes CSV: a header row, then a row an event.
type csvExport struct{ cw *csv.Writer }

func newCSVExport(w io.Writer) (*csvExport, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader()); err != nil {
		return nil, err
	}
	return &csvExport{cw: cw}, nil
}

func (x *csvExport) event(d Stored) error {
	if err := x.cw.Write(csvRow(d.Event)); err != nil {
		return fmt.Errorf("export audit log: %w", err)
	}
	return nil
}

func (x *csvExport) finish() error {
	x.cw.Flush()
	if err := x.cw.Error(); err != nil {
		return fmt.Errorf("export audit log: %w", err)
	}
	return nil
}

func (x *csvExport) close() {}

// jsonlExport writes JSON Lines: with an anchor, a header naming the key,
// then the events, and for an export of the whole log the signed
// checkpoints, each right after the event it signs.
type jsonlExport struct {
	bw  *bufio.Writer
	enc *json.Encoder
	cps *checkpointReader // nil unless checkpoints are written
}

func (l *Log) newJSONLExport(w io.Writer, afterSeq int64, whole bool) (*jsonlExport, error) {
	x := &jsonlExport{bw: bufio.NewWriterSize(w, 64<<10)}
	x.enc = json.NewEncoder(x.bw)
	x.enc.SetEscapeHTML(false)
	if l.anchor == nil {
		return x, nil
	}
	if whole {
		x.cps = l.anchor.reader(afterSeq)
	}
	h := ExportHeader{Export: ExportInfo{Version: ExportVersion, HashVersion: HashVersion,
		CheckpointVersion: CheckpointVersion, Key: l.anchor.PublicKey(), Checkpoints: whole}}
	if err := x.enc.Encode(h); err != nil {
		x.close()
		return nil, err
	}
	return x, nil
}

func (x *jsonlExport) event(d Stored) error {
	if err := x.checkpointsTo(d.Seq - 1); err != nil {
		return err
	}
	if err := x.enc.Encode(EventJSON(d.Event)); err != nil {
		return fmt.Errorf("export audit log: %w", err)
	}
	return x.checkpointsTo(d.Seq)
}

// checkpointsTo writes the checkpoints not yet written that sign seqs up
// to seq.
func (x *jsonlExport) checkpointsTo(seq int64) error {
	for x.cps != nil {
		c, err := x.cps.peek()
		if err != nil {
			return fmt.Errorf("export audit log: %w", err)
		}
		if c == nil || c.Seq > seq {
			return nil
		}
		if err := x.enc.Encode(CheckpointRecord{Checkpoint: *c}); err != nil {
			return fmt.Errorf("export audit log: %w", err)
		}
		x.cps.pop()
	}
	return nil
}

func (x *jsonlExport) finish() error {
	if err := x.checkpointsTo(math.MaxInt64); err != nil {
		return err
	}
	if err := x.bw.Flush(); err != nil {
		return fmt.Errorf("export audit log: %w", err)
	}
	return nil
}

func (x *jsonlExport) close() {
	if x.cps != nil {
		x.cps.close()
	}
}

// csvRow is e as a CSV row in the order of CSVHeader, with cells a
// spreadsheet would take for formulas defused.
func csvRow(e *standin.Event) []string {
	row := []string{e.ID, strconv.FormatInt(e.Seq, 10), formatTime(e.Time), e.Type,
		e.Actor.ID, e.Actor.Name, e.Subject.ID, e.Subject.Name, e.ImpersonationID,
		e.Action, e.Object, e.Project, e.Outcome, e.Reason, e.IP, e.UserAgent,
		strings.Join(e.Projects, ";"), e.PrevHash, e.Hash}
	for i, c := range row {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			row[i] = "'" + c
		}
	}
	return row
}
