package access_test

import (
	"context"
	"testing"
	"time"

	"standin/server/standin"
)

func TestPermissions(t *testing.T) {
	f := mustDemo(t, time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	ctx := context.Background()
	self := func(name string) *standin.Principal {
		u := f.users[name]
		return &standin.Principal{Actor: u, Subject: u}
	}
	cases := []struct {
		name string
		p    *standin.Principal
		want standin.Permissions
	}{
		{"owner", self("owner"), standin.Permissions{Directory: true, CheckAccess: true, Impersonate: true, Suspend: true,
			Activity: standin.ScopeAll, Revoke: standin.ScopeAll, Policies: true, EditPolicies: true,
			Settings: true, EditSettings: true, Approve: standin.ScopeAll, Moderate: standin.ScopeAll, Sinks: true, EditSinks: true}},
		// Admins keep the audit log's sinks.
		{"admin", self("admin"), standin.Permissions{Directory: true, CheckAccess: true, Impersonate: true, Suspend: true,
			Activity: standin.ScopeAll, Revoke: standin.ScopeAll, Policies: true, EditPolicies: true,
			Settings: true, EditSettings: true, Approve: standin.ScopeAll, Moderate: standin.ScopeAll, Sinks: true, EditSinks: true}},
		{"support", self("support"), standin.Permissions{Directory: true, CheckAccess: true, Impersonate: true,
			Activity: standin.ScopeNone, Revoke: standin.ScopeNone, Approve: standin.ScopeNone, Moderate: standin.ScopeNone}},
		// A manager reads and ends what concerns the project they lead,
		// and approves requests to impersonate its members.
		{"manager", self("manager"), standin.Permissions{Directory: true, CheckAccess: true, Impersonate: true,
			Activity: standin.ScopeProjects, Revoke: standin.ScopeProjects, Approve: standin.ScopeProjects, Moderate: standin.ScopeProjects}},
		{"ben", self("ben"), standin.Permissions{Activity: standin.ScopeNone, Revoke: standin.ScopeNone, Approve: standin.ScopeNone, Moderate: standin.ScopeNone}},
		// Acting as Ben, the agent has Ben's permissions, and never
		// starts another impersonation.
		{"support as ben", &standin.Principal{Actor: f.users["support"], Subject: f.users["ben"], Impersonation: &standin.Impersonation{ID: "i"}},
			standin.Permissions{Activity: standin.ScopeNone, Revoke: standin.ScopeNone, Approve: standin.ScopeNone, Moderate: standin.ScopeNone}},
		// The admin acting as the support agent checks access as the agent
		// would, but neither impersonates nor works the directory.
		{"admin as support", &standin.Principal{Actor: f.users["admin"], Subject: f.users["support"], Impersonation: &standin.Impersonation{ID: "i"}},
			standin.Permissions{CheckAccess: true, Activity: standin.ScopeNone, Revoke: standin.ScopeNone, Approve: standin.ScopeNone, Moderate: standin.ScopeNone}},
	}
	for _, c := range cases {
		got, err := f.decider.Permissions(ctx, c.p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
	if got, err := f.decider.Permissions(ctx, nil); err != nil || got != (standin.Permissions{Activity: standin.ScopeNone, Revoke: standin.ScopeNone, Approve: standin.ScopeNone, Moderate: standin.ScopeNone}) {
		t.Errorf("no principal: %+v, %v; want nothing allowed", got, err)
	}
}
