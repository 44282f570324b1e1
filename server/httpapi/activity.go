package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"standin/server/audit"
	"standin/server/standin"
)

// origin is where a request came from, for the audit log.
func (a *API) origin(c *fiber.Ctx) standin.Origin {
	return standin.Origin{IP: c.IP(), UserAgent: truncate(c.Get(fiber.HeaderUserAgent), 256)}
}

// event builds an audit event for the principal: Subject is whose identity
// was used, Actor who acted.
func (a *API) event(c *fiber.Ctx, typ string, p *standin.Principal, action, object, project, outcome, reason string) *standin.Event {
	return p.EventOf(typ, a.origin(c)).Concerning(action, object, project, outcome, reason)
}

// audit appends events; it fails closed with EUnavailable.
func (a *API) audit(c *fiber.Ctx, evs ...*standin.Event) error {
	return a.cfg.Audit.Append(c.UserContext(), evs...)
}

// activityScope says which events the effective user may read: all of
// them (nil), or those of the projects where they may list activity. No
// scope at all is a 403 naming what is missing.
func (a *API) activityScope(c *fiber.Ctx) ([]string, error) {
	p := principal(c)
	sc, err := a.cfg.Access.ActivityScope(c.UserContext(), p)
	switch {
	case err != nil:
		return nil, err
	case sc.All:
		return nil, a.auditRead(c, p, "", sc.Global)
	case sc.Empty():
		if err := a.auditRead(c, p, "", sc.Global); err != nil {
			return nil, err
		}
		return nil, &standin.Error{Code: standin.EForbidden, Message: "You do not have permission to read the activity log.", Reason: sc.Global.Reason}
	}
	return sc.Projects, a.auditRead(c, p, "", standin.Decision{Allowed: true, Reason: "project lead"})
}

// auditDecision audits a decision made while impersonating, before it
// takes effect; outside impersonation it writes nothing. No audit, no
// action: its error must stop the request.
func (a *API) auditDecision(c *fiber.Ctx, p *standin.Principal, action, object, project string, dec standin.Decision) error {
	ev := p.DecisionEvent(action, object, project, dec, a.origin(c))
	if ev == nil {
		return nil
	}
	return a.audit(c, ev)
}

// auditRead audits an activity decision as the routes table's middleware
// does for other routes.
func (a *API) auditRead(c *fiber.Ctx, p *standin.Principal, project string, dec standin.Decision) error {
	return a.auditDecision(c, p, "activity.list", c.Method()+" "+c.Path(), project, dec)
}

// activityFilter reads the query string of the activity routes.
func activityFilter(c *fiber.Ctx, scope []string) (standin.EventFilter, error) {
	f := standin.EventFilter{
		Type: c.Query("type"), ActorID: c.Query("actor"), SubjectID: c.Query("subject"),
		ImpersonationID: c.Query("impersonation"), Project: c.Query("project"), Projects: scope,
	}
	if raw := c.Query("after_seq"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return f, standin.Errorf(standin.EInvalid, "after_seq must be a whole number of 0 or more.")
		}
		f.AfterSeq = n
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if raw := c.Query(name); raw != "" {
			t, err := parseTime(name, raw)
			if err != nil {
				return f, err
			}
			*dst = t
		}
	}
	return f, nil
}

func (a *API) listActivity(c *fiber.Ctx) error {
	scope, err := a.activityScope(c)
	if err != nil {
		return err
	}
	f, err := activityFilter(c, scope)
	if err != nil {
		return err
	}
	page := standin.Page{Cursor: c.Query("cursor"), Limit: 50}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 500 {
			return standin.Errorf(standin.EInvalid, "limit must be a whole number from 1 to 500.")
		}
		page.Limit = n
	}
	events, next, err := a.cfg.Audit.Query(c.UserContext(), f, page)
	if err != nil {
		return err
	}
	items := make([]audit.JSON, 0, len(events))
	for _, e := range events {
		items = append(items, audit.ViewJSON(e))
	}
	return c.JSON(list(items, next))
}

// errExportBroken is what the client of a failed export sees its
// transfer end with: the body is broken off before its last chunk.
var errExportBroken = errors.New("the activity export failed midway; its response was broken off")

func (a *API) exportActivity(c *fiber.Ctx) error {
	scope, err := a.activityScope(c)
	if err != nil {
		return err
	}
	f, err := activityFilter(c, scope)
	if err != nil {
		return err
	}
	format := c.Query("format", "jsonl")
	contentType := map[string]string{"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}[format]
	if contentType == "" {
		return standin.Errorf(standin.EInvalid, "format must be csv or jsonl.")
	}
	// Streamed: the log is written out in chunks as it is read, never
	// held whole in memory, through a pipe the response reads. The
	// request context is gone once the handler returns.
	ctx := context.WithoutCancel(c.UserContext())
	pr, pw := io.Pipe()
	body := &exportBody{PipeReader: pr}
	w := &firstWrite{w: pw, started: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		err := a.cfg.Audit.Export(ctx, f, format, w)
		switch {
		case err == nil:
			_ = pw.Close()
		case body.gone.Load():
			a.log.Info("activity export stopped: the client stopped reading", "err", err)
		default:
			// Ending the body cleanly would pass a part for the whole:
			// the response is broken off instead, so every client sees a
			// failed transfer.
			a.log.Error("activity export failed midway; the response is broken off", "err", err)
			_ = pw.CloseWithError(errExportBroken)
		}
		done <- err
	}()
	select {
	case <-w.started:
	case err := <-done:
		if err != nil {
			// Nothing was sent yet: the client gets the error itself.
			_ = pr.Close()
			return err
		}
	}
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="standin-activity.%s"`, format))
	if k, ok := a.cfg.Audit.PublicKey(); ok {
		c.Set("Standin-Audit-Key-Id", k.KeyID)
		c.Set("Standin-Audit-Public-Key", k.PublicKey)
	}
	c.Context().SetBodyStream(body, -1)
	return nil
}

// firstWrite closes started at the first write, before passing it on.
type firstWrite struct {
	w       io.Writer
	once    sync.Once
	started chan struct{}
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(func() { close(f.started) })
	return f.w.Write(p)
}

// exportBody is the read end of an export's pipe as the response reads
// it; gone records that the HTTP server closed it, which it does once it
// is done with the response: an export still writing then has lost its
// client (gone away, or the server shutting down).
type exportBody struct {
	*io.PipeReader
	gone atomic.Bool
}

// Close is how the HTTP server lets go of a body stream.
func (b *exportBody) Close() error {
	b.gone.Store(true)
	return b.PipeReader.Close()
}

// CloseWithError is how the HTTP server lets go of a body stream, with
// the error that stopped it writing (nil once all was written).
func (b *exportBody) CloseWithError(err error) error {
	b.gone.Store(true)
	return b.PipeReader.CloseWithError(err)
}

func checkJSON(v audit.Verification) fiber.Map {
	out := fiber.Map{"ok": v.OK, "checked": v.Checked}
	if !v.OK {
		out["broken_at"], out["code"], out["problem"] = v.BrokenAt, v.Code, v.Problem
	}
	return out
}

// wholeLog refuses a request about the whole log to those who may read
// only part of it.
func (a *API) wholeLog(c *fiber.Ctx, what string) error {
	scope, err := a.activityScope(c)
	if err != nil {
		return err
	}
	if scope != nil {
		return &standin.Error{Code: standin.EForbidden, Message: "You cannot " + what + ".",
			Reason: "It concerns all activity, which requires reading all of it (the role \"admin\" or higher)."}
	}
	return nil
}

func (a *API) verifyActivity(c *fiber.Ctx) error {
	// Verification walks the whole log: it is for those who may read all
	// of it.
	if err := a.wholeLog(c, "verify the whole activity log"); err != nil {
		return err
	}
	var run int64
	if q := c.Query("run"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n <= 0 {
			return standin.Errorf(standin.EInvalid, "The run %q is not one this server gave out.", q)
		}
		run = n
	}
	chk := a.cfg.Audit.Check(c.UserContext(), run, a.cfg.VerifyWait)
	if !chk.Done {
		// Still walking a large log: how far it has got, and the run to
		// ask for again.
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"state": "running", "run": chk.Run,
			"checked": chk.Checked, "head": chk.Head, "started_at": chk.Started.UTC().Format(time.RFC3339Nano)})
	}
	if chk.Err != nil {
		return chk.Err
	}
	v := chk.Result
	st := a.cfg.Audit.Status()
	out := checkJSON(v)
	out["run"] = chk.Run
	out["head"], out["checkpoints"], out["key_id"] = v.Head, v.Checkpoints, st.Key.KeyID
	if v.Anchor != nil {
		out["anchor"] = fiber.Map{"kind": v.Anchor.Kind, "seq": v.Anchor.Seq, "hash": v.Anchor.Hash, "time": v.Anchor.Time}
	}
	startup := checkJSON(st.Startup)
	delete(startup, "checked") // the check at start-up walks nothing
	out["startup"] = startup
	out["background"] = backgroundJSON(st.Background)
	if st.AnchorError != "" {
		out["anchor_error"] = st.AnchorError
	}
	return c.JSON(out)
}

// backgroundJSON is the verification the server runs after it starts.
func backgroundJSON(b audit.Background) fiber.Map {
	out := fiber.Map{"state": b.State}
	if !b.Started.IsZero() {
		out["started_at"] = b.Started.UTC().Format(time.RFC3339Nano)
	}
	if !b.Finished.IsZero() {
		out["finished_at"] = b.Finished.UTC().Format(time.RFC3339Nano)
	}
	if b.State == audit.BackgroundDone {
		maps.Copy(out, checkJSON(b.Result))
	}
	if b.Err != "" {
		out["error"] = b.Err
	}
	return out
}

func (a *API) activityKey(c *fiber.Ctx) error {
	if err := a.wholeLog(c, "read the activity log's signing key"); err != nil {
		return err
	}
	k, ok := a.cfg.Audit.PublicKey()
	if !ok {
		return standin.Errorf(standin.ENotFound, "The activity log is not signed on this server.")
	}
	return c.JSON(fiber.Map{"algorithm": k.Algorithm, "key_id": k.KeyID, "public_key": k.PublicKey, "pem": k.PEM})
}
