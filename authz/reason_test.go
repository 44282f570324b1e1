package authz

import "testing"

func TestDenyReason(t *testing.T) {
	t.Parallel()
	g := func(role, dom string) Policy { return Policy{Role: role, Domain: dom, Object: "x", Action: "y"} }
	tests := []struct {
		name   string
		grants []Policy
		dom    string
		want   string
	}{
		{"LowestRankNamed", []Policy{g(RoleAdmin, "*"), g(RoleSupport, "*")}, "*",
			`requires the role "support" or higher`},
		{"OwnerHasNoHigher", []Policy{g(RoleOwner, "*")}, "*",
			`requires the role "owner"`},
		{"Membership", []Policy{g(RoleProjectMember, "*")}, "P1",
			`requires membership of this project (member or lead)`},
		{"MemberCoversLead", []Policy{g(RoleProjectLead, "*"), g(RoleProjectMember, "*")}, "P1",
			`requires membership of this project (member or lead)`},
		{"LeadOrRole", []Policy{g(RoleProjectLead, "*"), g(RoleAdmin, "*")}, "P1",
			`requires being lead of this project, or the role "admin" or higher`},
		{"OtherProjectIgnored", []Policy{g(RoleUser, "P2"), g(RoleAdmin, "*")}, "P1",
			`requires the role "admin" or higher`},
		{"ThisProjectCounts", []Policy{g(RoleUser, "P1"), g(RoleAdmin, "*")}, "P1",
			`requires the role "user" or higher`},
		{"GlobalIgnoresProjectRoles", []Policy{g(RoleProjectLead, "*"), g(RoleAdmin, "*")}, "*",
			`requires the role "admin" or higher; within a project, being lead of the project also grants it`},
		{"OnlyInProject", []Policy{g(RoleProjectMember, "*")}, "*",
			`can only be done within a project, and requires membership of the project (member or lead)`},
		{"OnlyElsewhere", []Policy{g(RoleUser, "P2")}, "P1",
			`no policy grants "y" on "x"`},
		{"Nothing", nil, "*",
			`no policy grants "y" on "x"`},
		{"ForeignSubject", []Policy{g("team:ops", "*")}, "*",
			`no role you hold grants "y" on "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := denyReason(tt.grants, tt.dom, "x", "y"); got != tt.want {
				t.Errorf("denyReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAllowReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		row  []string
		want string
	}{
		{[]string{RoleUser, "*", "profile", "read"}, `granted to role "user"`},
		{[]string{RoleSupport, "P1", "report", "read"}, `granted to role "support" in this project`},
		{[]string{RoleProjectMember, "*", "booking", "create"}, `granted to members of this project`},
		{[]string{RoleProjectLead, "*", "activity", "list"}, `granted to the lead of this project`},
		{[]string{"team:ops", "*", "x", "y"}, `granted by policy "p, team:ops, *, x, y"`},
		{nil, `granted by policy`},
	}
	for _, tt := range tests {
		if got := allowReason(tt.row); got != tt.want {
			t.Errorf("allowReason(%v) = %q, want %q", tt.row, got, tt.want)
		}
	}
}
