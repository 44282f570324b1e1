package standin

import (
	"strings"
	"testing"
)

func TestNeedFor(t *testing.T) {
	ben := &User{ID: "ben", Role: RoleUser, Memberships: []Membership{{ProjectID: "neuro"}, {ProjectID: "cell"}}}
	sam := &User{ID: "sam", Role: RoleSupport}
	tests := []struct {
		name  string
		rules []ModeRule
		who   *User
		want  Need
	}{
		{"NoRules", nil, ben, Need{Mode: ModeDirect}},
		{"Role", []ModeRule{{Scope: "role:user", Mode: ModeConsent}}, ben, Need{Mode: ModeConsent, Scope: "role:user"}},
		{"OtherRole", []ModeRule{{Scope: "role:user", Mode: ModeConsent}}, sam, Need{Mode: ModeDirect}},
		{"ProjectStricterThanRole", []ModeRule{{Scope: "role:user", Mode: ModeConsent}, {Scope: "project:cell", Mode: ModeApproval, Approvals: 2}},
			ben, Need{Mode: ModeApproval, Approvals: 2, Scope: "project:cell"}},
		{"RoleStricterThanProject", []ModeRule{{Scope: "project:neuro", Mode: ModeConsent}, {Scope: "role:user", Mode: ModeModerated}},
			ben, Need{Mode: ModeModerated, Scope: "role:user"}},
		{"MostApprovers", []ModeRule{{Scope: "project:neuro", Mode: ModeApproval, Approvals: 3}, {Scope: "project:cell", Mode: ModeApproval, Approvals: 1}},
			ben, Need{Mode: ModeApproval, Approvals: 3, Scope: "project:neuro"}},
		{"ApproversOnlyForApproval", []ModeRule{{Scope: "project:neuro", Mode: ModeApproval, Approvals: 3}, {Scope: "role:user", Mode: ModeModerated}},
			ben, Need{Mode: ModeModerated, Scope: "role:user"}},
		{"NotAMember", []ModeRule{{Scope: "project:other", Mode: ModeApproval}}, ben, Need{Mode: ModeDirect}},
		{"NoTarget", []ModeRule{{Scope: "role:user", Mode: ModeConsent}}, nil, Need{Mode: ModeDirect}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &ImpersonationSettings{Rules: tt.rules}
			if got := s.NeedFor(tt.who); got != tt.want {
				t.Fatalf("NeedFor = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	projects := []string{"neuro"}
	tests := []struct {
		name    string
		s       ImpersonationSettings
		wantErr string // "" when valid
	}{
		{"Empty", ImpersonationSettings{}, ""},
		{"Valid", ImpersonationSettings{Rules: []ModeRule{{Scope: "role:user", Mode: ModeConsent}, {Scope: "project:neuro", Mode: ModeApproval, Approvals: 2}}}, ""},
		{"UnknownRole", ImpersonationSettings{Rules: []ModeRule{{Scope: "role:boss", Mode: ModeConsent}}}, "names no role"},
		{"Owner", ImpersonationSettings{Rules: []ModeRule{{Scope: "role:owner", Mode: ModeConsent}}}, "Owners cannot be impersonated"},
		{"UnknownProject", ImpersonationSettings{Rules: []ModeRule{{Scope: "project:x", Mode: ModeConsent}}}, "names no project"},
		{"BadScope", ImpersonationSettings{Rules: []ModeRule{{Scope: "team:x", Mode: ModeConsent}}}, "A scope is"},
		{"Twice", ImpersonationSettings{Rules: []ModeRule{{Scope: "role:user", Mode: ModeConsent}, {Scope: " role:user", Mode: ModeApproval}}}, "two rules"},
		{"BadMode", ImpersonationSettings{Rules: []ModeRule{{Scope: "role:user", Mode: "ask"}}}, "not one of"},
		{"ApproversWithoutApproval", ImpersonationSettings{Rules: []ModeRule{{Scope: "role:user", Mode: ModeConsent, Approvals: 2}}}, "Only the approval mode"},
		{"TooManyApprovers", ImpersonationSettings{Rules: []ModeRule{{Scope: "role:user", Mode: ModeApproval, Approvals: MaxApprovals + 1}}}, "from 1 to"},
		{"NegativeApprovers", ImpersonationSettings{Rules: []ModeRule{{Scope: "role:user", Mode: ModeApproval, Approvals: -1}}}, "from 1 to"},
		{"RequestTooLong", ImpersonationSettings{RequestMinutes: MaxRequestMinutes + 1}, "A request waits"},
		{"GraceTooShort", ImpersonationSettings{GraceSeconds: MinGraceSeconds - 1}, "moderated session waits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s.Clone()
			err := s.Normalize(projects)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Normalize: %v", err)
			case tt.wantErr != "" && (err == nil || ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Normalize = %v, want EInvalid saying %q", err, tt.wantErr)
			}
			if err == nil && (s.RequestMinutes == 0 || s.GraceSeconds == 0) {
				t.Fatalf("defaults not filled: %+v", s)
			}
			if err == nil {
				for _, r := range s.Rules {
					if r.Mode == ModeApproval && r.Approvals < 1 {
						t.Fatalf("an approval rule without approvers: %+v", r)
					}
				}
			}
		})
	}
}

func TestSettingsChanges(t *testing.T) {
	old := &ImpersonationSettings{RequestMinutes: 10, GraceSeconds: 60, Rules: []ModeRule{
		{Scope: "role:user", Mode: ModeConsent}, {Scope: "project:a", Mode: ModeApproval, Approvals: 1}}}
	next := &ImpersonationSettings{RequestMinutes: 15, GraceSeconds: 60, Rules: []ModeRule{
		{Scope: "role:user", Mode: ModeApproval, Approvals: 2}, {Scope: "role:support", Mode: ModeConsent}}}
	want := "role:user consent → approval ×2; role:support direct → consent; project:a approval → direct; requests wait 10 → 15 min"
	if got := next.Changes(old); got != want {
		t.Fatalf("Changes =\n%q, want\n%q", got, want)
	}
	if got := old.Changes(old.Clone()); got != "no change" {
		t.Fatalf("Changes of the same settings = %q", got)
	}
}

// TestAlertHoursFromMidnight: facility hours may start at midnight once
// their end is set; unset, both take the defaults.
func TestAlertHoursFromMidnight(t *testing.T) {
	r := AlertRules{DayStart: 0, DayEnd: 12 * 60}.WithDefaults()
	if r.DayStart != 0 || r.DayEnd != 720 || r.Check() != nil {
		t.Fatalf("hours from midnight: %+v %v", r, r.Check())
	}
	if r := (AlertRules{}).WithDefaults(); r.DayStart != DefaultDayStart || r.DayEnd != DefaultDayEnd {
		t.Fatalf("unset hours: %+v", r)
	}
}
