package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
)

// PolicyStore keeps policy rules for an Adapter. A rule is its policy type
// followed by its fields, like a line of Casbin's CSV policy format:
// {"p", "role:user", "*", "profile", "read"}. The store keeps each rule at
// most once and judges none: the Adapter checks rules as it loads them.
//
// Its errors reach the Authorizer's callers wrapped but otherwise as the
// store made them, so a store reports an unreachable database in its
// caller's own terms.
type PolicyStore interface {
	// PolicyRules returns every stored rule, in any order.
	PolicyRules(ctx context.Context) ([][]string, error)
	// AddPolicyRules stores rules. A rule stored already stays stored
	// once, and two callers storing one rule together both succeed.
	AddPolicyRules(ctx context.Context, rules [][]string) error
	// RemovePolicyRules deletes rules. Deleting a rule that is not stored
	// is not an error.
	RemovePolicyRules(ctx context.Context, rules [][]string) error
	// DefaultPoliciesSeeded reports whether MarkDefaultPoliciesSeeded was
	// called before, by any process.
	DefaultPoliciesSeeded(ctx context.Context) (bool, error)
	// MarkDefaultPoliciesSeeded records that the default policies were
	// written. Marking twice is not an error.
	MarkDefaultPoliciesSeeded(ctx context.Context) error
	// PolicySetSeeded and MarkPolicySetSeeded do the same for each named
	// set of defaults added later (Config.Additions).
	PolicySetSeeded(ctx context.Context, name string) (bool, error)
	MarkPolicySetSeeded(ctx context.Context, name string) error
	// Claim takes the step named key for its caller by inserting key
	// once: of any number of callers, in any number of processes,
	// exactly one gets true, ever. at is when the caller claimed it.
	Claim(ctx context.Context, key string, at time.Time) (bool, error)
}

// defaultAdapterTimeout bounds each storage call made through the
// context-free persist.Adapter methods.
const defaultAdapterTimeout = 10 * time.Second

// Adapter keeps Casbin policy rules (the p section) in a PolicyStore. It
// implements persist.Adapter, persist.ContextAdapter and
// persist.BatchAdapter, so a plain Casbin enforcer can use it too.
//
// Grouping rules (the g section) are never stored: they are derived from
// the users, which are their single source of truth, so the adapter
// ignores them on every write.
//
// Errors: Invalid for a stored rule Casbin's model cannot hold; the store's
// own errors, wrapped, for anything else.
type Adapter struct {
	store   PolicyStore
	timeout time.Duration
}

var (
	_ persist.Adapter        = (*Adapter)(nil)
	_ persist.ContextAdapter = (*Adapter)(nil)
	_ persist.BatchAdapter   = (*Adapter)(nil)
)

// NewAdapter returns an adapter over store.
func NewAdapter(store PolicyStore) *Adapter {
	return &Adapter{store: store, timeout: defaultAdapterTimeout}
}

// stored reports whether rules of sec are kept by the adapter.
func stored(sec string) bool { return sec == "p" }

// withType returns rules with ptype put before each, as the store holds
// them.
func withType(ptype string, rules [][]string) [][]string {
	out := make([][]string, 0, len(rules))
	for _, r := range rules {
		out = append(out, append([]string{ptype}, r...))
	}
	return out
}

// LoadPolicyCtx loads every stored rule into m. A rule whose type m does
// not define, or whose length does not fit it, is an Invalid error: an
// enforcer holding it would fail on every decision.
func (a *Adapter) LoadPolicyCtx(ctx context.Context, m model.Model) error {
	rows, err := a.store.PolicyRules(ctx)
	if err != nil {
		return fmt.Errorf("load policies: %w", err)
	}
	for _, row := range rows {
		if len(row) == 0 || row[0] == "" {
			return errorf(Invalid, "The stored policy %q has no type.", strings.Join(row, ", "))
		}
		ptype := row[0]
		sec := ptype[:1]
		if !stored(sec) {
			continue
		}
		ast, ok := m[sec][ptype]
		if !ok {
			return errorf(Invalid, "The stored policy %q has type %q, which the model does not define.", strings.Join(row, ", "), ptype)
		}
		if len(row)-1 != len(ast.Tokens) {
			return errorf(Invalid, "The stored policy %q has %d fields; its type has %d.", strings.Join(row, ", "), len(row)-1, len(ast.Tokens))
		}
		if err := persist.LoadPolicyArray(row, m); err != nil {
			return fmt.Errorf("load policy %q: %w", strings.Join(row, ", "), err)
		}
	}
	return nil
}

// SavePolicyCtx replaces the stored rules with those of m. It first stores
// every rule of m, then deletes the stored rules m does not hold, so a
// failure half-way leaves the old and new rules together, never none.
func (a *Adapter) SavePolicyCtx(ctx context.Context, m model.Model) error {
	var rows [][]string
	for ptype, ast := range m["p"] {
		rows = append(rows, withType(ptype, ast.Policy)...)
	}
	if len(rows) > 0 {
		if err := a.store.AddPolicyRules(ctx, rows); err != nil {
			return fmt.Errorf("store policies: %w", err)
		}
	}
	old, err := a.store.PolicyRules(ctx)
	if err != nil {
		return fmt.Errorf("find replaced policies: %w", err)
	}
	var gone [][]string
	for _, r := range old {
		if !slices.ContainsFunc(rows, func(q []string) bool { return slices.Equal(r, q) }) {
			gone = append(gone, r)
		}
	}
	return a.remove(ctx, gone)
}

// AddPolicyCtx stores one rule. Storing a rule already there is not an
// error.
func (a *Adapter) AddPolicyCtx(ctx context.Context, sec, ptype string, rule []string) error {
	return a.AddPoliciesCtx(ctx, sec, ptype, [][]string{rule})
}

// AddPoliciesCtx stores rules. Storing rules already there is not an error.
func (a *Adapter) AddPoliciesCtx(ctx context.Context, sec, ptype string, rules [][]string) error {
	if !stored(sec) || len(rules) == 0 {
		return nil
	}
	if err := a.store.AddPolicyRules(ctx, withType(ptype, rules)); err != nil {
		return fmt.Errorf("store policies: %w", err)
	}
	return nil
}

// RemovePolicyCtx deletes one rule. Deleting a rule that is not stored is
// not an error.
func (a *Adapter) RemovePolicyCtx(ctx context.Context, sec, ptype string, rule []string) error {
	return a.RemovePoliciesCtx(ctx, sec, ptype, [][]string{rule})
}

// RemovePoliciesCtx deletes rules.
func (a *Adapter) RemovePoliciesCtx(ctx context.Context, sec, ptype string, rules [][]string) error {
	if !stored(sec) {
		return nil
	}
	return a.remove(ctx, withType(ptype, rules))
}

// remove deletes rows, given with their types.
func (a *Adapter) remove(ctx context.Context, rows [][]string) error {
	if len(rows) == 0 {
		return nil
	}
	if err := a.store.RemovePolicyRules(ctx, rows); err != nil {
		return fmt.Errorf("delete policies: %w", err)
	}
	return nil
}

// RemoveFilteredPolicyCtx deletes the rules of ptype whose fields, from
// fieldIndex on, equal fieldValues; an empty value matches anything, as in
// Casbin.
func (a *Adapter) RemoveFilteredPolicyCtx(ctx context.Context, sec, ptype string, fieldIndex int, fieldValues ...string) error {
	if !stored(sec) {
		return nil
	}
	// The rules are few; matching in Go asks nothing of the store but
	// the whole list.
	rows, err := a.store.PolicyRules(ctx)
	if err != nil {
		return fmt.Errorf("find policies to delete: %w", err)
	}
	var gone [][]string
	for _, r := range rows {
		if len(r) > 0 && r[0] == ptype && matchesFilter(r[1:], fieldIndex, fieldValues) {
			gone = append(gone, r)
		}
	}
	return a.remove(ctx, gone)
}

func matchesFilter(rule []string, fieldIndex int, values []string) bool {
	if fieldIndex < 0 {
		return false
	}
	for i, v := range values {
		if v == "" {
			continue
		}
		j := fieldIndex + i
		if j >= len(rule) || rule[j] != v {
			return false
		}
	}
	return true
}

// LoadPolicy is LoadPolicyCtx bounded by the adapter's timeout.
func (a *Adapter) LoadPolicy(m model.Model) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.LoadPolicyCtx(ctx, m)
}

// SavePolicy is SavePolicyCtx bounded by the adapter's timeout.
func (a *Adapter) SavePolicy(m model.Model) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.SavePolicyCtx(ctx, m)
}

// AddPolicy is AddPolicyCtx bounded by the adapter's timeout.
func (a *Adapter) AddPolicy(sec, ptype string, rule []string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.AddPolicyCtx(ctx, sec, ptype, rule)
}

// AddPolicies is AddPoliciesCtx bounded by the adapter's timeout.
func (a *Adapter) AddPolicies(sec, ptype string, rules [][]string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.AddPoliciesCtx(ctx, sec, ptype, rules)
}

// RemovePolicy is RemovePolicyCtx bounded by the adapter's timeout.
func (a *Adapter) RemovePolicy(sec, ptype string, rule []string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.RemovePolicyCtx(ctx, sec, ptype, rule)
}

// RemovePolicies is RemovePoliciesCtx bounded by the adapter's timeout.
func (a *Adapter) RemovePolicies(sec, ptype string, rules [][]string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.RemovePoliciesCtx(ctx, sec, ptype, rules)
}

// RemoveFilteredPolicy is RemoveFilteredPolicyCtx bounded by the adapter's
// timeout.
func (a *Adapter) RemoveFilteredPolicy(sec, ptype string, fieldIndex int, fieldValues ...string) error {
	ctx, cancel := a.context()
	defer cancel()
	return a.RemoveFilteredPolicyCtx(ctx, sec, ptype, fieldIndex, fieldValues...)
}

func (a *Adapter) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.timeout)
}
