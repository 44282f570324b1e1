package httpapi

import (
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"standin/server/audit"
	"standin/server/standin"
)

type voteJSON struct {
	By   audit.UserJSON `json:"by"`
	At   string         `json:"at"`
	Note string         `json:"note,omitempty"`
}

type outcomeJSON struct {
	Status string          `json:"status"`
	By     *audit.UserJSON `json:"by,omitempty"`
	At     string          `json:"at"`
	Note   string          `json:"note,omitempty"`
}

// requestJSON is a request to impersonate as the API shows it.
type requestJSON struct {
	ID              string         `json:"id"`
	Status          string         `json:"status"`
	Mode            string         `json:"mode"`
	Actor           audit.UserJSON `json:"actor"`
	Subject         audit.UserJSON `json:"subject"`
	Reason          string         `json:"reason"`
	Ticket          string         `json:"ticket,omitempty"`
	Minutes         int            `json:"minutes"`
	ApprovalsNeeded int            `json:"approvals_needed,omitempty"`
	Approvals       []voteJSON     `json:"approvals"`
	CreatedAt       string         `json:"created_at"`
	ExpiresAt       string         `json:"expires_at"`
	StartBy         string         `json:"start_by,omitempty"`
	Outcome         *outcomeJSON   `json:"outcome,omitempty"`
}

func toRequestJSON(r *standin.AccessRequest, now time.Time) requestJSON {
	j := requestJSON{ID: r.ID, Status: r.Status(now), Mode: string(r.Mode),
		Actor: audit.UserJSON{ID: r.ActorID, Name: r.ActorName}, Subject: audit.UserJSON{ID: r.SubjectID, Name: r.SubjectName},
		Reason: r.Reason, Ticket: r.Ticket, Minutes: r.Minutes, ApprovalsNeeded: r.Approvals, Approvals: []voteJSON{},
		CreatedAt: standin.FormatTime(r.CreatedAt), ExpiresAt: standin.FormatTime(r.ExpiresAt), StartBy: standin.FormatTime(r.StartBy())}
	for _, v := range r.Votes {
		j.Approvals = append(j.Approvals, voteJSON{By: audit.UserJSON(v.By), At: standin.FormatTime(v.At), Note: v.Note})
	}
	if o := r.Outcome; o != nil {
		j.Outcome = &outcomeJSON{Status: o.Status, At: standin.FormatTime(o.At), Note: o.Note}
		if o.By.ID != "" {
			j.Outcome.By = &audit.UserJSON{ID: o.By.ID, Name: o.By.Name}
		}
	}
	return j
}

// answerRequest is the body of an answer: an optional note.
type answerRequest struct {
	Note string `json:"note"`
}

// decodeAnswer reads an answer's body, which may be empty.
func decodeAnswer(c *fiber.Ctx) (string, error) {
	var req answerRequest
	if len(c.Body()) == 0 {
		return "", nil
	}
	if err := decodeJSON(c, &req); err != nil {
		return "", err
	}
	return req.Note, nil
}

// listRequests answers the pending requests the caller may see: their
// own, those asking for their consent, those they may approve.
func (a *API) listRequests(c *fiber.Ctx) error {
	rs, err := a.cfg.Impersonations.Requests(c.UserContext(), principal(c).Subject)
	if err != nil {
		return err
	}
	now := a.cfg.Now()
	items := make([]requestJSON, 0, len(rs))
	for _, r := range rs {
		items = append(items, toRequestJSON(r, now))
	}
	return c.JSON(list(items, ""))
}

func (a *API) getRequest(c *fiber.Ctx) error {
	r, err := a.cfg.Impersonations.Request(c.UserContext(), principal(c).Subject, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toRequestJSON(r, a.cfg.Now()))
}

func (a *API) approveRequest(c *fiber.Ctx) error {
	note, err := decodeAnswer(c)
	if err != nil {
		return err
	}
	r, err := a.cfg.Impersonations.Approve(c.UserContext(), principal(c), c.Params("id"), note, a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(toRequestJSON(r, a.cfg.Now()))
}

func (a *API) denyRequest(c *fiber.Ctx) error {
	note, err := decodeAnswer(c)
	if err != nil {
		return err
	}
	r, err := a.cfg.Impersonations.Deny(c.UserContext(), principal(c), c.Params("id"), note, a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(toRequestJSON(r, a.cfg.Now()))
}

func (a *API) cancelRequest(c *fiber.Ctx) error {
	r, err := a.cfg.Impersonations.Cancel(c.UserContext(), principal(c), c.Params("id"), a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(toRequestJSON(r, a.cfg.Now()))
}

// startRequest starts the session an approved request asked for, on its
// id, and switches the session as a direct start does.
func (a *API) startRequest(c *fiber.Ctx) error {
	started, err := a.cfg.Impersonations.StartRequest(c.UserContext(), principal(c), c.Params("id"), a.origin(c))
	if err != nil {
		return err
	}
	return a.answerStarted(c, started)
}

// grantJSON is a consent grant as the API shows it.
type grantJSON struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at"`
}

func toGrantJSON(g *standin.ConsentGrant) *grantJSON {
	if g == nil {
		return nil
	}
	return &grantJSON{ID: g.ID, CreatedAt: standin.FormatTime(g.CreatedAt), ExpiresAt: standin.FormatTime(g.ExpiresAt)}
}

// getConsent answers the caller's consent grant in force: {grant: null}
// when there is none.
func (a *API) getConsent(c *fiber.Ctx) error {
	g, err := a.cfg.Impersonations.GrantOf(c.UserContext(), principal(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"grant": toGrantJSON(g)})
}

type grantRequest struct {
	Hours int `json:"hours"`
}

func (a *API) grantConsent(c *fiber.Ctx) error {
	var req grantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	g, err := a.cfg.Impersonations.Grant(c.UserContext(), principal(c), req.Hours, a.origin(c))
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"grant": toGrantJSON(g)})
}

func (a *API) withdrawConsent(c *fiber.Ctx) error {
	g, err := a.cfg.Impersonations.Withdraw(c.UserContext(), principal(c), a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"withdrawn": toGrantJSON(g)})
}

// modeRuleJSON is one rule of the impersonation settings.
type modeRuleJSON struct {
	Scope     string `json:"scope"`
	Mode      string `json:"mode"`
	Approvals int    `json:"approvals,omitempty"`
}

// settingsJSON is the impersonation settings as the API shows and takes
// them; a change sends back the version it was made from.
type settingsJSON struct {
	Version        int64           `json:"version"`
	Rules          []modeRuleJSON  `json:"rules"`
	RequestMinutes int             `json:"request_minutes"`
	GraceSeconds   int             `json:"grace_seconds"`
	Unmasked       []string        `json:"unmasked"`
	Alerts         *alertRulesJSON `json:"alerts,omitempty"`
	Fields         []string        `json:"fields,omitempty"`
	ChangedAt      string          `json:"changed_at,omitempty"`
	ChangedBy      *audit.UserJSON `json:"changed_by,omitempty"`
	Modes          []string        `json:"modes,omitempty"`
}

// alertRulesJSON is the alert rules' thresholds; times of day are
// minutes after midnight in the facility's time zone.
type alertRulesJSON struct {
	DayStart       int `json:"day_start_minute"`
	DayEnd         int `json:"day_end_minute"`
	Refusals       int `json:"refusals"`
	RefusalMinutes int `json:"refusal_minutes"`
	LongMinutes    int `json:"long_session_minutes"`
	StartsPerHour  int `json:"sessions_per_agent_hour"`
	RepeatsPerDay  int `json:"sessions_per_user_day"`
}

func toSettingsJSON(s *standin.ImpersonationSettings) settingsJSON {
	j := settingsJSON{Version: s.Version, Rules: []modeRuleJSON{}, RequestMinutes: s.RequestMinutes, GraceSeconds: s.GraceSeconds,
		Unmasked: append([]string{}, s.Unmasked...), Fields: standin.PersonalFields, ChangedAt: standin.FormatTime(s.ChangedAt)}
	rules := alertRulesJSON(s.Alerts.WithDefaults())
	j.Alerts = &rules
	for _, r := range s.Rules {
		j.Rules = append(j.Rules, modeRuleJSON{Scope: r.Scope, Mode: string(r.Mode), Approvals: r.Approvals})
	}
	if s.ChangedBy.ID != "" {
		j.ChangedBy = &audit.UserJSON{ID: s.ChangedBy.ID, Name: s.ChangedBy.Name}
	}
	for _, m := range standin.Modes {
		j.Modes = append(j.Modes, string(m))
	}
	return j
}

func (a *API) getSettings(c *fiber.Ctx) error {
	s, err := a.cfg.Impersonations.Settings(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(toSettingsJSON(s))
}

func (a *API) changeSettings(c *fiber.Ctx) error {
	var req settingsJSON
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Rules == nil {
		return standin.Errorf(standin.EInvalid, "Send the whole settings: rules (a list, empty for every target direct), request_minutes, grace_seconds and the version they were read at.")
	}
	next := &standin.ImpersonationSettings{Version: req.Version, RequestMinutes: req.RequestMinutes, GraceSeconds: req.GraceSeconds,
		Unmasked: req.Unmasked}
	if req.Alerts != nil {
		next.Alerts = standin.AlertRules(*req.Alerts)
	} else {
		// Thresholds not sent stay as they are.
		cur, err := a.cfg.Impersonations.Settings(c.UserContext())
		if err != nil {
			return err
		}
		next.Alerts = cur.Alerts
	}
	for _, r := range req.Rules {
		next.Rules = append(next.Rules, standin.ModeRule{Scope: r.Scope, Mode: standin.Mode(r.Mode), Approvals: r.Approvals})
	}
	projects, err := a.cfg.Facility.Projects(c.UserContext())
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(projects))
	for _, p := range projects {
		ids = append(ids, p.ID)
	}
	saved, err := a.cfg.Impersonations.ChangeSettings(c.UserContext(), principal(c), next, ids, a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(toSettingsJSON(saved))
}
