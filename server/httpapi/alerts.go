package httpapi

import (
	"context"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"standin/server/audit"
	"standin/server/standin"
)

// Alerts are the alerts on suspicious sessions (alerts.Service).
type Alerts interface {
	List(ctx context.Context, p *standin.Principal) ([]*standin.Alert, error)
	Acknowledge(ctx context.Context, p *standin.Principal, id, note string, o standin.Origin) (*standin.Alert, error)
}

// alertJSON is an alert as the API shows it.
type alertJSON struct {
	ID              string          `json:"id"`
	Rule            string          `json:"rule"`
	Words           string          `json:"words"`
	Actor           audit.UserJSON  `json:"actor"`
	Subject         audit.UserJSON  `json:"subject"`
	ImpersonationID string          `json:"impersonation_id,omitempty"`
	Projects        []string        `json:"projects"`
	RaisedAt        string          `json:"raised_at"`
	Seq             int64           `json:"seq"`
	AckedAt         string          `json:"acknowledged_at,omitempty"`
	AckedBy         *audit.UserJSON `json:"acknowledged_by,omitempty"`
	AckNote         string          `json:"acknowledgment_note,omitempty"`
}

func toAlertJSON(a *standin.Alert) alertJSON {
	j := alertJSON{ID: a.ID, Rule: a.Rule, Words: a.Words, Actor: audit.UserJSON(a.Actor), Subject: audit.UserJSON(a.Subject),
		ImpersonationID: a.ImpersonationID, Projects: a.Projects, RaisedAt: standin.FormatTime(a.RaisedAt), Seq: a.Seq,
		AckedAt: standin.FormatTime(a.AckedAt), AckNote: a.AckNote}
	if j.Projects == nil {
		j.Projects = []string{}
	}
	if a.AckedBy.ID != "" {
		j.AckedBy = &audit.UserJSON{ID: a.AckedBy.ID, Name: a.AckedBy.Name}
	}
	return j
}

// listAlerts answers GET /alerts: the newest alerts the caller may see
// (all for admins, their projects' for project leads); 403 for those who
// may see none.
func (a *API) listAlerts(c *fiber.Ctx) error {
	p := principal(c)
	sc, err := a.cfg.Access.Scope(c.UserContext(), p, standin.ActList, standin.KindAlert, p.Subject.ProjectIDs())
	if err != nil {
		return err
	}
	if sc.Empty() {
		return standin.Errorf(standin.EForbidden, "You may not see the alerts.")
	}
	raised, err := a.cfg.Alerts.List(c.UserContext(), p)
	if err != nil {
		return err
	}
	items := make([]alertJSON, 0, len(raised))
	for _, al := range raised {
		items = append(items, toAlertJSON(al))
	}
	return c.JSON(list(items, ""))
}

// acknowledgeAlert answers POST /alerts/{id}/acknowledge {note}.
func (a *API) acknowledgeAlert(c *fiber.Ctx) error {
	var req struct {
		Note string `json:"note"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	// An alert's id names its condition ("refusals:<session>"): a client
	// may send it escaped.
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil {
		return standin.Errorf(standin.ENotFound, "There is no such alert.")
	}
	al, err := a.cfg.Alerts.Acknowledge(c.UserContext(), principal(c), id, req.Note, a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(toAlertJSON(al))
}
