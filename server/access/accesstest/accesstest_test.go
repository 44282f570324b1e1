package accesstest_test

import (
	"context"
	"testing"

	"standin/server/access/accesstest"
	"standin/server/standin"
)

func TestMembers(t *testing.T) {
	u := &standin.User{Name: "Ada", Memberships: []standin.Membership{{ProjectID: "p1", Role: standin.ProjectMember}}}
	if d := (accesstest.Members{}).Check(context.Background(), u, "create", "booking", "p1"); !d.Allowed {
		t.Errorf("a member in her project: %+v", d)
	}
	if d := (accesstest.Members{}).Check(context.Background(), u, "create", "booking", "p2"); d.Allowed || d.Reason == "" {
		t.Errorf("a member outside her project: %+v", d)
	}
}
