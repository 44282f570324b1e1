package httpapi

import "github.com/gofiber/fiber/v2"

type permissionsJSON struct {
	Directory    bool   `json:"directory"`
	CheckAccess  bool   `json:"check_access"`
	Impersonate  bool   `json:"impersonate"`
	Suspend      bool   `json:"suspend"`
	Activity     string `json:"activity"`
	Revoke       string `json:"revoke"`
	Policies     bool   `json:"policies"`
	EditPolicies bool   `json:"edit_policies"`
}

// permissions answers what the effective user may do, decided by the
// policies in force: the console shows its pages and actions by it.
func (a *API) permissions(c *fiber.Ctx) error {
	perms, err := a.cfg.Access.Permissions(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(permissionsJSON(perms))
}
