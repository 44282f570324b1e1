package httpapi

import (
	"context"
	"fmt"
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
	ctx := context.WithoutCancel(c.UserContext())
	if err := a.cfg.Policies.AddPolicy(ctx, standin.Policy(req)); err != nil {
		return err
	}
	if err := a.auditPolicy(c, "added", req); err != nil {
		// Unaudited, the change must not stand.
		if rerr := a.cfg.Policies.RemovePolicy(ctx, standin.Policy(req)); rerr != nil {
			a.log.Error("an unaudited policy change could not be undone", "policy", req, "err", rerr)
		}
		return err
	}
	return c.Status(http.StatusCreated).JSON(req)
}

func (a *API) removePolicy(c *fiber.Ctx) error {
	var req policyJSON
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := context.WithoutCancel(c.UserContext())
	if err := a.cfg.Policies.RemovePolicy(ctx, standin.Policy(req)); err != nil {
		return err
	}
	if err := a.auditPolicy(c, "removed", req); err != nil {
		if rerr := a.cfg.Policies.AddPolicy(ctx, standin.Policy(req)); rerr != nil {
			a.log.Error("an unaudited policy change could not be undone", "policy", req, "err", rerr)
		}
		return err
	}
	return c.JSON(req)
}

func (a *API) auditPolicy(c *fiber.Ctx, outcome string, p policyJSON) error {
	line := fmt.Sprintf("p, %s, %s, %s, %s", p.Role, p.Domain, p.Object, p.Action)
	return a.audit(c, a.event(c, standin.EventPolicyChanged, principal(c), "policy.update", line, "", outcome, ""))
}
