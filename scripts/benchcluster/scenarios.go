package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/hostload"
)

// idleAndPaced runs the idle scenario, then the latency scenario at each
// rate, on cl, as cfg.scenarios asks.
func idleAndPaced(ctx context.Context, cfg config, cl *cluster) ([]result, error) {
	db, err := connectDB(cl.dbURI)
	if err != nil {
		return nil, err
	}
	defer db.Disconnect(context.Background())
	var out []result
	if slices.Contains(cfg.scenarios, "idle") {
		r, err := idle(ctx, cfg, cl, db)
		if err != nil {
			return nil, fmt.Errorf("idle: %w", err)
		}
		out = append(out, r)
	}
	if !slices.Contains(cfg.scenarios, "latency") {
		return out, nil
	}
	sys, err := newPaceSystem(cl, db, cfg.action)
	if err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	// A few actions first, so that no measured one pays for a cold path.
	if _, err := paced(ctx, sys, 10, time.Second); err != nil {
		return nil, fmt.Errorf("latency, warming up: %w", err)
	}
	for _, rate := range cfg.rates {
		r := newResult("latency", map[string]int{"nodes": len(cl.nodes), "rate": rate},
			fmt.Sprintf("%d nodes; %d actions/s (GET %s) on node A for %v, each sent at its time; admins watching activity on A and on B", len(cl.nodes), rate, cfg.action, cfg.latencyDuration))
		for range cfg.runs {
			if err := measure(cfg, &r, func() (sample, error) { return paced(ctx, sys, rate, cfg.latencyDuration) }); err != nil {
				return nil, err
			}
		}
		s := medianSample(r.Runs[system])
		r.Target = &latencyTarget{RemoteP99MS: s["remote_after_commit_p99_ms"], LocalP99MS: s["local_after_commit_p99_ms"], LimitMS: latencyLimit,
			Pass: s["remote_after_commit_p99_ms"] <= latencyLimit && s["local_after_commit_p99_ms"] <= latencyLimit}
		out = append(out, r)
	}
	return out, nil
}

// idle measures cl with no traffic, cfg.runs times for cfg.idle, after
// cfg.settle.
func idle(ctx context.Context, cfg config, cl *cluster, db *mongo.Client) (result, error) {
	r := newResult("idle", map[string]int{"nodes": len(cl.nodes), "seconds": int(cfg.idle.Seconds())},
		fmt.Sprintf("%d nodes and the database, no traffic, for %v", len(cl.nodes), cfg.idle))
	if err := sleep(ctx, cfg.settle); err != nil {
		return r, err
	}
	for range cfg.runs {
		if err := measure(cfg, &r, func() (sample, error) { return idleRun(ctx, cfg, cl, db) }); err != nil {
			return r, err
		}
	}
	return r, nil
}

// idleRun measures cl with no traffic for cfg.idle.
func idleRun(ctx context.Context, cfg config, cl *cluster, db *mongo.Client) (sample, error) {
	pids := cl.pids()
	u0, err := snapshot(ctx, pids, db)
	if err != nil {
		return nil, err
	}
	others, err := hostload.OthersCPU(func() error { return sleep(ctx, cfg.idle) })
	if err != nil {
		return nil, err
	}
	u1, err := snapshot(ctx, pids, db)
	if err != nil {
		return nil, err
	}
	cores := u0.cores(u1)
	nodes := cores[:len(cores)-1]
	s := sample{"db_pct": 100 * cores[len(cores)-1], "nodes_pct": 100 * sum(nodes), "node_max_pct": 100 * slices.Max(nodes),
		"commands_per_s": u0.commandsPerS(u1, nil), "write_cmds_per_s": u0.commandsPerS(u1, writeCommands),
		"others_cores": max(0, others-sum(cores))}
	for i, c := range nodes {
		s["node"+strconv.Itoa(i+1)+"_pct"] = 100 * c
	}
	return s, nil
}

// throughput runs one run of the throughput scenario on cl and appends
// it to r.
func throughput(ctx context.Context, cfg config, cl *cluster, r *result) error {
	db, err := connectDB(cl.dbURI)
	if err != nil {
		return err
	}
	defer db.Disconnect(context.Background())
	sessions, err := loadSessions(cl, cfg.action)
	if err != nil {
		return fmt.Errorf("throughput, %d nodes: %w", len(cl.nodes), err)
	}
	return measure(cfg, r, func() (sample, error) { return saturate(ctx, cfg, cl, db, sessions) })
}

// medianSample is, for each key, the median of runs.
func medianSample(runs []sample) sample {
	out := sample{}
	for _, s := range runs {
		for k := range s {
			if _, done := out[k]; !done {
				out[k] = benchresult.Median(benchresult.Values(runs, k))
			}
		}
	}
	return out
}

// newResult is a result about to run, with the load average now.
func newResult(scenario string, params map[string]int, description string) result {
	return result{Scenario: scenario, Params: params, Description: description,
		LoadBefore: hostload.Loadavg(), Runs: map[string][]sample{}}
}

// measure runs one run of r, logs it and appends it to r.
func measure(cfg config, r *result, fn func() (sample, error)) error {
	start := time.Now()
	s, err := fn()
	if err != nil {
		return fmt.Errorf("%s %v: %w", r.Scenario, r.Params, err)
	}
	r.Runs[system] = append(r.Runs[system], s)
	r.LoadAfter = hostload.Loadavg()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(s)) {
		fmt.Fprintf(&b, " %s=%.4g", k, s[k])
	}
	cfg.logf("%s %v %.1fs%s", r.Scenario, r.Params, time.Since(start).Seconds(), b.String())
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
