package httpapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"standin/server/standin"
)

func (a *API) listPolicies(c *fiber.Ctx) error {
	policies := a.cfg.Policies.Policies()
	items := make([]policyJSON, 0, len(policies))
	for _, p := range policies {
		items = append(items, policyJSON(p))
	}
	return c.JSON(list(items, ""))
}

func (a *API) addPolicy(c *fiber.Ctx) error {
	var req policyJSON
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := a.cfg.Policies.AddPolicy(c.UserContext(), standin.Policy(req)); err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(req)
}

func (a *API) removePolicy(c *fiber.Ctx) error {
	var req policyJSON
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := a.cfg.Policies.RemovePolicy(c.UserContext(), standin.Policy(req)); err != nil {
		return err
	}
	return c.JSON(req)
}
