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
)

const (
	neuro = "NEURO"
	cell  = "CELL"
)

// demo holds users shaped like the demo facility's.
type demo struct {
	owner, admin, support, manager, ada, ben, cleo, sam *Subject
}

func newDemo() demo {
	d := demo{
		owner:   user("owner", "owner"),
		admin:   user("admin", "admin"),
		support: user("support", "support"),
		manager: user("manager", "manager", neuro, "lead"),
		ada:     user("ada", "user", neuro, "member"),
		ben:     user("ben", "user", neuro, "member"),
		cleo:    user("cleo", "user", cell, "member"),
		sam:     user("sam", "admin", neuro, "lead"),
	}
	d.sam.Status = Suspended
	return d
}

func (d demo) all() []*Subject {
	return []*Subject{d.owner, d.admin, d.support, d.manager, d.ada, d.ben, d.cleo, d.sam}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	d := newDemo()
	authorizers := map[string]func(t *testing.T) *Authorizer{
		"Memory": func(t *testing.T) *Authorizer {
			return mustNew(t, testConfig(newDirectory(d.all()...)))
		},
		"MongoDB": func(t *testing.T) *Authorizer {
			return mustNew(t, storedConfig(mustStore(t), newDirectory(d.all()...)))
		},
	}
	tests := []struct {
		name    string
		subject *Subject
		action  string
		object  string
		project string
		allowed bool
		reason  []string // substrings the reason must contain
	}{
		{"MemberBooksInOwnProject", d.ada, actionCreate, objectBooking, neuro, true, []string{"members of this project"}},
		{"MemberCannotBookElsewhere", d.ada, actionCreate, objectBooking, cell, false, []string{"membership of this project"}},
		{"OtherMemberCannotBook", d.cleo, actionCreate, objectBooking, neuro, false, []string{"membership of this project"}},
		{"CleoBooksInCell", d.cleo, actionCreate, objectBooking, cell, true, nil},
		{"LeadIsMember", d.manager, actionCreate, objectBooking, neuro, true, nil},
		{"GlobalRoleIsNoMembership", d.admin, actionCreate, objectBooking, neuro, false, []string{"membership"}},
		{"BookingNeedsAProject", d.ada, actionCreate, objectBooking, "", false, []string{"only be done within a project"}},
		{"LeadListsProjectBookings", d.manager, actionList, objectBookingProject, neuro, true, []string{"lead of this project"}},
		{"LeadNotOfOtherProject", d.manager, actionList, objectBookingProject, cell, false, []string{"lead of this project", `"admin" or higher`}},
		{"AdminListsAnyProjectBookings", d.admin, actionList, objectBookingProject, cell, true, []string{`role "admin"`}},
		{"OwnerInheritsAdmin", d.owner, actionList, objectBookingProject, cell, true, nil},
		{"CancelOwn", d.ada, actionCancel, objectBookingOwn, "", true, []string{`granted to role "user"`}},
		{"CancelAnyNeedsLeadOrAdmin", d.ada, actionCancel, objectBookingAny, neuro, false, []string{"lead", `"admin"`}},
		{"LeadCancelsAny", d.manager, actionCancel, objectBookingAny, neuro, true, nil},
		{"SupportListsUsers", d.support, actionList, objectUser, "", true, []string{`role "support"`}},
		{"ManagerInheritsSupport", d.manager, actionRead, objectUser, "", true, nil},
		{"UserCannotListUsers", d.ada, actionList, objectUser, "", false, []string{`requires the role "support" or higher`}},
		{"LeadNoActivityGlobally", d.manager, actionList, objectActivity, "", false, []string{`"admin" or higher`, "lead"}},
		{"LeadActivityInProject", d.manager, actionList, objectActivity, neuro, true, nil},
		{"LeadNoActivityInOtherProject", d.manager, actionList, objectActivity, cell, false, nil},
		{"AdminActivityGlobally", d.admin, actionList, objectActivity, "", true, nil},
		{"SupportStartsImpersonation", d.support, actionStart, objectImpersonation, "", true, nil},
		{"UserCannotImpersonate", d.ben, actionStart, objectImpersonation, "", false, []string{`"support"`}},
		{"AdminUpdatesPolicy", d.admin, actionUpdate, objectPolicy, "", true, nil},
		{"ManagerCannotUpdatePolicy", d.manager, actionUpdate, objectPolicy, "", false, []string{`requires the role "admin" or higher`}},
		{"EveryoneReadsProfile", d.cleo, actionRead, objectProfile, "", true, nil},
		{"ProfileInAProject", d.cleo, actionRead, objectProfile, neuro, true, nil},
		{"SuspendedDenied", d.sam, actionRead, objectProfile, "", false, []string{"suspended"}},
		{"SuspendedAdminDenied", d.sam, actionList, objectBookingProject, neuro, false, []string{"suspended"}},
		{"NoSubject", nil, actionRead, objectProfile, "", false, []string{"no one"}},
		{"UnknownUser", user("ghost", "owner"), actionRead, objectProfile, "", false, []string{`"user"`}},
		{"UnknownObject", d.owner, actionRead, "nothing", "", false, []string{`no policy grants "read" on "nothing"`}},
		{"PatternIsNoProject", d.ada, actionCreate, objectBooking, "NEU*", false, []string{"membership of this project"}},
		{"UnknownProjectGlobalRole", d.admin, actionList, objectBookingProject, "NEW", true, []string{`role "admin"`}},
		{"UnknownProjectNoMembership", d.ada, actionCreate, objectBooking, "NEW", false, []string{"membership of this project"}},
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
	cfg := testConfig(newDirectory(d.all()...))
	cfg.CacheSize = -1
	a := mustNew(t, cfg)
	extra := []Policy{
		{RoleSupport, neuro, objectResource, actionCreate},
		{RoleProjectMember, cell, objectActivity, actionList},
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
		if u.Status != Active {
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
		change func(u *Subject)
		// after the change:
		action, object, project string
		allowed                 bool
	}{
		{"MembershipRemoved", func(u *Subject) { u.Memberships = nil },
			actionCreate, objectBooking, neuro, false},
		{"MembershipAdded", func(u *Subject) {
			u.Memberships = append(u.Memberships, Membership{Project: cell, Role: "member"})
		}, actionCreate, objectBooking, cell, true},
		{"PromotedToLead", func(u *Subject) { u.Memberships[0].Role = "lead" },
			actionList, objectBookingProject, neuro, true},
		{"PromotedToSupport", func(u *Subject) { u.Role = "support" },
			actionList, objectUser, "", true},
		{"SuspendedKeepsNothing", func(u *Subject) { u.Status = Suspended },
			actionRead, objectProfile, "", false},
		{"UnknownRoleGrantsNothing", func(u *Subject) { u.Role = "root" },
			actionRead, objectProfile, "", false},
		{"WildcardProjectIgnored", func(u *Subject) {
			u.Memberships = []Membership{{Project: "*", Role: "lead"}}
		}, actionCreate, objectBooking, cell, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ada := user("ada", "user", neuro, "member")
			a := mustNew(t, testConfig(newDirectory(ada)))
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
		a := mustNew(t, testConfig(newDirectory()))
		for _, u := range []*Subject{nil, {}} {
			if err := a.SyncUser(u); KindOf(err) != Invalid {
				t.Errorf("SyncUser(%v) = %v, want %s", u, err, Invalid)
			}
		}
	})
}

func TestPolicyChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDemo()
	grant := Policy{Role: RoleUser, Domain: GlobalDomain, Object: objectActivity, Action: actionList}

	for name, db := range map[string]bool{"Memory": false, "MongoDB": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(newDirectory(d.all()...))
			if db {
				cfg.Store = mustStore(t)
			}
			a := mustNew(t, cfg)
			if got := a.Check(ctx, d.ada, actionList, objectActivity, ""); got.Allowed {
				t.Fatal("allowed before the policy exists")
			}
			if err := a.AddPolicy(ctx, grant); err != nil {
				t.Fatal(err)
			}
			if got := a.Check(ctx, d.ada, actionList, objectActivity, ""); !got.Allowed {
				t.Fatalf("denied after AddPolicy: %q", got.Reason)
			}
			if !slices.Contains(a.Policies(), grant) {
				t.Error("Policies does not list the added policy")
			}
			if err := a.RemovePolicy(ctx, grant); err != nil {
				t.Fatal(err)
			}
			if got := a.Check(ctx, d.ada, actionList, objectActivity, ""); got.Allowed {
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
	a := mustNew(t, testConfig(newDirectory()))
	ok := Policy{Role: RoleSupport, Domain: neuro, Object: "report", Action: actionRead}
	tests := []struct {
		name string
		p    Policy
		code Kind
	}{
		{"OK", ok, ""},
		{"ErrExistsAlready", ok, Conflict},
		{"ErrEmptyRole", Policy{"", GlobalDomain, objectUser, actionList}, Invalid},
		{"ErrEmptyDomain", Policy{RoleUser, "", objectUser, actionList}, Invalid},
		{"ErrEmptyObject", Policy{RoleUser, GlobalDomain, "", actionList}, Invalid},
		{"ErrEmptyAction", Policy{RoleUser, GlobalDomain, objectUser, ""}, Invalid},
		{"ErrUnknownRole", Policy{"support", GlobalDomain, objectUser, actionList}, Invalid},
		{"ErrUserAsRole", Policy{"user:ada", GlobalDomain, objectUser, actionList}, Invalid},
		{"ErrPatternDomain", Policy{RoleUser, "NEU*", objectUser, actionList}, Invalid},
		{"ErrBadObject", Policy{RoleUser, GlobalDomain, "User List", actionList}, Invalid},
		{"ErrBadAction", Policy{RoleUser, GlobalDomain, objectUser, "list,read"}, Invalid},
	}
	for _, tt := range tests {
		err := a.AddPolicy(ctx, tt.p)
		if got := KindOf(err); got != tt.code {
			t.Errorf("%s: AddPolicy(%v) = %v, want kind %q", tt.name, tt.p, err, tt.code)
		}
		if tt.code != "" && message(err) == "" {
			t.Errorf("%s: no message", tt.name)
		}
	}
	if n := countPolicy(a.Policies(), ok); n != 1 {
		t.Errorf("the policy added twice is listed %d times", n)
	}

	t.Run("ErrRemoveMissing", func(t *testing.T) {
		err := a.RemovePolicy(ctx, Policy{RoleOwner, GlobalDomain, "report", actionRead})
		if KindOf(err) != NotFound {
			t.Errorf("RemovePolicy of a missing policy = %v, want %s", err, NotFound)
		}
	})
	t.Run("RemoveAllButLastPolicyGrant", func(t *testing.T) {
		b := mustNew(t, testConfig(newDirectory()))
		for _, p := range b.Policies() {
			if err := b.RemovePolicy(ctx, p); err != nil && !b.governs(p) {
				t.Fatalf("RemovePolicy(%v): %v", p, err)
			}
		}
		if got := b.Policies(); len(got) != 1 || !b.governs(got[0]) {
			t.Fatalf("left %v, want only the policy-update grant", got)
		}
	})
	t.Run("ErrLockout", func(t *testing.T) {
		last := Policy{RoleAdmin, GlobalDomain, objectPolicy, actionUpdate}
		err := a.RemovePolicy(ctx, last)
		if KindOf(err) != Conflict {
			t.Fatalf("removing the last policy-update grant = %v, want %s", err, Conflict)
		}
		spare := Policy{RoleOwner, GlobalDomain, objectPolicy, actionUpdate}
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
		if _, err := New(context.Background(), Config{}); KindOf(err) != Invalid {
			t.Errorf("New without a directory = %v, want %s", err, Invalid)
		}
	})
	t.Run("ErrBadDefault", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig(newDirectory())
		cfg.Defaults = append(cfg.Defaults, Policy{"role:root", GlobalDomain, objectUser, actionList})
		_, err := New(context.Background(), cfg)
		if KindOf(err) != Invalid || !strings.Contains(message(err), "role:root") {
			t.Errorf("New with a default naming an unknown role = %v, want %s naming it", err, Invalid)
		}
	})
	t.Run("ErrDirectory", func(t *testing.T) {
		t.Parallel()
		failing := &directory{err: errors.New("users unavailable")}
		if _, err := New(context.Background(), testConfig(failing)); err == nil {
			t.Error("New succeeded with a failing directory")
		}
	})
	t.Run("ReloadKeepsStateOnError", func(t *testing.T) {
		t.Parallel()
		dir := newDirectory(user("ada", "user"))
		a := mustNew(t, testConfig(dir))
		dir.mu.Lock()
		dir.err = errors.New("users unavailable")
		dir.mu.Unlock()
		if err := a.Reload(context.Background()); err == nil {
			t.Fatal("Reload succeeded with a failing directory")
		}
		if got := a.Check(context.Background(), dir.users[0], actionRead, objectProfile, ""); !got.Allowed {
			t.Fatalf("a failed reload changed decisions: %q", got.Reason)
		}
	})
	t.Run("ReloadReadsDirectory", func(t *testing.T) {
		t.Parallel()
		dir := newDirectory()
		a := mustNew(t, testConfig(dir))
		ada := user("ada", "user")
		if got := a.Check(context.Background(), ada, actionRead, objectProfile, ""); got.Allowed {
			t.Fatal("an unknown user is allowed")
		}
		dir.mu.Lock()
		dir.users = append(dir.users, ada)
		dir.mu.Unlock()
		if err := a.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := a.Check(context.Background(), ada, actionRead, objectProfile, ""); !got.Allowed {
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
	a := mustNew(t, testConfig(newDirectory(d.all()...)))
	extra := Policy{Role: RoleUser, Domain: cell, Object: objectActivity, Action: actionList}

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
				a.Check(ctx, u, actionCreate, objectBooking, neuro)
				a.Check(ctx, u, actionList, objectActivity, cell)
				a.Check(ctx, u, actionList, objectUser, "")
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
			if got := a.Check(ctx, d.ada, actionCreate, objectBooking, neuro); got.Allowed != member {
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
			if got := a.Check(ctx, d.cleo, actionList, objectActivity, cell); got.Allowed != add {
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
