package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/util"

	"standin/server/standin"
)

const (
	neuro = "NEURO"
	cell  = "CELL"
)

// demo holds users shaped like the demo facility's.
type demo struct {
	owner, admin, support, manager, ada, ben, cleo, sam *standin.User
}

func newDemo() demo {
	d := demo{
		owner:   user("owner", standin.RoleOwner),
		admin:   user("admin", standin.RoleAdmin),
		support: user("support", standin.RoleSupport),
		manager: user("manager", standin.RoleManager, neuro, "lead"),
		ada:     user("ada", standin.RoleUser, neuro, "member"),
		ben:     user("ben", standin.RoleUser, neuro, "member"),
		cleo:    user("cleo", standin.RoleUser, cell, "member"),
		sam:     user("sam", standin.RoleAdmin, neuro, "lead"),
	}
	d.sam.Status = standin.StatusSuspended
	return d
}

func (d demo) all() []*standin.User {
	return []*standin.User{d.owner, d.admin, d.support, d.manager, d.ada, d.ben, d.cleo, d.sam}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	d := newDemo()
	authorizers := map[string]func(t *testing.T) *Authorizer{
		"Memory": func(t *testing.T) *Authorizer {
			return mustNew(t, Config{Directory: newDirectory(d.all()...)})
		},
		"MongoDB": func(t *testing.T) *Authorizer {
			return mustNew(t, Config{DB: mustDatabase(t), Directory: newDirectory(d.all()...)})
		},
	}
	tests := []struct {
		name    string
		subject *standin.User
		action  string
		object  string
		project string
		allowed bool
		reason  []string // substrings the reason must contain
	}{
		{"MemberBooksInOwnProject", d.ada, ActionCreate, ObjectBooking, neuro, true, []string{"members of this project"}},
		{"MemberCannotBookElsewhere", d.ada, ActionCreate, ObjectBooking, cell, false, []string{"membership of this project"}},
		{"OtherMemberCannotBook", d.cleo, ActionCreate, ObjectBooking, neuro, false, []string{"membership of this project"}},
		{"CleoBooksInCell", d.cleo, ActionCreate, ObjectBooking, cell, true, nil},
		{"LeadIsMember", d.manager, ActionCreate, ObjectBooking, neuro, true, nil},
		{"GlobalRoleIsNoMembership", d.admin, ActionCreate, ObjectBooking, neuro, false, []string{"membership"}},
		{"BookingNeedsAProject", d.ada, ActionCreate, ObjectBooking, "", false, []string{"only be done within a project"}},
		{"LeadListsProjectBookings", d.manager, ActionList, ObjectBookingProject, neuro, true, []string{"lead of this project"}},
		{"LeadNotOfOtherProject", d.manager, ActionList, ObjectBookingProject, cell, false, []string{"lead of this project", `"admin" or higher`}},
		{"AdminListsAnyProjectBookings", d.admin, ActionList, ObjectBookingProject, cell, true, []string{`role "admin"`}},
		{"OwnerInheritsAdmin", d.owner, ActionList, ObjectBookingProject, cell, true, nil},
		{"CancelOwn", d.ada, ActionCancel, ObjectBookingOwn, "", true, []string{`granted to role "user"`}},
		{"CancelAnyNeedsLeadOrAdmin", d.ada, ActionCancel, ObjectBookingAny, neuro, false, []string{"lead", `"admin"`}},
		{"LeadCancelsAny", d.manager, ActionCancel, ObjectBookingAny, neuro, true, nil},
		{"SupportListsUsers", d.support, ActionList, ObjectUser, "", true, []string{`role "support"`}},
		{"ManagerInheritsSupport", d.manager, ActionRead, ObjectUser, "", true, nil},
		{"UserCannotListUsers", d.ada, ActionList, ObjectUser, "", false, []string{`requires the role "support" or higher`}},
		{"LeadNoActivityGlobally", d.manager, ActionList, ObjectActivity, "", false, []string{`"admin" or higher`, "lead"}},
		{"LeadActivityInProject", d.manager, ActionList, ObjectActivity, neuro, true, nil},
		{"LeadNoActivityInOtherProject", d.manager, ActionList, ObjectActivity, cell, false, nil},
		{"AdminActivityGlobally", d.admin, ActionList, ObjectActivity, "", true, nil},
		{"SupportStartsImpersonation", d.support, ActionStart, ObjectImpersonation, "", true, nil},
		{"UserCannotImpersonate", d.ben, ActionStart, ObjectImpersonation, "", false, []string{`"support"`}},
		{"AdminUpdatesPolicy", d.admin, ActionUpdate, ObjectPolicy, "", true, nil},
		{"ManagerCannotUpdatePolicy", d.manager, ActionUpdate, ObjectPolicy, "", false, []string{`requires the role "admin" or higher`}},
		{"EveryoneReadsProfile", d.cleo, ActionRead, ObjectProfile, "", true, nil},
		{"ProfileInAProject", d.cleo, ActionRead, ObjectProfile, neuro, true, nil},
		{"SuspendedDenied", d.sam, ActionRead, ObjectProfile, "", false, []string{"suspended"}},
		{"SuspendedAdminDenied", d.sam, ActionList, ObjectBookingProject, neuro, false, []string{"suspended"}},
		{"NoSubject", nil, ActionRead, ObjectProfile, "", false, []string{"no one"}},
		{"UnknownUser", user("ghost", standin.RoleOwner), ActionRead, ObjectProfile, "", false, []string{`"user"`}},
		{"UnknownObject", d.owner, ActionRead, "nothing", "", false, []string{`no policy grants "read" on "nothing"`}},
		{"PatternIsNoProject", d.ada, ActionCreate, ObjectBooking, "NEU*", false, []string{"membership of this project"}},
		{"UnknownProjectGlobalRole", d.admin, ActionList, ObjectBookingProject, "NEW", true, []string{`role "admin"`}},
		{"UnknownProjectNoMembership", d.ada, ActionCreate, ObjectBooking, "NEW", false, []string{"membership of this project"}},
	}
	for name, newAuthorizer := range authorizers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newAuthorizer(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					// Twice: the second answer comes from the cache.
					for range 2 {
						got := a.Check(context.Background(), tt.subject, tt.action, tt.object, tt.project)
						if got.Allowed != tt.allowed {
							t.Fatalf("Allowed = %v, want %v (reason %q)", got.Allowed, tt.allowed, got.Reason)
						}
						if got.Reason == "" {
							t.Fatal("no reason given")
						}
						for _, want := range tt.reason {
							if !strings.Contains(got.Reason, want) {
								t.Errorf("reason %q does not contain %q", got.Reason, want)
							}
						}
					}
				})
			}
		})
	}
}

// TestBucketsAgreeWithModel checks that splitting the policies into buckets
// changes no decision: Casbin over the embedded model as written, with one
// policy type, decides every request the same way.
func TestBucketsAgreeWithModel(t *testing.T) {
	t.Parallel()
	d := newDemo()
	a := mustNew(t, Config{Directory: newDirectory(d.all()...), CacheSize: -1})
	extra := []Policy{
		{RoleSupport, neuro, ObjectResource, ActionCreate},
		{RoleProjectMember, cell, ObjectActivity, ActionList},
		{RoleUser, GlobalDomain, "report", "read"},
	}
	for _, p := range extra {
		if err := a.AddPolicy(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}

	m, err := newModel()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := casbin.NewEnforcer(m)
	if err != nil {
		t.Fatal(err)
	}
	plain.AddNamedDomainMatchingFunc("g", "KeyMatch", util.KeyMatch)
	for _, p := range a.Policies() {
		if _, err := plain.AddPolicy(p.rule()); err != nil {
			t.Fatal(err)
		}
	}
	grouping := inheritanceRules()
	for _, u := range d.all() {
		rules, _ := groupingRules(u)
		grouping = append(grouping, rules...)
	}
	if _, err := plain.AddGroupingPolicies(grouping); err != nil {
		t.Fatal(err)
	}

	var pairs [][2]string
	for _, p := range a.Policies() {
		pairs = append(pairs, [2]string{p.Object, p.Action})
	}
	pairs = append(pairs, [2]string{"nothing", "read"})
	checked := 0
	for _, u := range d.all() {
		if !u.Active() {
			continue
		}
		for _, project := range []string{"", neuro, cell, "OTHER"} {
			dom := project
			if dom == "" {
				dom = GlobalDomain
			}
			for _, oa := range pairs {
				want, err := plain.Enforce(userSubject(u.ID), dom, oa[0], oa[1])
				if err != nil {
					t.Fatal(err)
				}
				got := a.Check(context.Background(), u, oa[1], oa[0], project)
				if got.Allowed != want {
					t.Errorf("%s %s %s in %q: bucketed %v, plain model %v", u.ID, oa[1], oa[0], project, got.Allowed, want)
				}
				checked++
			}
		}
	}
	if checked < 500 {
		t.Fatalf("only %d requests compared", checked)
	}
}

func TestEnforcingModel(t *testing.T) {
	t.Parallel()
	m, err := newEnforcingModel()
	if err != nil {
		t.Fatal(err)
	}
	for i, pt := range bucketPTypes {
		mt := bucketContexts[i].MType
		got := m["m"][mt].Value
		if !strings.Contains(got, pt+"_obj") || !strings.Contains(got, "g(r_sub, "+pt+"_sub, r_dom)") {
			t.Errorf("matcher %s = %q does not read policy type %s", mt, got, pt)
		}
		if i > 0 && strings.Contains(got, " p_") {
			t.Errorf("matcher %s = %q still reads policy type p", mt, got)
		}
		if _, ok := m["p"][pt]; !ok {
			t.Errorf("policy type %s missing", pt)
		}
	}
}

func TestSyncUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(u *standin.User)
		// after the change:
		action, object, project string
		allowed                 bool
	}{
		{"MembershipRemoved", func(u *standin.User) { u.Memberships = nil },
			ActionCreate, ObjectBooking, neuro, false},
		{"MembershipAdded", func(u *standin.User) {
			u.Memberships = append(u.Memberships, standin.Membership{ProjectID: cell, Role: standin.ProjectMember})
		}, ActionCreate, ObjectBooking, cell, true},
		{"PromotedToLead", func(u *standin.User) { u.Memberships[0].Role = standin.ProjectLead },
			ActionList, ObjectBookingProject, neuro, true},
		{"PromotedToSupport", func(u *standin.User) { u.Role = standin.RoleSupport },
			ActionList, ObjectUser, "", true},
		{"SuspendedKeepsNothing", func(u *standin.User) { u.Status = standin.StatusSuspended },
			ActionRead, ObjectProfile, "", false},
		{"UnknownRoleGrantsNothing", func(u *standin.User) { u.Role = "root" },
			ActionRead, ObjectProfile, "", false},
		{"WildcardProjectIgnored", func(u *standin.User) {
			u.Memberships = []standin.Membership{{ProjectID: "*", Role: standin.ProjectLead}}
		}, ActionCreate, ObjectBooking, cell, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ada := user("ada", standin.RoleUser, neuro, "member")
			a := mustNew(t, Config{Directory: newDirectory(ada)})
			// Fill the cache with the request's answer before the change.
			before := a.Check(ctx, ada, tt.action, tt.object, tt.project)

			changed := *ada
			changed.Memberships = slices.Clone(ada.Memberships)
			tt.change(&changed)
			if err := a.SyncUser(&changed); err != nil {
				t.Fatal(err)
			}
			// The caller still holds the old, active document: the synced
			// rules are what count.
			got := a.Check(ctx, ada, tt.action, tt.object, tt.project)
			if got.Allowed != tt.allowed {
				t.Fatalf("after the change Allowed = %v, want %v (before: %v; reason %q)",
					got.Allowed, tt.allowed, before.Allowed, got.Reason)
			}
		})
	}

	t.Run("ErrNoID", func(t *testing.T) {
		t.Parallel()
		a := mustNew(t, Config{Directory: newDirectory()})
		for _, u := range []*standin.User{nil, {}} {
			if err := a.SyncUser(u); standin.ErrorCode(err) != standin.EInvalid {
				t.Errorf("SyncUser(%v) = %v, want %s", u, err, standin.EInvalid)
			}
		}
	})
}

func TestPolicyChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDemo()
	grant := Policy{Role: RoleUser, Domain: GlobalDomain, Object: ObjectActivity, Action: ActionList}

	for name, db := range map[string]bool{"Memory": false, "MongoDB": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Directory: newDirectory(d.all()...)}
			if db {
				cfg.DB = mustDatabase(t)
			}
			a := mustNew(t, cfg)
			if got := a.Check(ctx, d.ada, ActionList, ObjectActivity, ""); got.Allowed {
				t.Fatal("allowed before the policy exists")
			}
			if err := a.AddPolicy(ctx, grant); err != nil {
				t.Fatal(err)
			}
			if got := a.Check(ctx, d.ada, ActionList, ObjectActivity, ""); !got.Allowed {
				t.Fatalf("denied after AddPolicy: %q", got.Reason)
			}
			if !slices.Contains(a.Policies(), grant) {
				t.Error("Policies does not list the added policy")
			}
			if err := a.RemovePolicy(ctx, grant); err != nil {
				t.Fatal(err)
			}
			if got := a.Check(ctx, d.ada, ActionList, ObjectActivity, ""); got.Allowed {
				t.Fatal("allowed after RemovePolicy")
			}
			if slices.Contains(a.Policies(), grant) {
				t.Error("Policies still lists the removed policy")
			}
		})
	}
}

func TestPolicyValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := mustNew(t, Config{Directory: newDirectory()})
	ok := Policy{Role: RoleSupport, Domain: neuro, Object: "report", Action: ActionRead}
	tests := []struct {
		name string
		p    Policy
		code string
	}{
		{"OK", ok, ""},
		{"ErrExistsAlready", ok, standin.EConflict},
		{"ErrEmptyRole", Policy{"", GlobalDomain, ObjectUser, ActionList}, standin.EInvalid},
		{"ErrEmptyDomain", Policy{RoleUser, "", ObjectUser, ActionList}, standin.EInvalid},
		{"ErrEmptyObject", Policy{RoleUser, GlobalDomain, "", ActionList}, standin.EInvalid},
		{"ErrEmptyAction", Policy{RoleUser, GlobalDomain, ObjectUser, ""}, standin.EInvalid},
		{"ErrUnknownRole", Policy{"support", GlobalDomain, ObjectUser, ActionList}, standin.EInvalid},
		{"ErrUserAsRole", Policy{"user:ada", GlobalDomain, ObjectUser, ActionList}, standin.EInvalid},
		{"ErrPatternDomain", Policy{RoleUser, "NEU*", ObjectUser, ActionList}, standin.EInvalid},
		{"ErrBadObject", Policy{RoleUser, GlobalDomain, "User List", ActionList}, standin.EInvalid},
		{"ErrBadAction", Policy{RoleUser, GlobalDomain, ObjectUser, "list,read"}, standin.EInvalid},
	}
	for _, tt := range tests {
		err := a.AddPolicy(ctx, tt.p)
		if got := standin.ErrorCode(err); got != tt.code {
			t.Errorf("%s: AddPolicy(%v) = %v, want code %q", tt.name, tt.p, err, tt.code)
		}
		if tt.code != "" && standin.ErrorMessage(err) == "" {
			t.Errorf("%s: no message", tt.name)
		}
	}
	if n := countPolicy(a.Policies(), ok); n != 1 {
		t.Errorf("the policy added twice is listed %d times", n)
	}

	t.Run("ErrRemoveMissing", func(t *testing.T) {
		err := a.RemovePolicy(ctx, Policy{RoleOwner, GlobalDomain, "report", ActionRead})
		if standin.ErrorCode(err) != standin.ENotFound {
			t.Errorf("RemovePolicy of a missing policy = %v, want %s", err, standin.ENotFound)
		}
	})
	t.Run("RemoveAllButLastPolicyGrant", func(t *testing.T) {
		b := mustNew(t, Config{Directory: newDirectory()})
		for _, p := range b.Policies() {
			if err := b.RemovePolicy(ctx, p); err != nil && !p.governsPolicies() {
				t.Fatalf("RemovePolicy(%v): %v", p, err)
			}
		}
		if got := b.Policies(); len(got) != 1 || !got[0].governsPolicies() {
			t.Fatalf("left %v, want only the policy-update grant", got)
		}
	})
	t.Run("ErrLockout", func(t *testing.T) {
		last := Policy{RoleAdmin, GlobalDomain, ObjectPolicy, ActionUpdate}
		err := a.RemovePolicy(ctx, last)
		if standin.ErrorCode(err) != standin.EConflict {
			t.Fatalf("removing the last policy-update grant = %v, want %s", err, standin.EConflict)
		}
		spare := Policy{RoleOwner, GlobalDomain, ObjectPolicy, ActionUpdate}
		if err := a.AddPolicy(ctx, spare); err != nil {
			t.Fatal(err)
		}
		if err := a.RemovePolicy(ctx, last); err != nil {
			t.Fatalf("removing one of two policy-update grants: %v", err)
		}
	})
}

func countPolicy(ps []Policy, p Policy) int {
	n := 0
	for _, q := range ps {
		if q == p {
			n++
		}
	}
	return n
}

func TestNew(t *testing.T) {
	t.Parallel()
	t.Run("ErrNoDirectory", func(t *testing.T) {
		t.Parallel()
		if _, err := New(context.Background(), Config{}); standin.ErrorCode(err) != standin.EInvalid {
			t.Errorf("New without a directory = %v, want %s", err, standin.EInvalid)
		}
	})
	t.Run("ErrDirectory", func(t *testing.T) {
		t.Parallel()
		failing := &directory{err: errors.New("users unavailable")}
		if _, err := New(context.Background(), Config{Directory: failing}); err == nil {
			t.Error("New succeeded with a failing directory")
		}
	})
	t.Run("ReloadKeepsStateOnError", func(t *testing.T) {
		t.Parallel()
		dir := newDirectory(user("ada", standin.RoleUser))
		a := mustNew(t, Config{Directory: dir})
		dir.mu.Lock()
		dir.err = errors.New("users unavailable")
		dir.mu.Unlock()
		if err := a.Reload(context.Background()); err == nil {
			t.Fatal("Reload succeeded with a failing directory")
		}
		if got := a.Check(context.Background(), dir.users[0], ActionRead, ObjectProfile, ""); !got.Allowed {
			t.Fatalf("a failed reload changed decisions: %q", got.Reason)
		}
	})
	t.Run("ReloadReadsDirectory", func(t *testing.T) {
		t.Parallel()
		dir := newDirectory()
		a := mustNew(t, Config{Directory: dir})
		ada := user("ada", standin.RoleUser)
		if got := a.Check(context.Background(), ada, ActionRead, ObjectProfile, ""); got.Allowed {
			t.Fatal("an unknown user is allowed")
		}
		dir.mu.Lock()
		dir.users = append(dir.users, ada)
		dir.mu.Unlock()
		if err := a.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := a.Check(context.Background(), ada, ActionRead, ObjectProfile, ""); !got.Allowed {
			t.Fatalf("denied after Reload: %q", got.Reason)
		}
	})
}

// TestConcurrentChecks runs decisions from many goroutines while users and
// policies change, and checks that a change is visible to the decision made
// right after it despite the others filling the cache. Run with -race.
func TestConcurrentChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDemo()
	a := mustNew(t, Config{Directory: newDirectory(d.all()...)})
	extra := Policy{Role: RoleUser, Domain: cell, Object: ObjectActivity, Action: ActionList}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for i := range 8 {
		readers.Go(func() {
			users := d.all()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				u := users[(n+i)%len(users)]
				a.Check(ctx, u, ActionCreate, ObjectBooking, neuro)
				a.Check(ctx, u, ActionList, ObjectActivity, cell)
				a.Check(ctx, u, ActionList, ObjectUser, "")
				if n%50 == 0 {
					a.Policies()
				}
			}
		})
	}

	var writers sync.WaitGroup
	errs := make(chan error, 4)
	writers.Go(func() {
		for n := range 200 {
			ada := *d.ada
			member := n%2 == 0
			if !member {
				ada.Memberships = nil
			}
			if err := a.SyncUser(&ada); err != nil {
				errs <- err
				return
			}
			if got := a.Check(ctx, d.ada, ActionCreate, ObjectBooking, neuro); got.Allowed != member {
				errs <- fmt.Errorf("round %d: booking allowed %v right after SyncUser, want %v", n, got.Allowed, member)
				return
			}
		}
	})
	writers.Go(func() {
		for n := range 100 {
			add := n%2 == 0
			var err error
			if add {
				err = a.AddPolicy(ctx, extra)
			} else {
				err = a.RemovePolicy(ctx, extra)
			}
			if err != nil {
				errs <- err
				return
			}
			if got := a.Check(ctx, d.cleo, ActionList, ObjectActivity, cell); got.Allowed != add {
				errs <- fmt.Errorf("round %d: activity allowed %v right after the policy change, want %v", n, got.Allowed, add)
				return
			}
		}
	})
	writers.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
