package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"standin/server/bookings"
	"standin/server/standin"
)

func (a *API) listProjects(c *fiber.Ctx) error {
	projects, err := a.cfg.Facility.Projects(c.UserContext())
	if err != nil {
		return err
	}
	type projectJSON struct {
		ID   string `json:"id"`
		Code string `json:"code"`
		Name string `json:"name"`
	}
	items := make([]projectJSON, 0, len(projects))
	for _, p := range projects {
		items = append(items, projectJSON{ID: p.ID, Code: p.Code, Name: p.Name})
	}
	return c.JSON(list(items, ""))
}

type resourceJSON struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Kind              string   `json:"kind"`
	ProjectID         string   `json:"project_id"`
	Bookable          bool     `json:"bookable"`
	Reason            string   `json:"reason,omitempty"`
	RequiredTrainings []string `json:"required_trainings"`
	MaxHours          float64  `json:"max_hours,omitempty"`
}

// listResources answers, for each resource, whether the effective user can
// book it in the chosen project (default: their first project), and if
// not, why.
func (a *API) listResources(c *fiber.Ctx) error {
	ctx, p := c.UserContext(), principal(c)
	project, err := a.queryProject(c)
	if err != nil {
		return err
	}
	if project == "" && len(p.Subject.Memberships) > 0 {
		project = p.Subject.Memberships[0].ProjectID
	}
	resources, err := a.cfg.Facility.Resources(ctx)
	if err != nil {
		return err
	}
	n, err := a.names(ctx)
	if err != nil {
		return err
	}
	items := make([]resourceJSON, 0, len(resources))
	for _, r := range resources {
		item := resourceJSON{ID: r.ID, Name: r.Name, Kind: r.Kind, ProjectID: project, MaxHours: r.Rule.MaxHours, RequiredTrainings: []string{}}
		for _, t := range r.RequiredTrainings {
			item.RequiredTrainings = append(item.RequiredTrainings, n.trainings[t])
		}
		if project == "" {
			item.Reason = fmt.Sprintf("%s is not a member of any project, and bookings are made in a project.", p.Subject.Name)
		} else {
			dec, err := a.cfg.Access.Decide(ctx, p, standin.ActCreate, standin.Object{Kind: standin.KindBooking, Resource: r}, project)
			if err != nil {
				return err
			}
			item.Bookable = dec.Allowed
			if !dec.Allowed {
				item.Reason = dec.Reason
			}
		}
		items = append(items, item)
	}
	return c.JSON(list(items, ""))
}

func (a *API) listBookings(c *fiber.Ctx) error {
	ctx, p := c.UserContext(), principal(c)
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	f := standin.BookingFilter{UserID: p.Subject.ID}
	if project := c.Query("project"); project != "" {
		// The route's target checked the project and the right to see it.
		f = standin.BookingFilter{ProjectID: project}
	}
	if st := c.Query("status"); st != "" {
		switch standin.BookingStatus(st) {
		case standin.BookingConfirmed, standin.BookingCancelled:
			f.Status = standin.BookingStatus(st)
		default:
			return standin.Errorf(standin.EInvalid, "status must be confirmed or cancelled.")
		}
	}
	bookings, next, err := a.cfg.Facility.Bookings(ctx, f, page)
	if err != nil {
		return err
	}
	n, err := a.names(ctx)
	if err != nil {
		return err
	}
	items := make([]bookingJSON, 0, len(bookings))
	for _, b := range bookings {
		items = append(items, toBookingJSON(b, n))
	}
	return c.JSON(list(items, next))
}

type createBookingRequest struct {
	ResourceID string `json:"resource_id"`
	ProjectID  string `json:"project_id"`
	Start      string `json:"start"`
	End        string `json:"end"`
}

// withDeadline gives the request's context a deadline for the rest of
// the handler; the function it returns ends it and gives the request its
// own context back, for what runs after the handler (its audit event).
func withDeadline(c *fiber.Ctx, d time.Duration) func() {
	parent := c.UserContext()
	ctx, cancel := context.WithTimeout(parent, d)
	c.SetUserContext(ctx)
	return func() {
		cancel()
		c.SetUserContext(parent)
	}
}

func (a *API) createBooking(c *fiber.Ctx) error {
	// The answer is bounded as the booking's write is.
	defer withDeadline(c, bookings.Deadline)()
	ctx := c.UserContext()
	var req createBookingRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.ResourceID == "" {
		return standin.Errorf(standin.EInvalid, "Choose the resource to book (resource_id).")
	}
	start, err := parseTime("start", req.Start)
	if err != nil {
		return err
	}
	end, err := parseTime("end", req.End)
	if err != nil {
		return err
	}
	b, resource, err := a.cfg.Bookings.Create(ctx, principal(c),
		bookings.Request{ResourceID: req.ResourceID, ProjectID: req.ProjectID, Start: start, End: end}, a.origin(c))
	if err != nil {
		return err
	}
	n := a.namesAfterCommit(ctx)
	n.resources[resource.ID] = resource.Name
	return c.Status(http.StatusCreated).JSON(toBookingJSON(b, n))
}

func (a *API) cancelBooking(c *fiber.Ctx) error {
	defer withDeadline(c, bookings.Deadline)()
	ctx := c.UserContext()
	b, err := a.cfg.Bookings.Cancel(ctx, principal(c), loadedBooking(c), a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(toBookingJSON(b, a.namesAfterCommit(ctx)))
}

// namesAfterCommit reads the names an answer shows, for an action that is
// already committed: the answer goes out without the names that cannot be
// read, rather than as an error for an action that happened.
func (a *API) namesAfterCommit(ctx context.Context) names {
	n, err := a.names(ctx)
	if err != nil {
		a.log.Warn("answering a committed action without names", "err", err)
	}
	return n
}

// parseTime reads an RFC 3339 time, saying which field is wrong if not.
func parseTime(field, v string) (time.Time, error) {
	if strings.TrimSpace(v) == "" {
		return time.Time{}, standin.Errorf(standin.EInvalid, "%s is required, as an RFC 3339 time such as 2026-12-01T09:00:00Z.", field)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, standin.Errorf(standin.EInvalid, "%s %q is not an RFC 3339 time such as 2026-12-01T09:00:00Z.", field, v)
	}
	return t.UTC(), nil
}
