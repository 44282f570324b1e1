package authz

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

const (
	benchUsers       = 1000
	benchProjects    = 100
	benchMemberships = 10
	benchPolicies    = 200
)

// benchRequest is one Check call of the benchmark's mix.
type benchRequest struct {
	user                    *Subject
	action, object, project string
}

// benchAuthorizer builds an Authorizer without storage over 1,000 users,
// each a member of 10 of 100 projects (lead of one), so 11,000 grouping
// rules, and 200 policies. It returns a mix of requests: allowed and
// denied, global and in projects, the user's and others'.
func benchAuthorizer(b *testing.B, cacheSize int) (*Authorizer, []benchRequest) {
	b.Helper()
	roles := []string{"user", "user", "user", "support", "manager", "admin"}
	project := func(i int) string { return fmt.Sprintf("p%03d", i%benchProjects) }
	var users []*Subject
	for i := range benchUsers {
		u := user(fmt.Sprintf("u%04d", i), roles[i%len(roles)])
		for j := range benchMemberships {
			role := "member"
			if j == 0 {
				role = "lead"
			}
			u.Memberships = append(u.Memberships, Membership{Project: project(i + j*7), Role: role})
		}
		users = append(users, u)
	}
	cfg := testConfig(newDirectory(users...))
	cfg.CacheSize = cacheSize
	a := mustNew(b, cfg)

	policyRoles := []string{RoleUser, RoleSupport, RoleManager, RoleAdmin, RoleOwner, RoleProjectMember, RoleProjectLead}
	actions := []string{"list", "read", "create", "update", "delete"}
	ctx := context.Background()
	for i := 0; len(a.Policies()) < benchPolicies; i++ {
		dom := GlobalDomain
		if i%3 != 0 {
			dom = project(i)
		}
		p := Policy{Role: policyRoles[i%len(policyRoles)], Domain: dom,
			Object: fmt.Sprintf("report.kind%02d", i%40), Action: actions[(i/40)%len(actions)]}
		if err := a.AddPolicy(ctx, p); err != nil {
			b.Fatal(err)
		}
	}

	var reqs []benchRequest
	for i, u := range users {
		own := u.Memberships[i%benchMemberships].Project
		other := project(i + 3)
		reqs = append(reqs,
			benchRequest{u, actionCreate, objectBooking, own},
			benchRequest{u, actionCreate, objectBooking, other},
			benchRequest{u, actionList, objectBookingProject, own},
			benchRequest{u, actionList, objectUser, ""},
			benchRequest{u, actionList, objectActivity, own},
			benchRequest{u, "read", fmt.Sprintf("report.kind%02d", i%40), other},
		)
	}
	if n := len(a.Policies()); n != benchPolicies {
		b.Fatalf("built %d policies, want %d", n, benchPolicies)
	}
	return a, reqs
}

func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()

	b.Run("Cached", func(b *testing.B) {
		a, reqs := benchAuthorizer(b, 0)
		for _, r := range reqs {
			a.Check(ctx, r.user, r.action, r.object, r.project)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			r := reqs[i%len(reqs)]
			a.Check(ctx, r.user, r.action, r.object, r.project)
		}
	})

	b.Run("CachedParallel", func(b *testing.B) {
		a, reqs := benchAuthorizer(b, 0)
		for _, r := range reqs {
			a.Check(ctx, r.user, r.action, r.object, r.project)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				r := reqs[i%len(reqs)]
				a.Check(ctx, r.user, r.action, r.object, r.project)
			}
		})
	})

	// Uncached: no decision cache. Casbin still memoizes role-graph
	// lookups between changes, as it does in production.
	b.Run("Uncached", func(b *testing.B) {
		a, reqs := benchAuthorizer(b, -1)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			r := reqs[i%len(reqs)]
			a.Check(ctx, r.user, r.action, r.object, r.project)
		}
	})

	// AfterChange: no decision cache, and each decision is the first after
	// a change of grouping rules, which empties Casbin's memo of role-graph
	// lookups: the worst case. Resetting Casbin costs about a millisecond,
	// so ns/op is dominated by it; check-ns/op times the decision alone.
	// (Stopping the benchmark timer instead disturbs the measurement
	// more than the decision costs.)
	b.Run("AfterChange", func(b *testing.B) {
		a, reqs := benchAuthorizer(b, -1)
		var spent time.Duration
		n := 0
		for i := 0; b.Loop(); i++ {
			a.forgetMemo()
			r := reqs[i%len(reqs)]
			start := time.Now()
			a.Check(ctx, r.user, r.action, r.object, r.project)
			spent += time.Since(start)
			n++
		}
		b.ReportMetric(float64(spent.Nanoseconds())/float64(n), "check-ns/op")
	})

	// UnknownProject: requests in projects no rule names.
	b.Run("UnknownProject", func(b *testing.B) {
		a, reqs := benchAuthorizer(b, -1)
		projects := make([]string, 1000)
		for i := range projects {
			projects[i] = fmt.Sprintf("new%04d", i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			r := reqs[i%len(reqs)]
			a.Check(ctx, r.user, r.action, r.object, projects[i%len(projects)])
		}
	})
}

// BenchmarkSyncUser measures changing one user's memberships among 11,000
// grouping rules: decisions wait for this long.
func BenchmarkSyncUser(b *testing.B) {
	a, reqs := benchAuthorizer(b, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		u := *reqs[(i/2*6)%len(reqs)].user // add, then remove, a membership
		if i%2 == 0 {
			u.Memberships = append(slices.Clone(u.Memberships), Membership{Project: "extra", Role: "member"})
		}
		if err := a.SyncUser(&u); err != nil {
			b.Fatal(err)
		}
	}
}

// forgetMemo does to Casbin what a change of grouping rules does, without
// changing any: drop the parsed matchers, with their memo of role-graph
// lookups, and parse them again.
func (a *Authorizer) forgetMemo() {
	a.mu.Lock()
	a.enf.SetRoleManager(a.enf.GetRoleManager())
	a.mu.Unlock()
	a.warmMatchers()
}

// BenchmarkCheckLatency times every Check on the request path over the
// benchmark's 11,000 grouping rules and 200 policies and reports the
// percentiles, which the mean of BenchmarkCheck hides. Each sample
// includes one read of the clock (tens of nanoseconds).
//
//   - Cached: every decision comes from the decision cache.
//   - Uncached: no decision cache; Casbin decides every request.
//   - Mixed: the cache holds 90% of the requests' keys and requests come
//     in random order, so about one in ten misses (hit-% reports it).
//   - AfterChange: no decision cache, and each decision is the first after
//     a change of grouping rules: the worst case.
func BenchmarkCheckLatency(b *testing.B) {
	ctx := context.Background()
	cases := []struct {
		name      string
		cacheSize int
		mixed     bool
		reset     bool
	}{
		{name: "Cached", cacheSize: 0},
		{name: "Uncached", cacheSize: -1},
		{name: "Mixed", mixed: true},
		{name: "AfterChange", cacheSize: -1, reset: true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			a, reqs := benchAuthorizer(b, tc.cacheSize)
			if tc.mixed {
				a.cache = newDecisionCache(len(reqs) * 9 / 10)
			}
			for _, r := range reqs {
				a.Check(ctx, r.user, r.action, r.object, r.project)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			var spent []time.Duration
			hits := 0
			for i := 0; b.Loop(); i++ {
				r := reqs[i%len(reqs)]
				if tc.mixed {
					r = reqs[rng.IntN(len(reqs))]
				}
				if tc.reset {
					a.forgetMemo()
				}
				if a.cached(r) {
					hits++
				}
				start := time.Now()
				a.Check(ctx, r.user, r.action, r.object, r.project)
				spent = append(spent, time.Since(start))
			}
			slices.Sort(spent)
			b.ReportMetric(float64(percentile(spent, 0.50).Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(percentile(spent, 0.99).Nanoseconds()), "p99-ns")
			b.ReportMetric(100*float64(hits)/float64(len(spent)), "hit-%")
		})
	}
}

// cached reports whether r's decision is in the decision cache.
func (a *Authorizer) cached(r benchRequest) bool {
	dom := r.project
	if dom == "" {
		dom = GlobalDomain
	}
	_, ok := a.cache.get(decisionKey{user: r.user.ID, dom: dom, obj: r.object, act: r.action})
	return ok
}

// BenchmarkPolicyVisible measures how long after AddPolicy or RemovePolicy
// is called a request sees the change. A reader goroutine decides the
// affected request over and over, as request handlers would, with the
// default decision cache; each iteration grants or withdraws the policy
// and waits for the reader's first decision that reflects it.
// visible-after-ns runs from the call's start to the end of that decision,
// so it includes the change itself and one uncached decision. Once the
// call has returned, a decision on the caller's goroutine must reflect it
// at once, or the benchmark fails.
func BenchmarkPolicyVisible(b *testing.B) {
	ctx := context.Background()
	a, reqs := benchAuthorizer(b, 0)
	var u *Subject
	for _, r := range reqs {
		if r.user.Role == "user" {
			u = r.user
			break
		}
	}
	p := Policy{Role: RoleUser, Domain: GlobalDomain, Object: "report.visible", Action: "read"}
	allowed := func() bool { return a.Check(ctx, u, p.Action, p.Object, "").Allowed }
	if allowed() {
		b.Fatalf("%s may already %s %s", u.ID, p.Action, p.Object)
	}

	// The reader sends the time of every decision that differs from the
	// one before it.
	flips := make(chan time.Time, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		last := false
		for {
			select {
			case <-stop:
				return
			default:
			}
			if now := allowed(); now != last {
				last = now
				flips <- time.Now()
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	var visible, calls []time.Duration
	for i := 0; b.Loop(); i++ {
		grant := i%2 == 0
		start := time.Now()
		var err error
		if grant {
			err = a.AddPolicy(ctx, p)
		} else {
			err = a.RemovePolicy(ctx, p)
		}
		returned := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		if allowed() != grant {
			b.Fatalf("a decision after the call returned does not reflect it (grant %v)", grant)
		}
		seen := <-flips
		visible = append(visible, seen.Sub(start))
		calls = append(calls, returned.Sub(start))
	}
	slices.Sort(visible)
	slices.Sort(calls)
	b.ReportMetric(float64(percentile(visible, 0.50).Nanoseconds()), "visible-after-ns")
	b.ReportMetric(float64(percentile(visible, 0.99).Nanoseconds()), "visible-after-p99-ns")
	b.ReportMetric(float64(visible[len(visible)-1].Nanoseconds()), "visible-after-max-ns")
	b.ReportMetric(float64(percentile(calls, 0.50).Nanoseconds()), "call-ns")
}

// percentile returns the q-quantile of sorted, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := max(int(math.Ceil(q*float64(len(sorted))))-1, 0)
	return sorted[i]
}
