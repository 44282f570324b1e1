package standin

import (
	"slices"
	"testing"
)

func TestImpersonationBars(t *testing.T) {
	t.Parallel()
	user := func(id string, r Role, s Status) *User { return &User{ID: id, Role: r, Status: s} }
	support := user("s", RoleSupport, StatusActive)
	admin := user("a", RoleAdmin, StatusActive)
	tests := []struct {
		name   string
		actor  *User
		target *User
		want   Bars
	}{
		{"OK", support, user("u", RoleUser, StatusActive), nil},
		{"Self", admin, admin, Bars{BarSelf, BarRank}},
		{"Owner", user("o", RoleOwner, StatusActive), user("o2", RoleOwner, StatusActive), Bars{BarOwner, BarRank}},
		{"SameRank", support, user("s2", RoleSupport, StatusActive), Bars{BarRank}},
		{"HigherRank", support, admin, Bars{BarRank}},
		{"Suspended", support, user("u", RoleUser, StatusSuspended), Bars{BarSuspended}},
		{"SuspendedAndHigher", support, user("m", RoleManager, StatusSuspended), Bars{BarRank, BarSuspended}},
		{"TargetGone", support, nil, Bars{BarSuspended}},
		{"NoActor", nil, user("u", RoleUser, StatusActive), Bars{BarRank}},
		{"UnknownRole", support, user("x", Role("wizard"), StatusActive), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ImpersonationBars(tt.actor, tt.target)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ImpersonationBars = %v, want %v", got, tt.want)
			}
			if may := MayImpersonate(tt.actor, tt.target); may != (len(tt.want) == 0) {
				t.Errorf("MayImpersonate = %v, want %v", may, len(tt.want) == 0)
			}
			if got.First() != tt.want.First() {
				t.Errorf("First = %q, want %q", got.First(), tt.want.First())
			}
		})
	}
}

func TestEndWords(t *testing.T) {
	imp := Impersonation{ActorName: "Sam Support", ActorEmail: "support@example.org",
		EndedByName: "Maya Manager", EndedByEmail: "manager@example.org"}
	for cause, want := range map[string]string{
		CauseEndedByActor:     "Sam Support (support@example.org) ended it",
		CauseRevoked:          "Maya Manager (manager@example.org) ended it",
		CauseExpired:          "its time ran out",
		CauseActorLoggedOut:   "Sam Support (support@example.org) signed out",
		CauseTargetSuspended:  "Maya Manager (manager@example.org) suspended the account",
		CauseActorSuspended:   "Sam Support (support@example.org)'s account was suspended",
		CauseActorLostRight:   "Sam Support (support@example.org) lost the right to impersonate",
		CauseActorSessionGone: "Sam Support (support@example.org)'s session ended",
		"something_else":      "something else",
	} {
		imp.Cause = cause
		if got := imp.EndWords(); got != want {
			t.Errorf("%s: %q, want %q", cause, got, want)
		}
	}
	imp.Cause, imp.EndedByName, imp.EndedByEmail = CauseRevoked, "", ""
	if got := imp.EndWords(); got != "someone ended it" {
		t.Errorf("a revoke by no one known: %q", got)
	}
}
