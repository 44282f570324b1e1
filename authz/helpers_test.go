package authz

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"

	"standin/server/dbtest"
	"standin/server/mongostore"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// The objects and actions of the console's default policies, which the
// tests use as a realistic policy set.
const (
	objectUser           = "user"
	objectUserAccess     = "user.access"
	objectProject        = "project"
	objectResource       = "resource"
	objectBooking        = "booking"
	objectBookingOwn     = "booking.own"
	objectBookingProject = "booking.project"
	objectBookingAny     = "booking.any"
	objectProfile        = "profile"
	objectPassword       = "password"
	objectPolicy         = "policy"
	objectImpersonation  = "impersonation"
	objectActivity       = "activity"

	actionList    = "list"
	actionRead    = "read"
	actionCheck   = "check"
	actionCreate  = "create"
	actionCancel  = "cancel"
	actionUpdate  = "update"
	actionChange  = "change"
	actionStart   = "start"
	actionRevoke  = "revoke"
	actionSuspend = "suspend"
)

// governing is the permission to change the test policies.
var governing = Permission{Object: objectPolicy, Action: actionUpdate}

// testDefaults returns the console's default policies.
func testDefaults() []Policy {
	g := func(role, object string, actions ...string) []Policy {
		out := make([]Policy, 0, len(actions))
		for _, a := range actions {
			out = append(out, Policy{Role: role, Domain: GlobalDomain, Object: object, Action: a})
		}
		return out
	}
	return slices.Concat(
		g(RoleSupport, objectUser, actionList, actionRead),
		g(RoleAdmin, objectUser, actionSuspend),
		g(RoleSupport, objectUserAccess, actionCheck),
		g(RoleUser, objectProject, actionList),
		g(RoleUser, objectResource, actionList),
		g(RoleProjectMember, objectBooking, actionCreate),
		g(RoleUser, objectBookingOwn, actionList, actionCancel),
		g(RoleProjectLead, objectBookingProject, actionList),
		g(RoleAdmin, objectBookingProject, actionList),
		g(RoleProjectLead, objectBookingAny, actionCancel),
		g(RoleAdmin, objectBookingAny, actionCancel),
		g(RoleUser, objectProfile, actionRead, actionUpdate),
		g(RoleUser, objectPassword, actionChange),
		g(RoleAdmin, objectPolicy, actionList, actionUpdate),
		g(RoleSupport, objectImpersonation, actionStart),
		g(RoleAdmin, objectImpersonation, actionRevoke),
		g(RoleProjectLead, objectImpersonation, actionRevoke),
		g(RoleAdmin, objectActivity, actionList),
		g(RoleProjectLead, objectActivity, actionList),
	)
}

// testConfig configures an Authorizer over dir with the test policies as
// defaults, kept in memory.
func testConfig(dir Directory) Config {
	return Config{Defaults: testDefaults(), Governing: governing, Directory: dir}
}

// storedConfig is testConfig with the policies kept in store.
func storedConfig(store PolicyStore, dir Directory) Config {
	c := testConfig(dir)
	c.Store = store
	return c
}

// directory is an in-memory Directory whose subjects tests can change.
type directory struct {
	mu    sync.Mutex
	users []*Subject
	err   error
}

func newDirectory(users ...*Subject) *directory { return &directory{users: users} }

func (d *directory) Subjects(context.Context) ([]*Subject, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	return slices.Clone(d.users), nil
}

// user returns an active subject with a global role and memberships given
// as projectID, role pairs.
func user(id, role string, memberships ...string) *Subject {
	u := &Subject{ID: id, Role: role, Status: Active}
	for i := 0; i+1 < len(memberships); i += 2 {
		u.Memberships = append(u.Memberships, Membership{Project: memberships[i], Role: memberships[i+1]})
	}
	return u
}

// mustStore returns a fresh database on the shared test server, dropped
// when the test ends, to keep policies in.
func mustStore(t *testing.T) *mongostore.DB {
	t.Helper()
	return dbtest.MustOpen(t)
}

// mustNew builds an Authorizer or fails the test.
func mustNew(t testing.TB, cfg Config) *Authorizer {
	t.Helper()
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// message returns the message of an *Error in err's chain, or "".
func message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
}
