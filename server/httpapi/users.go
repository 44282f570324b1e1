package httpapi

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"standin/server/password"
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

func (a *API) getUser(c *fiber.Ctx) error {
	return a.userDetail(c, c.Params("id"))
}

func (a *API) getProfile(c *fiber.Ctx) error {
	return a.userDetail(c, principal(c).Subject.ID)
}

func (a *API) userDetail(c *fiber.Ctx, id string) error {
	ctx := c.UserContext()
	u, err := a.cfg.Users.UserByID(ctx, id)
	if err != nil {
		return err
	}
	n, err := a.names(ctx)
	if err != nil {
		return err
	}
	return c.JSON(n.userDetail(u, a.cfg.Now()))
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
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return standin.Errorf(standin.EInvalid, "Enter a name of 1 to 100 characters.")
	}
	if problem := standin.TextProblem(name, 100); problem != "" {
		return standin.Errorf(standin.EInvalid, "The name %s", problem)
	}
	p := principal(c)
	if name != p.Subject.Name {
		// Audited before it takes effect: who was called what, and when,
		// stays on record whatever name they show later.
		ev := a.event(c, standin.EventUserRenamed, p, "profile.rename", "user:"+p.Subject.ID, "", "renamed",
			fmt.Sprintf("Renamed from %q to %q.", p.Subject.Name, name))
		if err := a.audit(c, ev); err != nil {
			return err
		}
	}
	if _, err := a.cfg.Users.UpdateUserName(c.UserContext(), p.Subject.ID, name, a.cfg.Now()); err != nil {
		return err
	}
	return a.userDetail(c, p.Subject.ID)
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
	if n := utf8.RuneCountInString(req.NewPassword); n < 8 || n > 256 {
		return standin.Errorf(standin.EInvalid, "The new password must be 8 to 256 characters long.")
	}
	ctx, p := c.UserContext(), principal(c)
	u, err := a.cfg.Users.UserByID(ctx, p.Subject.ID)
	if err != nil {
		return err
	}
	if err := password.Verify(req.CurrentPassword, u.PasswordHash); err != nil {
		if errors.Is(err, password.ErrMismatch) {
			return standin.Errorf(standin.EInvalid, "The current password is not correct.")
		}
		return err
	}
	hash, err := password.Hash(req.NewPassword, a.cfg.PasswordCost)
	if err != nil {
		return err
	}
	if err := a.cfg.Users.SetPasswordHash(ctx, u.ID, hash, a.cfg.Now()); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"changed": true})
}

// suspendUser suspends an account: its sessions end, and impersonations it
// takes part in end with the cause target_suspended.
func (a *API) suspendUser(c *fiber.Ctx) error {
	ctx, p := c.UserContext(), principal(c)
	u, err := a.cfg.Users.UserByID(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	switch {
	case u.ID == p.Subject.ID:
		return standin.Errorf(standin.EInvalid, "You cannot suspend your own account.")
	case u.Role.Rank() >= p.Subject.Role.Rank():
		return &standin.Error{Code: standin.EForbidden, Message: "You cannot suspend this account.",
			Reason: fmt.Sprintf("%s has the role %q, which is not lower than yours.", u.Name, u.Role)}
	case !u.Active():
		return standin.Errorf(standin.EConflict, "%s's account is already suspended.", u.Name)
	}
	ev := a.event(c, standin.EventUserSuspended, p, "user.suspend", "user:"+u.ID, "", "suspended", u.Name)
	// The event is about the suspended user, whom its project leads see.
	ev.Subject = standin.EventUser{ID: u.ID, Name: u.Name}
	ev.Projects = append(ev.Projects, u.ProjectIDs()...)
	if err := a.audit(c, ev); err != nil {
		return err
	}
	u, err = a.cfg.Users.SetUserStatus(ctx, u.ID, standin.StatusSuspended, a.cfg.Now())
	if err != nil {
		return err
	}
	if err := a.cfg.Impersonations.EndFor(ctx, u.ID, standin.CauseActorSuspended, standin.CauseTargetSuspended, p.Actor, a.origin(c)); err != nil {
		return err
	}
	if _, err := a.cfg.Sessions.EndUser(ctx, u.ID); err != nil {
		return err
	}
	return c.JSON(toUserJSON(u))
}
