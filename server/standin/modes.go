package standin

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Mode is what an impersonation of a target needs before it may run.
type Mode string

// The modes, from the least strict to the strictest. Where a target's
// scopes (its role, its projects) name different modes, the strictest
// wins.
const (
	// ModeDirect starts at once: the right to impersonate is enough.
	ModeDirect Mode = "direct"
	// ModeConsent waits for the target to approve the request, or starts
	// at once under a grant the target gave ahead of time.
	ModeConsent Mode = "consent"
	// ModeApproval waits for approvers other than the actor, with the
	// right to approve in the target's scope (four eyes).
	ModeApproval Mode = "approval"
	// ModeModerated runs only while a moderator watches the session.
	ModeModerated Mode = "moderated"
)

// Modes lists the modes from the least strict to the strictest.
var Modes = []Mode{ModeDirect, ModeConsent, ModeApproval, ModeModerated}

// Strictness orders modes: higher is stricter; -1 for an unknown mode.
func (m Mode) Strictness() int { return slices.Index(Modes, m) }

// Valid reports whether m is one of Modes.
func (m Mode) Valid() bool { return m.Strictness() >= 0 }

// Scope prefixes of a ModeRule.
const (
	ScopeRolePrefix    = "role:"
	ScopeProjectPrefix = "project:"
)

// ModeRule sets the mode for the targets in Scope: "role:<role>" (the
// target's global role) or "project:<project id>" (a member or lead of
// that project). Approvals is how many distinct approvers an approval
// needs (ModeApproval only; at least 1).
type ModeRule struct {
	Scope     string
	Mode      Mode
	Approvals int
}

// Bounds of the impersonation settings.
const (
	DefaultRequestMinutes = 10
	MaxRequestMinutes     = 24 * 60
	DefaultGraceSeconds   = 60
	MinGraceSeconds       = 10
	MaxGraceSeconds       = 60 * 60
	MaxApprovals          = 5
	MaxModeRules          = 200
)

// ImpersonationSettings are the rules impersonation follows beyond the
// right to impersonate, which Casbin's allow rules grant: which mode each
// target needs, how long a request waits for an answer, and how long a
// moderated session waits for its moderator to come back. They change as
// a whole, each change a new Version.
type ImpersonationSettings struct {
	Version int64
	Rules   []ModeRule
	// RequestMinutes is how long a request waits for its answer before it
	// expires (default DefaultRequestMinutes).
	RequestMinutes int
	// GraceSeconds is how long a moderated session stays paused without a
	// moderator before it ends (default DefaultGraceSeconds).
	GraceSeconds int
	// Unmasked lists the personal data fields (PersonalFields) staff see
	// unmasked; every other one is masked in every view of a user but
	// their own, while impersonating too. None by default.
	Unmasked []string
	// Alerts are the thresholds of the alert rules.
	Alerts    AlertRules
	ChangedAt time.Time
	ChangedBy EventUser
	// EventID is the id of the settings.changed event that records this
	// version. A version is in force only once that event is in the
	// audit log (see impersonation.Service.ChangeSettings).
	EventID string
}

// Masked reports whether field is masked to everyone but the user.
func (s *ImpersonationSettings) Masked(field string) bool {
	return !slices.Contains(s.Unmasked, field)
}

// DefaultImpersonationSettings are the settings before anyone changed
// them: every target direct.
func DefaultImpersonationSettings() *ImpersonationSettings {
	return &ImpersonationSettings{RequestMinutes: DefaultRequestMinutes, GraceSeconds: DefaultGraceSeconds,
		Alerts: AlertRules{}.WithDefaults()}
}

// Clone returns a deep copy of s.
func (s *ImpersonationSettings) Clone() *ImpersonationSettings {
	c := *s
	c.Rules = slices.Clone(s.Rules)
	c.Unmasked = slices.Clone(s.Unmasked)
	return &c
}

// Need is what starting an impersonation of one target needs: its mode
// and, for ModeApproval, how many approvers.
type Need struct {
	Mode      Mode
	Approvals int
	// Scope is the rule's scope that set the mode ("" for the default).
	Scope string
}

// NeedFor returns what impersonating target needs: the strictest mode
// among the rules for its role and its projects, and for an approval the
// most approvers any of those rules asks. No rule: ModeDirect.
func (s *ImpersonationSettings) NeedFor(target *User) Need {
	n := Need{Mode: ModeDirect}
	if target == nil {
		return n
	}
	scopes := []string{ScopeRolePrefix + string(target.Role)}
	for _, m := range target.Memberships {
		scopes = append(scopes, ScopeProjectPrefix+m.ProjectID)
	}
	for _, r := range s.Rules {
		if !slices.Contains(scopes, r.Scope) {
			continue
		}
		if r.Mode.Strictness() > n.Mode.Strictness() {
			n.Mode, n.Scope = r.Mode, r.Scope
		}
		if r.Mode == ModeApproval {
			n.Approvals = max(n.Approvals, r.Approvals)
		}
	}
	if n.Mode == ModeApproval {
		n.Approvals = max(n.Approvals, 1)
	} else {
		n.Approvals = 0
	}
	return n
}

// Normalize fills the defaults of s and checks it, with projects the ids
// a "project:" scope may name. It returns an EInvalid error saying what
// is wrong, in words for the person who made the change.
func (s *ImpersonationSettings) Normalize(projects []string) error {
	if s.RequestMinutes == 0 {
		s.RequestMinutes = DefaultRequestMinutes
	}
	if s.GraceSeconds == 0 {
		s.GraceSeconds = DefaultGraceSeconds
	}
	if s.RequestMinutes < 1 || s.RequestMinutes > MaxRequestMinutes {
		return Errorf(EInvalid, "A request waits from 1 to %d minutes for its answer.", MaxRequestMinutes)
	}
	if s.GraceSeconds < MinGraceSeconds || s.GraceSeconds > MaxGraceSeconds {
		return Errorf(EInvalid, "A moderated session waits from %d to %d seconds for its moderator.", MinGraceSeconds, MaxGraceSeconds)
	}
	s.Alerts = s.Alerts.WithDefaults()
	if err := s.Alerts.Check(); err != nil {
		return err
	}
	for _, f := range s.Unmasked {
		if err := CheckField(f); err != nil {
			return err
		}
	}
	s.Unmasked = slices.Compact(slices.Sorted(slices.Values(s.Unmasked)))
	if len(s.Rules) > MaxModeRules {
		return Errorf(EInvalid, "At most %d mode rules can be set.", MaxModeRules)
	}
	seen := make(map[string]bool, len(s.Rules))
	for i := range s.Rules {
		r := &s.Rules[i]
		r.Scope = strings.TrimSpace(r.Scope)
		if err := checkScope(r.Scope, projects); err != nil {
			return err
		}
		if seen[r.Scope] {
			return Errorf(EInvalid, "The scope %q has two rules; give it one.", r.Scope)
		}
		seen[r.Scope] = true
		if !r.Mode.Valid() {
			return Errorf(EInvalid, "The mode %q is not one of direct, consent, approval and moderated.", clip(string(r.Mode)))
		}
		switch {
		case r.Mode != ModeApproval && r.Approvals != 0:
			return Errorf(EInvalid, "Only the approval mode counts approvers (scope %q).", r.Scope)
		case r.Mode == ModeApproval && r.Approvals == 0:
			r.Approvals = 1
		case r.Mode == ModeApproval && (r.Approvals < 1 || r.Approvals > MaxApprovals):
			return Errorf(EInvalid, "An approval needs from 1 to %d approvers (scope %q).", MaxApprovals, r.Scope)
		}
	}
	return nil
}

// checkScope checks a rule's scope: a role that can be impersonated, or a
// project that exists.
func checkScope(scope string, projects []string) error {
	switch {
	case strings.HasPrefix(scope, ScopeRolePrefix):
		role := Role(strings.TrimPrefix(scope, ScopeRolePrefix))
		if !role.Valid() {
			return Errorf(EInvalid, "The scope %q names no role; roles are user, support, manager and admin.", clip(scope))
		}
		if role == RoleOwner {
			return Errorf(EInvalid, "Owners cannot be impersonated, so the scope %q needs no mode.", scope)
		}
	case strings.HasPrefix(scope, ScopeProjectPrefix):
		id := strings.TrimPrefix(scope, ScopeProjectPrefix)
		if !slices.Contains(projects, id) {
			return Errorf(EInvalid, "The scope %q names no project of the facility.", clip(scope))
		}
	default:
		return Errorf(EInvalid, "A scope is role:<role> or project:<project id>, not %q.", clip(scope))
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

// Changes says in words what changed from old to s, for the audit event
// of a change: "role:user consent → approval ×2; request 10 → 15 min".
func (s *ImpersonationSettings) Changes(old *ImpersonationSettings) string {
	var parts []string
	was := make(map[string]ModeRule, len(old.Rules))
	for _, r := range old.Rules {
		was[r.Scope] = r
	}
	is := make(map[string]bool, len(s.Rules))
	for _, r := range s.Rules {
		is[r.Scope] = true
		o, ok := was[r.Scope]
		switch {
		case !ok:
			parts = append(parts, fmt.Sprintf("%s %s → %s", r.Scope, ModeDirect, r.modeWords()))
		case o != r:
			parts = append(parts, fmt.Sprintf("%s %s → %s", r.Scope, o.modeWords(), r.modeWords()))
		}
	}
	for _, r := range old.Rules {
		if !is[r.Scope] {
			parts = append(parts, fmt.Sprintf("%s %s → %s", r.Scope, r.modeWords(), ModeDirect))
		}
	}
	if s.RequestMinutes != old.RequestMinutes {
		parts = append(parts, fmt.Sprintf("requests wait %d → %d min", old.RequestMinutes, s.RequestMinutes))
	}
	if !slices.Equal(s.Unmasked, old.Unmasked) {
		parts = append(parts, fmt.Sprintf("shown to staff: %s → %s", fieldList(old.Unmasked), fieldList(s.Unmasked)))
	}
	if s.GraceSeconds != old.GraceSeconds {
		parts = append(parts, fmt.Sprintf("moderator grace %d → %d s", old.GraceSeconds, s.GraceSeconds))
	}
	parts = append(parts, s.Alerts.WithDefaults().Changes(old.Alerts.WithDefaults())...)
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

func (r ModeRule) modeWords() string {
	if r.Mode == ModeApproval && r.Approvals > 1 {
		return fmt.Sprintf("%s ×%d", r.Mode, r.Approvals)
	}
	return string(r.Mode)
}

func fieldList(fields []string) string {
	if len(fields) == 0 {
		return "none"
	}
	return strings.Join(fields, ", ")
}
