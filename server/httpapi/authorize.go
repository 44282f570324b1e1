package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"standin/server/standin"
)

// target resolves, before the handler runs, which project a request acts
// in and, where ownership matters, which object kind applies.
type target func(c *fiber.Ctx) (kind, project string, err error)

type decisionKey struct{}

// authorize decides r for the effective principal before the handler runs;
// a denial is a 403 whose reason names what is missing.
//
// While impersonating, each request is one audit event with its final
// outcome (PRODUCT §5): a denial here is written before the 403; an
// allowed request is recorded by its workflow (a route that records
// itself) or by its outcome once the handler has run, before the answer
// leaves. The console's bookkeeping writes nothing.
func (a *API) authorize(r rule) fiber.Handler {
	return func(c *fiber.Ctx) error {
		kind, project := r.kind, ""
		if r.target != nil {
			k, p, err := r.target(c)
			if err != nil {
				return err
			}
			if k != "" {
				kind = k
			}
			project = p
		}
		p := principal(c)
		dec, err := a.decide(c, r, p, kind, project)
		if err != nil {
			return err
		}
		action := kind + "." + r.action
		if !dec.Allowed {
			if !r.bookkeeping {
				if err := a.auditDecision(c, p, action, c.Method()+" "+c.Path(), project, dec); err != nil {
					return err
				}
			}
			return &standin.Error{Code: standin.EForbidden, Message: "You do not have permission to do that.", Reason: dec.Reason}
		}
		c.Locals(decisionKey{}, dec)
		if p.Impersonation == nil || r.bookkeeping {
			return c.Next()
		}
		return a.recordOutcome(c, p, action, project)
	}
}

// decide decides r on kind in project for p: the policies, then what
// impersonation adds (see impersonationLimits).
func (a *API) decide(c *fiber.Ctx, r rule, p *standin.Principal, kind, project string) (standin.Decision, error) {
	dec, err := a.cfg.Access.Decide(c.UserContext(), p, r.action, standin.Object{Kind: kind}, project)
	if err != nil {
		return standin.Decision{}, err
	}
	if dec.Allowed && p.Impersonation != nil {
		dec = a.impersonationLimits(c, r, p, dec)
	}
	return dec, nil
}

// refuseWhilePaused refuses every request of an actor whose moderated
// session nobody watches (423, session_paused), audited as a denial of
// action like any refusal while impersonating.
func (a *API) refuseWhilePaused(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p := principal(c)
		if p.Impersonation == nil || !a.cfg.Impersonations.Paused(p.Impersonation) {
			return c.Next()
		}
		refusal := a.cfg.Impersonations.PausedError(c.UserContext(), p.Impersonation)
		reason := refusal.Error()
		if e, ok := errors.AsType[*standin.Error](refusal); ok {
			reason = e.Message + " " + e.Reason
		}
		if err := a.audit(c, a.event(c, standin.EventActionDenied, p, action, c.Method()+" "+c.Path(), "", "denied", reason)); err != nil {
			return err
		}
		return refusal
	}
}

// auditImpersonated audits, while impersonating, a signedIn route that has
// no rule of its own, by its outcome (see recordOutcome).
func (a *API) auditImpersonated(c *fiber.Ctx) error {
	p := principal(c)
	if p.Impersonation == nil {
		return c.Next()
	}
	return a.recordOutcome(c, p, c.Method()+" "+c.Route().Path, "")
}

// recordOutcome runs the handler of a request made while impersonating
// and, unless its workflow wrote the event that records it (a commit
// record, a refusal), writes one by its outcome: allowed, denied (403 and
// 409, with the reason) or failed. The event is committed before the
// response leaves; if it cannot be, the response is replaced by a 503.
func (a *API) recordOutcome(c *fiber.Ctx, p *standin.Principal, action, project string) error {
	ctx, rec := standin.WithRecord(c.UserContext())
	c.SetUserContext(ctx)
	herr := c.Next()
	if rec.Written() {
		return herr
	}
	// The handler may have bounded its own context, now ended: the
	// event is written under the request's.
	c.SetUserContext(ctx)
	status := c.Response().StatusCode()
	if herr != nil {
		_, status = errorResponse(herr)
	}
	typ, outcome, reason := standin.EventActionAllowed, "allowed", ""
	if status == fiber.StatusForbidden || status == fiber.StatusConflict {
		typ, outcome = standin.EventActionDenied, "denied"
		if e, ok := errors.AsType[*standin.Error](herr); ok {
			reason = e.Message
			if e.Reason != "" {
				reason = e.Reason
			}
		}
	} else if status >= 400 {
		outcome = "failed"
	}
	if err := a.audit(c, a.event(c, typ, p, action, c.Method()+" "+c.Path(), project, outcome, reason)); err != nil {
		c.Response().ResetBody()
		return err
	}
	return herr
}

// impersonationLimits refuses, while impersonating, what the subject may do
// but an impersonating actor may not: sensitive actions always, and
// destructive ones unless policy grants the actor that right.
func (a *API) impersonationLimits(c *fiber.Ctx, r rule, p *standin.Principal, dec standin.Decision) standin.Decision {
	switch {
	case r.sensitive:
		return standin.Decision{Reason: "This is never allowed while impersonating: only " + p.Subject.Name + " may do it, signed in as themselves."}
	case r.destructive:
		actor := &standin.Principal{Actor: p.Actor, Subject: p.Actor, Session: p.Session}
		granted, err := a.cfg.Access.Decide(c.UserContext(), actor, standin.ActDestructive, standin.Object{Kind: standin.KindImpersonation}, "")
		if err != nil || !granted.Allowed {
			return standin.Decision{Reason: "Destructive actions are refused while impersonating unless policy grants your own role the right (impersonation: destructive)."}
		}
	}
	return dec
}

// queryProject resolves ?project= to a known project id ("" when absent).
func (a *API) queryProject(c *fiber.Ctx) (string, error) {
	id := c.Query("project")
	if id == "" {
		return "", nil
	}
	p, err := a.cfg.Facility.ProjectByID(c.UserContext(), id)
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

// bookingsScope lists one's own bookings, or with ?project= a project's:
// the latter needs the right to see the whole project's bookings.
func (a *API) bookingsScope(c *fiber.Ctx) (string, string, error) {
	project, err := a.queryProject(c)
	if err != nil || project == "" {
		return "", "", err
	}
	return standin.KindBookingProject, project, nil
}

// bodyProject reads project_id from a JSON body; the handler validates the
// body fully afterwards.
func (a *API) bodyProject(c *fiber.Ctx) (string, string, error) {
	var body struct {
		ProjectID string `json:"project_id"`
	}
	if err := requireJSON(c); err != nil {
		return "", "", err
	}
	if err := json.Unmarshal(c.Body(), &body); err != nil {
		return "", "", &standin.Error{Code: standin.EMalformedJSON, Message: jsonProblem(err), Cause: err}
	}
	if body.ProjectID == "" {
		return "", "", standin.Errorf(standin.EInvalid, "Choose the project to book in (project_id).")
	}
	p, err := a.cfg.Facility.ProjectByID(c.UserContext(), body.ProjectID)
	if err != nil {
		return "", "", err
	}
	return "", p.ID, nil
}

type bookingKey struct{}

// bookingTarget loads the booking of :id: cancelling one's own booking
// and someone else's are different rights, both in the booking's project.
func (a *API) bookingTarget(c *fiber.Ctx) (string, string, error) {
	b, err := a.cfg.Facility.BookingByID(c.UserContext(), c.Params("id"))
	if err != nil {
		return "", "", err
	}
	p := principal(c)
	if b.UserID != p.Subject.ID {
		// Someone else's booking exists for the caller only if they may
		// see the project's bookings; otherwise it answers as an unknown
		// id does, so that a refusal reveals nothing.
		see, err := a.cfg.Access.Decide(c.UserContext(), p, standin.ActList, standin.Object{Kind: standin.KindBookingProject}, b.ProjectID)
		if err != nil {
			return "", "", err
		}
		if !see.Allowed {
			return "", "", standin.Errorf(standin.ENotFound, "No booking with id %q.", c.Params("id"))
		}
		c.Locals(bookingKey{}, b)
		return standin.KindBookingAny, b.ProjectID, nil
	}
	c.Locals(bookingKey{}, b)
	return standin.KindBookingOwn, b.ProjectID, nil
}

func loadedBooking(c *fiber.Ctx) *standin.Booking {
	b, ok := c.Locals(bookingKey{}).(*standin.Booking)
	if !ok {
		panic(fmt.Sprintf("httpapi: %s %s has no booking target", c.Method(), c.Path()))
	}
	return b
}
