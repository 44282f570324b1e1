package authz

import (
	"context"
	"fmt"
	"time"
)

// DefaultSeedWait is the default of Config.SeedWait. Writing a seeding
// step's policies takes one round trip and recording it another, so a
// start that has not finished in this time has stopped.
const DefaultSeedWait = 30 * time.Second

// seedStep is a write of default policies that must happen once across
// every process sharing the store: the defaults of a new store, or a set
// of Additions.
type seedStep struct {
	// key names the step in its claims: "policy-seed:<key>:<round>".
	key string
	// done reports whether the step's completion is recorded.
	done func(ctx context.Context) (bool, error)
	// write writes the policies, then records the completion.
	write func(ctx context.Context) error
}

// seed writes the default policies into a store that never held any, and
// each set of additions into a store seeded before the set existed.
//
// Each of these steps is taken by the one start that claims it, by a
// unique insert: the store cannot read, decide and write atomically, so a
// start that merely saw the step undone and wrote would race another
// doing the same, and put back a policy an administrator removed in
// between. A marker records the step's completion, and once it is there
// the step's policies are never written again.
//
// A start that finds the step claimed but not complete waits for the
// marker (the claimant is writing). When none comes within SeedWait, it
// presumes the claimant stopped between its claim and the marker, and
// claims the step's next round to finish it: writing a policy twice is
// harmless, and the marker was not there, so no removal made after the
// step completed is undone. For the takeover never to overlap a slow
// claimant, a claimant writes only within half of SeedWait from its
// claim; its database calls carry that deadline.
func (a *Authorizer) seed(ctx context.Context, defaults []Policy, additions []PolicySet) error {
	store := a.store.store
	err := a.seedOnce(ctx, seedStep{
		key:  "defaults",
		done: store.DefaultPoliciesSeeded,
		write: func(ctx context.Context) error {
			rows, err := store.PolicyRules(ctx)
			if err != nil {
				return fmt.Errorf("count policies: %w", err)
			}
			// Rules stored without the marker are the installation's own
			// choice, kept as they are; the additions are then added below.
			if len(rows) == 0 {
				if err := a.store.AddPoliciesCtx(ctx, "p", "p", rulesOf(defaults)); err != nil {
					return err
				}
				// The defaults include every set known to this start.
				for _, set := range additions {
					if err := store.MarkPolicySetSeeded(ctx, set.Name); err != nil {
						return fmt.Errorf("record the seed marker of %s: %w", set.Name, err)
					}
				}
				a.log.InfoContext(ctx, "seeded default authorization policies", "count", len(defaults))
			}
			if err := store.MarkDefaultPoliciesSeeded(ctx); err != nil {
				return fmt.Errorf("record the seed marker: %w", err)
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	for _, set := range additions {
		err := a.seedOnce(ctx, seedStep{
			key: "set:" + set.Name,
			done: func(ctx context.Context) (bool, error) {
				return store.PolicySetSeeded(ctx, set.Name)
			},
			write: func(ctx context.Context) error {
				if err := a.store.AddPoliciesCtx(ctx, "p", "p", rulesOf(set.Policies)); err != nil {
					return err
				}
				if err := store.MarkPolicySetSeeded(ctx, set.Name); err != nil {
					return fmt.Errorf("record the seed marker of %s: %w", set.Name, err)
				}
				a.log.InfoContext(ctx, "added default authorization policies", "set", set.Name, "count", len(set.Policies))
				return nil
			},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// seedOnce takes step unless its completion is recorded, as seed
// describes, and returns once it is recorded.
func (a *Authorizer) seedOnce(ctx context.Context, step seedStep) error {
	for round := 1; ; round++ {
		done, err := step.done(ctx)
		if err != nil {
			return fmt.Errorf("look for the seed marker of %s: %w", step.key, err)
		}
		if done {
			return nil
		}
		at := time.Now()
		won, err := a.store.store.Claim(ctx, fmt.Sprintf("policy-seed:%s:%d", step.key, round), at)
		if err != nil {
			return fmt.Errorf("claim seeding %s: %w", step.key, err)
		}
		if won {
			wctx, cancel := context.WithDeadline(ctx, at.Add(a.seedWait/2))
			err := step.write(wctx)
			cancel()
			return err
		}
		if done, err := a.awaitSeed(ctx, step); err != nil || done {
			return err
		}
		a.log.WarnContext(ctx, "a start that claimed seeding default policies did not finish; finishing it here",
			"step", step.key, "round", round)
	}
}

// awaitSeed waits up to SeedWait for step's completion to be recorded,
// and reports whether it was.
func (a *Authorizer) awaitSeed(ctx context.Context, step seedStep) (bool, error) {
	tick := time.NewTicker(min(a.seedWait/10, 100*time.Millisecond))
	defer tick.Stop()
	deadline := time.Now().Add(a.seedWait)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
		done, err := step.done(ctx)
		if err != nil {
			return false, fmt.Errorf("look for the seed marker of %s: %w", step.key, err)
		}
		if done {
			return true, nil
		}
	}
	return false, nil
}
