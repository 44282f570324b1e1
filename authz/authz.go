// Package authz decides what a subject may do. It enforces a Casbin model
// of role-based access with domains, where a domain is a project and "*" is
// the global scope (see model.conf).
//
// Two kinds of rule feed it. Grouping rules place subjects in roles; they
// are derived from the caller's user records (a subject's global role and
// project memberships), which stay their single source of truth, and are
// never stored here. Policies grant an action on an object to a role; they
// are kept in a PolicyStore through Adapter, seeded with the configured
// defaults on first start and changeable at run time.
//
// The package knows nothing of what its objects and actions mean: they are
// names its caller gives, in policies and in requests alike.
//
// Decisions are cached; every change clears the cache before the call that
// made it returns, so the next decision sees it.
//
// Errors the package makes are *Error values of the kinds each function
// documents, for the caller to translate; errors of the PolicyStore and the
// Directory are returned wrapped, as their source made them; any other
// fault is an uncoded error.
package authz

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// Directory lists the subjects whose roles and memberships the Authorizer
// enforces. It is declared here, where it is used, for the caller's user
// store to implement.
type Directory interface {
	// Subjects returns every subject, suspended ones included.
	Subjects(ctx context.Context) ([]*Subject, error)
}

// Config configures New. Its zero values are documented defaults, except
// Directory, which is required.
type Config struct {
	// Store holds the policies. Nil keeps them in memory only, starting
	// from Defaults: for benchmarks and tests.
	Store PolicyStore
	// Defaults are the policies a new installation starts with: written
	// to a Store that never held any, or held in memory without one.
	Defaults []Policy
	// Additions are sets of default policies that came after
	// installations began. A Store seeded before a set existed gets it
	// once, at the first start that knows it, however many start
	// together; a Store seeded with
	// Defaults (which should include every set) records each set as
	// given. Either way, a policy of a set an administrator removes stays
	// removed.
	Additions []PolicySet
	// SeedWait is how long a start waits for another start that claimed
	// the writing of default policies (or of a set of Additions) to
	// finish it, before presuming that start stopped and finishing it
	// itself. Zero means DefaultSeedWait. Only a start that finds such a
	// step claimed and unfinished waits at all.
	SeedWait time.Duration
	// Governing is the permission to change policies. RemovePolicy
	// refuses to withdraw the last policy granting it to a global role,
	// so that someone can always repair the policies. The zero value
	// guards nothing.
	Governing Permission
	// Directory gives the subjects at start-up and on Reload.
	Directory Directory
	// Logger receives faults and notable events; nil discards them.
	Logger *slog.Logger
	// CacheSize bounds how many decisions are remembered: zero means
	// DefaultCacheSize, a negative value disables the cache.
	CacheSize int
}

// Authorizer decides requests and manages policies. It is safe for
// concurrent use.
type Authorizer struct {
	dir       Directory
	store     *Adapter // nil: policies live in memory only
	governing Permission
	log       *slog.Logger
	cache     *decisionCache
	seedWait  time.Duration

	// writeMu serializes changes (policies, users, reloads) and is held
	// across their storage round trips, so storage and memory apply
	// changes in the same order. Decisions never wait for it.
	writeMu sync.Mutex

	// mu guards what follows. Decisions hold it for reading while they
	// evaluate and fill the cache; changes hold it for writing only while
	// they change memory and clear the cache. A decision computed before a
	// change can therefore never be cached after it.
	mu       sync.RWMutex
	enf      *casbin.Enforcer
	policies []Policy              // sorted
	grants   map[grantKey][]Policy // policies by object and action
	// projects counts the rules that name each project: grouping rules
	// (memberships) and policies. See decide for why.
	projects map[string]int
	// userRules holds each user's grouping rules, so SyncUser changes only
	// the difference: Casbin removes a single rule in constant time but
	// re-indexes every rule when removing by filter.
	userRules map[string][][]string
}

// New loads policies (seeding Defaults into a store that never held any,
// and each set of Additions into a store seeded before it; see seed) and
// the subjects' roles, and returns a ready Authorizer.
//
// Errors: Invalid when Directory is missing, a default policy is malformed
// (as for AddPolicy) or a stored policy does not fit the model; the
// store's and the Directory's own errors, wrapped.
func New(ctx context.Context, cfg Config) (*Authorizer, error) {
	if cfg.Directory == nil {
		return nil, errorf(Invalid, "The authorizer needs a directory of subjects.")
	}
	for _, p := range cfg.Defaults {
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("default policy %q: %w", p.String(), err)
		}
	}
	for _, set := range cfg.Additions {
		for _, p := range set.Policies {
			if err := p.validate(); err != nil {
				return nil, fmt.Errorf("default policy %q of %s: %w", p.String(), set.Name, err)
			}
		}
	}
	a := &Authorizer{
		dir:       cfg.Directory,
		governing: cfg.Governing,
		log:       cfg.Logger,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	a.cache = newDecisionCache(size)
	a.seedWait = cfg.SeedWait
	if a.seedWait <= 0 {
		a.seedWait = DefaultSeedWait
	}
	if cfg.Store != nil {
		a.store = NewAdapter(cfg.Store)
		if err := a.seed(ctx, cfg.Defaults, cfg.Additions); err != nil {
			return nil, err
		}
	} else {
		a.policies = slices.Clone(cfg.Defaults)
	}
	if err := a.Reload(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// PolicySet is a named set of default policies (see Config.Additions).
type PolicySet struct {
	Name     string
	Policies []Policy
}

// rulesOf returns the Casbin rules of policies.
func rulesOf(policies []Policy) [][]string {
	rules := make([][]string, 0, len(policies))
	for _, p := range policies {
		rules = append(rules, p.rule())
	}
	return rules
}

// Reload rebuilds everything from storage: the policies from the store
// (or, without one, the policies in memory) and the grouping rules from the
// Directory. Decisions keep using the previous state until the new one is
// complete, and it replaces the old one at once.
//
// Errors: as New's, and the current state is kept.
func (a *Authorizer) Reload(ctx context.Context) error {
	a.writeMu.Lock()
	defer a.writeMu.Unlock()

	var policies []Policy
	if a.store != nil {
		stored, err := newModel()
		if err != nil {
			return err
		}
		if err := a.store.LoadPolicyCtx(ctx, stored); err != nil {
			return err
		}
		policies = policiesOf(stored)
	} else {
		a.mu.RLock()
		policies = slices.Clone(a.policies)
		a.mu.RUnlock()
	}
	subjects, err := a.dir.Subjects(ctx)
	if err != nil {
		return fmt.Errorf("list subjects: %w", err)
	}

	m, err := newEnforcingModel()
	if err != nil {
		return err
	}
	for _, p := range policies {
		if err := m.AddPolicies("p", p.ptype(), [][]string{p.rule()}); err != nil {
			return err
		}
	}
	if err := m.AddPolicies("g", "g", inheritanceRules()); err != nil {
		return err
	}
	members := make(map[string]int)
	userRules := make(map[string][][]string, len(subjects))
	for _, s := range subjects {
		rules, skipped := groupingRules(s)
		if len(skipped) > 0 {
			a.log.WarnContext(ctx, "user has unrecognised roles; they grant nothing", "user", s.ID, "ignored", skipped)
		}
		if len(rules) == 0 {
			continue
		}
		affected, err := m.AddPoliciesWithAffected("g", "g", rules)
		if err != nil {
			return err
		}
		countProjects(members, affected, +1)
		userRules[s.ID] = append(userRules[s.ID], affected...)
	}

	enf, err := newEnforcer(m)
	if err != nil {
		return err
	}

	a.mu.Lock()
	a.enf = enf
	a.projects = members
	a.userRules = userRules
	a.policies = nil // members counts no policy yet; setPolicies adds them
	a.setPolicies(policies)
	a.cache.clear()
	a.mu.Unlock()
	a.warmMatchers()
	return nil
}

// countProjects adds sign to the count of the project each grouping rule
// names.
func countProjects(counts map[string]int, rules [][]string, sign int) {
	for _, r := range rules {
		if d := r[2]; d != GlobalDomain {
			if counts[d] += sign; counts[d] <= 0 {
				delete(counts, d)
			}
		}
	}
}

// countPolicies adds sign to the count of the project each policy names.
func countPolicies(counts map[string]int, ps []Policy, sign int) {
	for _, p := range ps {
		if d := p.Domain; d != GlobalDomain {
			if counts[d] += sign; counts[d] <= 0 {
				delete(counts, d)
			}
		}
	}
}

// policiesOf lists the policies of a model with the stored policy type.
func policiesOf(m model.Model) []Policy {
	rows := m["p"]["p"].Policy
	ps := make([]Policy, 0, len(rows))
	for _, r := range rows {
		ps = append(ps, policyFromRule(r))
	}
	return ps
}

// setPolicies replaces the policy list and its indexes. Call with mu held.
func (a *Authorizer) setPolicies(ps []Policy) {
	sortPolicies(ps)
	countPolicies(a.projects, a.policies, -1)
	countPolicies(a.projects, ps, +1)
	a.policies = ps
	a.grants = indexGrants(ps)
}

// SyncUser replaces s's grouping rules with those its record implies now:
// call it after any change of role, memberships or status. A subject that
// is not active keeps no rules, so every later decision about it is a
// denial. The change is effective for every decision that starts after
// SyncUser returns.
//
// Errors: Invalid when s is nil or has no id.
func (a *Authorizer) SyncUser(s *Subject) error {
	if s == nil || s.ID == "" {
		return errorf(Invalid, "A user to synchronise needs an id.")
	}
	rules, skipped := groupingRules(s)
	if len(skipped) > 0 {
		a.log.Warn("user has unrecognised roles; they grant nothing", "user", s.ID, "ignored", skipped)
	}

	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	changed, err := a.syncRules(s.ID, rules)
	if changed {
		a.warmMatchers()
	}
	return err
}

// syncRules replaces a user's grouping rules and reports whether any
// changed.
func (a *Authorizer) syncRules(id string, rules [][]string) (changed bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	old := a.userRules[id]
	remove, add := without(old, rules), without(rules, old)
	if len(remove) == 0 && len(add) == 0 {
		return false, nil
	}
	// Whatever happens next, cached decisions may be stale.
	defer a.cache.clear()
	for _, r := range remove {
		if _, err := a.enf.RemoveGroupingPolicy(r); err != nil {
			return true, a.fault("remove grouping rule", err)
		}
	}
	countProjects(a.projects, remove, -1)
	if len(add) > 0 {
		if _, err := a.enf.AddGroupingPoliciesEx(add); err != nil {
			return true, a.fault("add grouping rules", err)
		}
		countProjects(a.projects, add, +1)
	}
	if len(rules) == 0 {
		delete(a.userRules, id)
	} else {
		a.userRules[id] = rules
	}
	return true, nil
}

// warmMatchers has Casbin parse every bucket's matcher again. Casbin drops
// its parsed matchers on any change of grouping rules and parses one again
// on the next decision that needs it, which takes tens of microseconds;
// doing it here puts that cost on the change rather than on decisions.
// The probe matches no policy, so it consults no role.
func (a *Authorizer) warmMatchers() {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, ec := range bucketContexts {
		if _, err := a.enf.Enforce(ec, "", GlobalDomain, "", ""); err != nil {
			a.log.Error("authorization fault", "op", "parse matcher", "err", err)
			return
		}
	}
}

// without returns the rules of a that are not in b.
func without(a, b [][]string) [][]string {
	var out [][]string
	for _, r := range a {
		if !slices.ContainsFunc(b, func(q []string) bool { return slices.Equal(r, q) }) {
			out = append(out, r)
		}
	}
	return out
}

// fault logs an unexpected enforcer error and returns it uncoded, which
// callers report as internal.
func (a *Authorizer) fault(what string, err error) error {
	a.log.Error("authorization fault", "op", what, "err", err)
	return fmt.Errorf("%s: %w", what, err)
}

// Policies returns every policy, ordered by object, action, domain and
// role.
func (a *Authorizer) Policies() []Policy {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return append([]Policy(nil), a.policies...)
}

// AddPolicy grants p, storing it first. The grant is effective for every
// decision that starts after AddPolicy returns.
//
// Errors: Invalid with a sentence when p is incomplete or names an unknown
// role or a malformed domain, object or action; Conflict when p exists
// already (nothing changes, so a caller that must undo its change on a
// later fault never removes a grant it did not make); the store's errors
// when it cannot store p (nothing changes then).
func (a *Authorizer) AddPolicy(ctx context.Context, p Policy) error {
	if err := p.validate(); err != nil {
		return err
	}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	a.mu.RLock()
	exists := slices.Contains(a.policies, p)
	a.mu.RUnlock()
	if exists {
		return errorf(Conflict, "The policy %q exists already.", p.String())
	}
	if a.store != nil {
		if err := a.store.AddPolicyCtx(ctx, "p", "p", p.rule()); err != nil {
			return err
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	added, err := a.enf.AddNamedPolicy(p.ptype(), p.rule())
	if err != nil {
		return a.fault("add policy", err)
	}
	if added {
		a.setPolicies(append(a.policies, p))
		a.cache.clear()
	}
	return nil
}

// RemovePolicy withdraws p, deleting it from storage first. The withdrawal
// is effective for every decision that starts after RemovePolicy returns.
//
// Errors: Invalid when p is malformed as for AddPolicy; NotFound when no
// such policy exists; Conflict when removing it would leave no global role
// holding Config.Governing (nobody could undo the mistake); the store's
// errors when it cannot delete p (nothing changes then).
func (a *Authorizer) RemovePolicy(ctx context.Context, p Policy) error {
	if err := p.validate(); err != nil {
		return err
	}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()

	a.mu.RLock()
	found, others := false, 0
	for _, q := range a.policies {
		switch {
		case q == p:
			found = true
		case a.governs(q):
			others++
		}
	}
	a.mu.RUnlock()
	if !found {
		return errorf(NotFound, "No policy %q exists.", p.String())
	}
	if a.governs(p) && others == 0 {
		return errorf(Conflict,
			"Removing %q would leave no role able to change policies.", p.String())
	}

	if a.store != nil {
		if err := a.store.RemovePolicyCtx(ctx, "p", "p", p.rule()); err != nil {
			return err
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	removed, err := a.enf.RemoveNamedPolicy(p.ptype(), p.rule())
	if err != nil {
		return a.fault("remove policy", err)
	}
	if removed {
		rest := make([]Policy, 0, len(a.policies))
		for _, q := range a.policies {
			if q != p {
				rest = append(rest, q)
			}
		}
		a.setPolicies(rest)
		a.cache.clear()
	}
	return nil
}

// Check decides whether subject may do action on object within project, a
// project id, or "" for something global (then project roles do not
// count). The subject is whoever's permissions apply: the effective
// identity, which under impersonation is the impersonated user alone.
//
// Only the subject's ID and Status count here: its roles and memberships
// are those the Directory and SyncUser gave last, so Check needs neither.
// A nil subject, or one that is not active, is denied everything. An
// internal fault denies too, and is logged: Check fails closed.
func (a *Authorizer) Check(ctx context.Context, subject *Subject, action, object, project string) Decision {
	switch {
	case subject == nil:
		return Decision{Reason: "no one is signed in"}
	case subject.Status == Suspended:
		return Decision{Reason: "the account is suspended"}
	case subject.Status != Active:
		return Decision{Reason: "the account is not active"}
	}
	dom := project
	if dom == "" {
		dom = GlobalDomain
	}
	key := decisionKey{user: subject.ID, dom: dom, obj: object, act: action}

	a.mu.RLock()
	defer a.mu.RUnlock()
	if d, ok := a.cache.get(key); ok {
		return d
	}
	d, ok := a.decide(ctx, key)
	if ok {
		a.cache.put(key, d)
	}
	return d
}

// decide evaluates a request with the enforcer; cacheable is false for a
// fault, so it is retried. Call with mu held.
func (a *Authorizer) decide(ctx context.Context, k decisionKey) (d Decision, cacheable bool) {
	dom := k.dom
	if dom != GlobalDomain && a.projects[dom] == 0 {
		// No rule names this project, so only global grouping rules and
		// policies can apply in it: exactly what applies in the global
		// domain, where Casbin finds them directly. In a domain it has
		// never seen, Casbin's role manager would copy every global
		// grouping rule for each lookup (milliseconds with a thousand
		// users).
		dom = GlobalDomain
	}
	ok, row, err := a.enf.EnforceEx(bucketContexts[bucket(k.obj, k.act)], userSubject(k.user), dom, k.obj, k.act)
	if err != nil {
		a.log.ErrorContext(ctx, "authorization fault", "op", "enforce", "err", err,
			"user", k.user, "project", k.dom, "object", k.obj, "action", k.act)
		return Decision{Reason: "the decision could not be made"}, false
	}
	if ok {
		return Decision{Allowed: true, Reason: allowReason(row)}, true
	}
	return Decision{Reason: denyReason(a.grants[grantKey{k.obj, k.act}], k.dom, k.obj, k.act)}, true
}

// governs reports whether p grants the permission to change policies to a
// global role.
func (a *Authorizer) governs(p Policy) bool {
	return a.governing != (Permission{}) && p.grants(a.governing)
}
