package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"standin/server/audit"
	"standin/server/standin"
)

func (a *API) listUsers(c *fiber.Ctx) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	users, next, err := a.cfg.Users.SearchUsers(c.UserContext(), c.Query("q"), page)
	if err != nil {
		return err
	}
	items := make([]userJSON, 0, len(users))
	for _, u := range users {
		items = append(items, toUserJSON(u))
	}
	return c.JSON(list(items, next))
}

// getUser answers a user as staff see them, with whether the caller may
// impersonate them now (decided as a start would be).
func (a *API) getUser(c *fiber.Ctx) error {
	d, u, err := a.userDetail(c, c.Params("id"))
	if err != nil {
		return err
	}
	d.Impersonate = toDecisionJSON(a.cfg.Impersonations.MayStart(c.UserContext(), principal(c), u))
	return c.JSON(d)
}

func (a *API) getProfile(c *fiber.Ctx) error {
	// The subject was read for this request as it was authenticated.
	n, err := a.names(c.UserContext())
	if err != nil {
		return err
	}
	d := n.userDetail(principal(c).Subject, a.cfg.Now())
	if d.Personal, err = a.personal(c, principal(c).Subject); err != nil {
		return err
	}
	return c.JSON(d)
}

// personal is u's personal data as the caller may see it: all of it for
// the user themself (not while someone impersonates them), the fields the
// impersonation settings leave unmasked for everyone else.
func (a *API) personal(c *fiber.Ctx, u *standin.User) ([]personalJSON, error) {
	p := principal(c)
	own := p.Impersonation == nil && p.Actor.ID == u.ID
	var set *standin.ImpersonationSettings
	if !own {
		var err error
		if set, err = a.cfg.Impersonations.Settings(c.UserContext()); err != nil {
			return nil, err
		}
	}
	out := make([]personalJSON, 0, len(standin.PersonalFields))
	for _, f := range standin.PersonalFields {
		v, _ := u.Personal.Get(f)
		j := personalJSON{Field: f, Label: standin.FieldLabel(f)}
		if own || !set.Masked(f) {
			j.Value = v
		} else {
			j.Masked = v != ""
		}
		out = append(out, j)
	}
	return out, nil
}

func (a *API) userDetail(c *fiber.Ctx, id string) (userDetailJSON, *standin.User, error) {
	ctx := c.UserContext()
	u, err := a.cfg.Users.UserByID(ctx, id)
	if err != nil {
		return userDetailJSON{}, nil, err
	}
	n, err := a.names(ctx)
	if err != nil {
		return userDetailJSON{}, nil, err
	}
	d := n.userDetail(u, a.cfg.Now())
	if d.Personal, err = a.personal(c, u); err != nil {
		return userDetailJSON{}, nil, err
	}
	return d, u, nil
}

// checkAccess explains, for support staff and without impersonating, what
// a user would be told when booking a resource in a project.
func (a *API) checkAccess(c *fiber.Ctx) error {
	ctx := c.UserContext()
	u, err := a.cfg.Users.UserByID(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	if action := c.Query("action", standin.ActCreate); action != standin.ActCreate {
		return standin.Errorf(standin.EInvalid, "Only booking access can be checked: use action=create.")
	}
	if c.Query("resource") == "" || c.Query("project") == "" {
		return standin.Errorf(standin.EInvalid, "Choose a resource and a project to check.")
	}
	resource, err := a.cfg.Facility.ResourceByID(ctx, c.Query("resource"))
	if err != nil {
		return err
	}
	project, err := a.cfg.Facility.ProjectByID(ctx, c.Query("project"))
	if err != nil {
		return err
	}
	obj := standin.Object{Kind: standin.KindBooking, Resource: resource}
	if c.Query("start") != "" || c.Query("end") != "" {
		if obj.Start, err = parseTime("start", c.Query("start")); err != nil {
			return err
		}
		if obj.End, err = parseTime("end", c.Query("end")); err != nil {
			return err
		}
	}
	dec, err := a.cfg.Access.Decide(ctx, &standin.Principal{Actor: u, Subject: u}, standin.ActCreate, obj, project.ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{
		"allowed":  dec.Allowed,
		"reason":   dec.Reason,
		"action":   standin.ActCreate,
		"user":     toUserJSON(u),
		"resource": fiber.Map{"id": resource.ID, "name": resource.Name},
		"project":  fiber.Map{"id": project.ID, "code": project.Code, "name": project.Name},
	})
}

type profileRequest struct {
	Name string `json:"name"`
}

func (a *API) updateProfile(c *fiber.Ctx) error {
	var req profileRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	if _, err := a.cfg.Accounts.Rename(c.UserContext(), p, req.Name, a.origin(c)); err != nil {
		return err
	}
	// The profile as it is now, read again after the change.
	d, _, err := a.userDetail(c, p.Subject.ID)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (a *API) changePassword(c *fiber.Ctx) error {
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := a.cfg.Accounts.ChangePassword(c.UserContext(), principal(c), req.CurrentPassword, req.NewPassword); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"changed": true})
}

// suspendUser suspends an account: its sessions end, and impersonations it
// takes part in end with the cause target_suspended.
func (a *API) suspendUser(c *fiber.Ctx) error {
	u, err := a.cfg.Accounts.Suspend(c.UserContext(), principal(c), c.Params("id"), a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(toUserJSON(u))
}

// overviewJSON is a user's page for support staff (package support).
type overviewJSON struct {
	User      userDetailJSON      `json:"user"`
	Access    []accessJSON        `json:"access"`
	Trainings []trainingState     `json:"trainings"`
	Refusals  []audit.JSON        `json:"refusals"`
	Sessions  []audit.JSON        `json:"sessions"`
	Running   []impersonationJSON `json:"running"`
	Bookings  []bookingJSON       `json:"bookings"`
}

// accessJSON says whether the user may book a resource in a project.
type accessJSON struct {
	ResourceID   string `json:"resource_id"`
	ResourceName string `json:"resource_name"`
	ProjectID    string `json:"project_id"`
	ProjectCode  string `json:"project_code,omitempty"`
	Bookable     bool   `json:"bookable"`
	Reason       string `json:"reason,omitempty"`
}

// trainingState is a training against what the user's instruments need:
// state missing, expired, expiring (within 30 days) or valid.
type trainingState struct {
	TrainingID string   `json:"training_id"`
	Name       string   `json:"name"`
	State      string   `json:"state"`
	ExpiresAt  string   `json:"expires_at,omitempty"`
	NeededFor  []string `json:"needed_for"`
}

// userOverview answers what blocks a user, for support staff: access to
// each instrument of their projects, their trainings, the refusals and
// sessions on their account, their coming bookings, and whether the
// caller may impersonate them now.
func (a *API) userOverview(c *fiber.Ctx) error {
	ctx := c.UserContext()
	o, err := a.cfg.Support.Overview(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	n, err := a.names(ctx)
	if err != nil {
		return err
	}
	out := overviewJSON{User: n.userDetail(o.User, a.cfg.Now()), Access: []accessJSON{}, Trainings: []trainingState{},
		Refusals: []audit.JSON{}, Sessions: []audit.JSON{}, Running: []impersonationJSON{}, Bookings: []bookingJSON{}}
	out.User.Impersonate = toDecisionJSON(a.cfg.Impersonations.MayStart(ctx, principal(c), o.User))
	if out.User.Personal, err = a.personal(c, o.User); err != nil {
		return err
	}
	for _, x := range o.Access {
		out.Access = append(out.Access, accessJSON{ResourceID: x.Resource.ID, ResourceName: x.Resource.Name, ProjectID: x.Project,
			ProjectCode: n.projects[x.Project], Bookable: x.Bookable, Reason: x.Reason})
	}
	for _, t := range o.Trainings {
		out.Trainings = append(out.Trainings, trainingState{TrainingID: t.Training.ID, Name: t.Training.Name, State: t.State,
			ExpiresAt: standin.FormatTime(t.ExpiresAt), NeededFor: append([]string{}, t.NeededFor...)})
	}
	for _, e := range o.Refusals {
		out.Refusals = append(out.Refusals, audit.ViewJSON(e))
	}
	for _, e := range o.Sessions {
		out.Sessions = append(out.Sessions, audit.ViewJSON(e))
	}
	for _, imp := range o.Running {
		out.Running = append(out.Running, toImpersonationJSON(imp))
	}
	for _, b := range o.Bookings {
		out.Bookings = append(out.Bookings, toBookingJSON(b, n))
	}
	return c.JSON(out)
}

type revealRequest struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// revealField answers one personal data field of a user, shown for a
// reason and audited.
func (a *API) revealField(c *fiber.Ctx) error {
	var req revealRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	v, err := a.cfg.Impersonations.Reveal(c.UserContext(), principal(c), c.Params("id"), req.Field, req.Reason, a.origin(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"field": req.Field, "label": standin.FieldLabel(req.Field), "value": v})
}
