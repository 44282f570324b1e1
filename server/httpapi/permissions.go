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
	Settings     bool   `json:"settings"`
	EditSettings bool   `json:"edit_settings"`
	Approve      string `json:"approve"`
	Moderate     string `json:"moderate"`
	Sinks        bool   `json:"sinks"`
	EditSinks    bool   `json:"edit_sinks"`
	// EditProfile and ChangePassword are the profile's forms, decided as
	// their routes decide them, with the reason a refusal gives.
	EditProfile    *decisionJSON `json:"edit_profile"`
	ChangePassword *decisionJSON `json:"change_password"`
	// GrantConsent is the user's own "support may act as me" control.
	GrantConsent *decisionJSON `json:"grant_consent"`
}

// permissions answers what the effective user may do, decided by the
// policies in force: the console shows its pages and actions by it.
func (a *API) permissions(c *fiber.Ctx) error {
	p := principal(c)
	perms, err := a.cfg.Access.Permissions(c.UserContext(), p)
	if err != nil {
		return err
	}
	out := permissionsJSON{Directory: perms.Directory, CheckAccess: perms.CheckAccess, Impersonate: perms.Impersonate,
		Suspend: perms.Suspend, Activity: perms.Activity, Revoke: perms.Revoke, Policies: perms.Policies, EditPolicies: perms.EditPolicies,
		Settings: perms.Settings, EditSettings: perms.EditSettings, Approve: perms.Approve,
		Moderate: perms.Moderate, Sinks: perms.Sinks, EditSinks: perms.EditSinks}
	for _, form := range []struct {
		r  rule
		to **decisionJSON
	}{{editProfile, &out.EditProfile}, {changePassword, &out.ChangePassword}, {grantConsent, &out.GrantConsent}} {
		dec, err := a.decide(c, form.r, p, form.r.kind, "")
		if err != nil {
			return err
		}
		*form.to = toDecisionJSON(dec)
	}
	return c.JSON(out)
}
