package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"standin/server/standin"
)

// maxViewID bounds the page id a client chooses for its view.
const maxViewID = 64

// validViewID reports whether id is 1 to 64 letters, digits, '-' or '_'.
func validViewID(id string) bool {
	if id == "" || len(id) > maxViewID {
		return false
	}
	for _, r := range id {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// viewUser answers PUT /api/v1/presence {view_id, user_id}: the page
// view_id shows the user user_id. Pages renew it while open.
func (a *API) viewUser(c *fiber.Ctx) error {
	var req struct {
		ViewID string `json:"view_id"`
		UserID string `json:"user_id"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if !validViewID(req.ViewID) {
		return standin.Errorf(standin.EInvalid, "view_id must be 1 to 64 letters, digits, '-' or '_'.")
	}
	if req.UserID == "" {
		return standin.Errorf(standin.EInvalid, "user_id is required.")
	}
	u, err := a.cfg.Users.UserByID(c.UserContext(), req.UserID)
	if err != nil {
		return err
	}
	a.cfg.Presence.View(req.ViewID, principal(c).Actor, u)
	return c.SendStatus(fiber.StatusNoContent)
}

// leaveUser answers DELETE /api/v1/presence/{view}: the page closed.
func (a *API) leaveUser(c *fiber.Ctx) error {
	view := c.Params("view")
	if !validViewID(view) {
		return standin.Errorf(standin.EInvalid, "The view id must be 1 to 64 letters, digits, '-' or '_'.")
	}
	a.cfg.Presence.Leave(principal(c).Actor.ID, view)
	return c.SendStatus(fiber.StatusNoContent)
}
