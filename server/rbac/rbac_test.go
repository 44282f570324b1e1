package rbac_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"

	"standin/server/access"
	"standin/server/dbtest"
	"standin/server/mongostore"
	"standin/server/rbac"
	"standin/server/standin"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// mustAuthorizer stores a project and a member of it, Ada, and builds the
// authorizer over the database as Run does.
func mustAuthorizer(t *testing.T) (*rbac.Authorizer, *mongostore.DB, *standin.User, string) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.MustOpen(t)
	p := &standin.Project{Code: "NEURO", Name: "Neuro Imaging"}
	if err := db.EnsureProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	ada := &standin.User{Name: "Ada", Email: "ada@example.org", PasswordHash: "x", Role: standin.RoleUser,
		Status: standin.StatusActive, Memberships: []standin.Membership{{ProjectID: p.ID, Role: standin.ProjectMember}}}
	if err := db.EnsureUser(ctx, ada); err != nil {
		t.Fatal(err)
	}
	r, err := rbac.New(ctx, db, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return r, db, ada, p.ID
}

// TestRBACPolicies checks the default policies are seeded and the
// authorizer's errors arrive with the domain's codes.
func TestRBACPolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, ada, project := mustAuthorizer(t)
	pol := r

	want := access.DefaultPolicies()
	got := pol.Policies()
	if len(got) != len(want) {
		t.Fatalf("%d policies, want the %d defaults", len(got), len(want))
	}
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("the default %v is missing", p)
		}
	}
	if d := r.Check(ctx, ada, standin.ActCreate, standin.KindBooking, project); !d.Allowed {
		t.Errorf("a member may not book in the project: %q", d.Reason)
	}
	if d := r.Check(ctx, nil, standin.ActRead, standin.KindProfile, ""); d.Allowed || d.Reason == "" {
		t.Errorf("no one is allowed: %+v", d)
	}

	tests := []struct {
		name string
		err  error
		code string
	}{
		{"ErrExists", pol.AddPolicy(ctx, want[0]), standin.EConflict},
		{"ErrInvalid", pol.AddPolicy(ctx, standin.Policy{Role: "root", Domain: "*", Object: "x", Action: "y"}), standin.EInvalid},
		{"ErrNotFound", pol.RemovePolicy(ctx, standin.Policy{Role: "role:user", Domain: "*", Object: "x", Action: "y"}), standin.ENotFound},
		{"ErrLockout", pol.RemovePolicy(ctx, standin.Policy{Role: "role:admin", Domain: "*", Object: standin.KindPolicy, Action: standin.ActUpdate}), standin.EConflict},
		{"ErrNoUser", r.SyncUser(nil), standin.EInvalid},
	}
	for _, tt := range tests {
		if standin.ErrorCode(tt.err) != tt.code || standin.ErrorMessage(tt.err) == "An internal error occurred." {
			t.Errorf("%s: %v, want code %s with a sentence", tt.name, tt.err, tt.code)
		}
	}
}

// TestRBACSuspendedUser shows how a suspension reaches the authorizer:
// SyncUser with the stored, suspended user withdraws every role at once,
// even from a caller still holding the active record.
func TestRBACSuspendedUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, db, ada, _ := mustAuthorizer(t)
	if d := r.Check(ctx, ada, standin.ActRead, standin.KindProfile, ""); !d.Allowed {
		t.Fatalf("Ada may not read her profile: %q", d.Reason)
	}
	suspended, err := db.SetUserStatus(ctx, ada.ID, standin.StatusSuspended, ada.UpdatedAt)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Check(ctx, suspended, standin.ActRead, standin.KindProfile, ""); d.Allowed {
		t.Fatal("the suspended record is allowed")
	}
	if err := r.SyncUser(suspended); err != nil {
		t.Fatal(err)
	}
	if d := r.Check(ctx, ada, standin.ActRead, standin.KindProfile, ""); d.Allowed {
		t.Fatal("after SyncUser the active record still holds a role")
	}
}
