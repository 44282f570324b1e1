package httpapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"standin/server/audit"
	"standin/server/impersonation"
	"standin/server/livefeed"
	"standin/server/standin"
)

type impersonationJSON struct {
	ID        string         `json:"id"`
	Actor     audit.UserJSON `json:"actor"`
	Subject   audit.UserJSON `json:"subject"`
	Reason    string         `json:"reason"`
	Ticket    string         `json:"ticket,omitempty"`
	StartedAt string         `json:"started_at"`
	ExpiresAt string         `json:"expires_at"`
	EndedAt   string         `json:"ended_at,omitempty"`
	Cause     string         `json:"cause,omitempty"`
	EndedBy   string         `json:"ended_by,omitempty"`
	// EndedByName and EndedByEmail name who ended it; EndedWords says how
	// it ended in a few words ("Maria Manager (maria@example.org) ended
	// it").
	EndedByName  string `json:"ended_by_name,omitempty"`
	EndedByEmail string `json:"ended_by_email,omitempty"`
	EndedWords   string `json:"ended_words,omitempty"`
	// Moderated sessions run only while a moderator watches them;
	// Moderation says how one in force stands.
	Moderated  bool            `json:"moderated,omitempty"`
	Moderation *moderationJSON `json:"moderation,omitempty"`
}

// moderationJSON is how a moderated session in force stands: paused
// while nobody watches it (ending at ends_at if none comes), and who
// watches it.
type moderationJSON struct {
	Paused     bool             `json:"paused"`
	Moderators []audit.UserJSON `json:"moderators"`
	EndsAt     string           `json:"ends_at,omitempty"`
}

// withModeration adds to j how the moderated session imp stands, when it
// is in force.
func (a *API) withModeration(c *fiber.Ctx, imp *standin.Impersonation, j *impersonationJSON) error {
	if !imp.Moderated || !imp.EndedAt.IsZero() {
		return nil
	}
	v, err := a.cfg.Impersonations.Moderation(c.UserContext(), imp)
	if err != nil || v == nil {
		return err
	}
	m := &moderationJSON{Paused: v.Paused, Moderators: []audit.UserJSON{}, EndsAt: standin.FormatTime(v.EndsAt)}
	for _, u := range v.Moderators {
		m.Moderators = append(m.Moderators, audit.UserJSON{ID: u.ID, Name: u.Name})
	}
	j.Moderation = m
	return nil
}

func toImpersonationJSON(i *standin.Impersonation) impersonationJSON {
	j := impersonationJSON{
		ID: i.ID, Actor: audit.UserJSON{ID: i.ActorID, Name: i.ActorName}, Subject: audit.UserJSON{ID: i.SubjectID, Name: i.SubjectName},
		Reason: i.Reason, Ticket: i.Ticket, StartedAt: standin.FormatTime(i.StartedAt), ExpiresAt: standin.FormatTime(i.ExpiresAt),
		EndedAt: standin.FormatTime(i.EndedAt), Cause: i.Cause, EndedBy: i.EndedBy,
		EndedByName: i.EndedByName, EndedByEmail: i.EndedByEmail, Moderated: i.Moderated,
	}
	if !i.EndedAt.IsZero() {
		j.EndedWords = i.EndWords()
	}
	return j
}

type startRequest struct {
	UserID  string `json:"user_id"`
	Reason  string `json:"reason"`
	Ticket  string `json:"ticket"`
	Minutes int    `json:"minutes"`
}

// startImpersonation switches the session to the target on the same
// cookie name with a new token: no sign-in page, and the admin's own
// session continues underneath.
func (a *API) startImpersonation(c *fiber.Ctx) error {
	var req startRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	started, err := a.cfg.Impersonations.Start(c.UserContext(), principal(c),
		impersonation.Request{UserID: req.UserID, Reason: req.Reason, Ticket: req.Ticket, Minutes: req.Minutes}, a.origin(c))
	if err != nil {
		return err
	}
	if started.Request != nil {
		// The target's mode needs an answer first: nothing started yet.
		return c.Status(http.StatusAccepted).JSON(fiber.Map{"request": toRequestJSON(started.Request, a.cfg.Now())})
	}
	return a.answerStarted(c, started)
}

// answerStarted switches the session to a started impersonation and
// answers 201 with it.
func (a *API) answerStarted(c *fiber.Ctx, started *impersonation.Started) error {
	a.setSessionCookie(c, started.Token, a.cfg.Sessions.Deadline(started.Session))
	return c.Status(http.StatusCreated).JSON(fiber.Map{
		"id": started.Impersonation.ID, "actor": audit.UserJSON{ID: started.Impersonation.ActorID, Name: started.Impersonation.ActorName},
		"subject": audit.UserJSON{ID: started.Impersonation.SubjectID, Name: started.Impersonation.SubjectName},
		"reason":  started.Impersonation.Reason, "ticket": started.Impersonation.Ticket,
		"started_at": standin.FormatTime(started.Impersonation.StartedAt), "expires_at": standin.FormatTime(started.Impersonation.ExpiresAt),
		"csrf_token": started.Session.CSRFToken,
	})
}

// stopImpersonation returns the session to the admin at once, with a new
// token, and answers with the ended impersonation and its cause. From
// another of the agent's sessions it ends the impersonation they hold.
func (a *API) stopImpersonation(c *fiber.Ctx) error {
	imp, token, sess, err := a.cfg.Impersonations.Stop(c.UserContext(), principal(c), a.origin(c))
	if err != nil {
		return err
	}
	if token != "" { // ended from another of the actor's sessions: this one stays
		a.setSessionCookie(c, token, a.cfg.Sessions.Deadline(sess))
	}
	return c.JSON(stoppedJSON{impersonationJSON: toImpersonationJSON(imp), CSRFToken: sess.CSRFToken})
}

// stoppedJSON answers the actor's exit: the ended impersonation, and the
// CSRF token of the session they are back in.
type stoppedJSON struct {
	impersonationJSON
	CSRFToken string `json:"csrf_token"`
}

func (a *API) listImpersonations(c *fiber.Ctx) error {
	if c.Query("active", "true") != "true" {
		return standin.Errorf(standin.EInvalid, "Only active impersonations are listed here (active=true); past ones are in the activity log.")
	}
	active, err := a.cfg.Impersonations.Active(c.UserContext(), principal(c).Subject)
	if err != nil {
		return err
	}
	items := make([]impersonationJSON, 0, len(active))
	for _, imp := range active {
		j := toImpersonationJSON(imp)
		if err := a.withModeration(c, imp, &j); err != nil {
			return err
		}
		items = append(items, j)
	}
	return c.JSON(list(items, ""))
}

// getImpersonation answers one impersonation, running or ended, with its
// cause: a page that finds itself back as the agent learns why from it.
func (a *API) getImpersonation(c *fiber.Ctx) error {
	imp, err := a.cfg.Impersonations.Get(c.UserContext(), principal(c).Subject, c.Params("id"))
	if err != nil {
		return err
	}
	return a.answerImpersonation(c, imp)
}

// answerImpersonation answers imp, and how it stands when moderated.
func (a *API) answerImpersonation(c *fiber.Ctx, imp *standin.Impersonation) error {
	j := toImpersonationJSON(imp)
	if err := a.withModeration(c, imp, &j); err != nil {
		return err
	}
	return c.JSON(j)
}

// watchSession answers PUT /impersonations/{id}/moderator {view_id}: the
// moderator's page view_id watches the moderated session live, renewed
// while the page's live connection is open. It answers the session as
// it stands.
func (a *API) watchSession(c *fiber.Ctx) error {
	var req struct {
		ViewID string `json:"view_id"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if !validViewID(req.ViewID) {
		return standin.Errorf(standin.EInvalid, "view_id must be 1 to 64 letters, digits, '-' or '_'.")
	}
	imp, err := a.cfg.Impersonations.WatchSession(c.UserContext(), principal(c), c.Params("id"), req.ViewID)
	if err != nil {
		return err
	}
	return a.answerImpersonation(c, imp)
}

// unwatchSession answers DELETE /impersonations/{id}/moderator/{view}:
// the moderator's page closed.
func (a *API) unwatchSession(c *fiber.Ctx) error {
	view := c.Params("view")
	if !validViewID(view) {
		return standin.Errorf(standin.EInvalid, "The view id must be 1 to 64 letters, digits, '-' or '_'.")
	}
	a.cfg.Impersonations.UnwatchSession(c.UserContext(), principal(c), c.Params("id"), view)
	return c.SendStatus(fiber.StatusNoContent)
}

// summaryItemJSON is one change or refusal of a summary: the event
// without the agent's address and user agent.
type summaryItemJSON struct {
	Seq     int64  `json:"seq"`
	Time    string `json:"time"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Object  string `json:"object,omitempty"`
	Project string `json:"project,omitempty"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

type summaryJSON struct {
	Impersonation impersonationJSON `json:"impersonation"`
	Words         string            `json:"words"`
	Changes       []summaryItemJSON `json:"changes"`
	Refusals      []summaryItemJSON `json:"refusals"`
}

func summaryItems(evs []*standin.Event) []summaryItemJSON {
	out := make([]summaryItemJSON, 0, len(evs))
	for _, e := range evs {
		out = append(out, summaryItemJSON{Seq: e.Seq, Time: standin.FormatTime(e.Time), Type: e.Type, Action: e.Action,
			Object: e.Object, Project: e.Project, Outcome: e.Outcome, Reason: e.Reason})
	}
	return out
}

// impersonationSummary answers every change and refusal made in the
// user's name during one impersonation.
func (a *API) impersonationSummary(c *fiber.Ctx) error {
	sum, err := a.cfg.Impersonations.Summary(c.UserContext(), principal(c).Subject, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(summaryJSON{Impersonation: toImpersonationJSON(sum.Impersonation), Words: sum.Words(),
		Changes: summaryItems(sum.Changes), Refusals: summaryItems(sum.Refusals)})
}

func (a *API) revokeImpersonation(c *fiber.Ctx) error {
	imp, err := a.cfg.Impersonations.Revoke(c.UserContext(), principal(c), c.Params("id"), a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(toImpersonationJSON(imp))
}

func (a *API) listNotifications(c *fiber.Ctx) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	notes, next, err := a.cfg.Notifications.Notifications(c.UserContext(), principal(c).Subject.ID, page)
	if err != nil {
		return err
	}
	items := make([]livefeed.NotificationJSON, 0, len(notes))
	for _, n := range notes {
		items = append(items, livefeed.NotificationView(n))
	}
	return c.JSON(list(items, next))
}
