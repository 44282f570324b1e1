package httpapi

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"standin/server/standin"
)

// listJSON is the shape of every list: items and the cursor of the next
// page, empty on the last.
type listJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func list[T any](items []T, next string) listJSON[T] {
	if items == nil {
		items = []T{}
	}
	return listJSON[T]{Items: items, NextCursor: next}
}

// pageParams reads ?cursor= and ?limit= (1 to 200, default 50).
func pageParams(c *fiber.Ctx) (standin.Page, error) {
	p := standin.Page{Cursor: c.Query("cursor"), Limit: 50}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 200 {
			return p, standin.Errorf(standin.EInvalid, "limit must be a whole number from 1 to 200.")
		}
		p.Limit = n
	}
	return p, nil
}

type membershipJSON struct {
	ProjectID string `json:"project_id"`
	Code      string `json:"code"`
	Name      string `json:"name"`
	Role      string `json:"role"`
}

type trainingJSON struct {
	TrainingID  string `json:"training_id"`
	Name        string `json:"name"`
	CompletedAt string `json:"completed_at"`
	ExpiresAt   string `json:"expires_at,omitempty"`
	Valid       bool   `json:"valid"`
}

type userDetailJSON struct {
	userJSON
	Projects  []membershipJSON `json:"projects"`
	Trainings []trainingJSON   `json:"trainings"`
	// Impersonate says, on a staff member's view of a user, whether they
	// may impersonate that user now, and why not.
	Impersonate *decisionJSON `json:"impersonate,omitempty"`
	// Personal is the personal data kept for safety records, masked as
	// the impersonation settings say to everyone but the user.
	Personal []personalJSON `json:"personal"`
}

// personalJSON is one personal data field: its value, or that it is
// masked (a reveal with a reason shows it).
type personalJSON struct {
	Field  string `json:"field"`
	Label  string `json:"label"`
	Value  string `json:"value,omitempty"`
	Masked bool   `json:"masked"`
}

// decisionJSON is a yes or no with the reason a refusal would give.
type decisionJSON struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
}

func toDecisionJSON(d standin.Decision) *decisionJSON {
	out := &decisionJSON{Allowed: d.Allowed}
	if !d.Allowed {
		out.Reason = d.Reason
	}
	return out
}

type bookingJSON struct {
	ID              string `json:"id"`
	ResourceID      string `json:"resource_id"`
	ResourceName    string `json:"resource_name,omitempty"`
	ProjectID       string `json:"project_id"`
	ProjectCode     string `json:"project_code,omitempty"`
	UserID          string `json:"user_id"`
	Start           string `json:"start"`
	End             string `json:"end"`
	Status          string `json:"status"`
	CreatedBy       string `json:"created_by"`
	ImpersonationID string `json:"impersonation_id,omitempty"`
	CreatedAt       string `json:"created_at"`
	CancelledAt     string `json:"cancelled_at,omitempty"`
	CancelledBy     string `json:"cancelled_by,omitempty"`
}

func toBookingJSON(b *standin.Booking, n names) bookingJSON {
	return bookingJSON{
		ID: b.ID, ResourceID: b.ResourceID, ResourceName: n.resources[b.ResourceID],
		ProjectID: b.ProjectID, ProjectCode: n.projects[b.ProjectID], UserID: b.UserID,
		Start: standin.FormatTime(b.Start), End: standin.FormatTime(b.End), Status: string(b.Status),
		CreatedBy: b.CreatedBy, ImpersonationID: b.ImpersonationID, CreatedAt: standin.FormatTime(b.CreatedAt),
		CancelledAt: standin.FormatTime(b.CancelledAt), CancelledBy: b.CancelledBy,
	}
}

type policyJSON struct {
	Role   string `json:"role"`
	Domain string `json:"domain"`
	Object string `json:"object"`
	Action string `json:"action"`
}
