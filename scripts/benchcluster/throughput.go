package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/scripts/internal/hostload"
)

// pairs are who impersonates whom in the throughput scenario, one pair
// per node: a person impersonates one user at a time, and a user is
// impersonated by one person at a time.
var pairs = []struct{ actor, subject string }{
	{"admin@example.org", "ben@example.org"},
	{"owner@example.org", "ada@example.org"},
	{"support@example.org", "cleo@example.org"},
}

// loadSessions signs a person in on each node, impersonating a user, as
// pairs says, taking action. Beyond len(pairs) nodes, a node's clients share the
// session of an earlier node, on their own node.
func loadSessions(cl *cluster, action string) ([]*client, error) {
	out := make([]*client, len(cl.nodes))
	for i, p := range cl.nodes {
		if i >= len(pairs) {
			c := *out[i%len(pairs)]
			session := *c.Client // the same session (cookies, token), another node
			session.Base = p.URL
			c.Client = &session
			out[i] = &c
			continue
		}
		c, err := signIn(p.URL, pairs[i].actor)
		if err != nil {
			return nil, err
		}
		if err := c.impersonate(pairs[i].subject); err != nil {
			return nil, err
		}
		c.action = action
		out[i] = c
	}
	return out, nil
}

// tally is what one node's clients did in a closed loop.
type tally struct {
	ok, failed, unanswered int // 2xx–3xx, 5xx, no answer
	other                  int // 4xx
	took                   []time.Duration
}

// closedLoop has perNode clients on each node's session take one action
// after another for d, and returns each node's tally.
func closedLoop(ctx context.Context, sessions []*client, perNode int, d time.Duration) []tally {
	out := make([]tally, len(sessions))
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i, c := range sessions {
		for range perNode {
			wg.Go(func() {
				var t tally
				for time.Now().Before(end) && ctx.Err() == nil {
					t0 := time.Now()
					status, err := c.act(tags.Add(1))
					switch {
					case err != nil:
						t.unanswered++
					case status >= 500:
						t.failed++
					case status >= 400:
						t.other++
					default:
						t.ok++
						t.took = append(t.took, time.Since(t0))
					}
				}
				mu.Lock()
				defer mu.Unlock()
				o := &out[i]
				o.ok, o.failed, o.unanswered, o.other = o.ok+t.ok, o.failed+t.failed, o.unanswered+t.unanswered, o.other+t.other
				o.took = append(o.took, t.took...)
			})
		}
	}
	wg.Wait()
	return out
}

// saturate runs the closed loop on a ready cluster: warm-up, then d
// measured, with the CPU of every process and the database's commands.
func saturate(ctx context.Context, cfg config, cl *cluster, db *mongo.Client, sessions []*client) (sample, error) {
	// The log's head is read by an admin acting as themselves.
	observer, err := signIn(cl.nodes[0].URL, "admin@example.org")
	if err != nil {
		return nil, err
	}
	closedLoop(ctx, sessions, cfg.clients, cfg.warmup)
	head0, err := observer.Head()
	if err != nil {
		return nil, err
	}
	pids := cl.pids()
	u0, err := snapshot(ctx, pids, db)
	if err != nil {
		return nil, err
	}
	var tallies []tally
	others, err := hostload.OthersCPU(func() error {
		tallies = closedLoop(ctx, sessions, cfg.clients, cfg.throughputDuration)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	u1, err := snapshot(ctx, pids, db)
	if err != nil {
		return nil, err
	}
	head1, err := observer.Head()
	if err != nil {
		return nil, err
	}
	s := throughputSample(tallies, u0.cores(u1), u1.at.Sub(u0.at))
	s["bench_cores"] = u0.selfCores(u1)
	s["iowait_cores"] = u0.iowaitCores(u1)
	s["others_cores"] = max(0, others-s["nodes_cores"]-s["db_cores"])
	s["busy_cores"] = s["nodes_cores"] + s["db_cores"] + s["bench_cores"] + s["others_cores"]
	s["write_cmds_per_s"] = u0.commandsPerS(u1, writeCommands)
	s["commands_per_s"] = u0.commandsPerS(u1, nil)
	s["write_cmds_per_action"] = s["write_cmds_per_s"] / s["actions_per_s"]
	s["logged"] = float64(head1 - head0)
	return s, nil
}

// throughputSample is the sample of tallies over elapsed, with the
// processes' cores (the nodes, then the database).
func throughputSample(tallies []tally, cores []float64, elapsed time.Duration) sample {
	s := sample{}
	var ok, failed, other int
	var took []time.Duration
	for _, t := range tallies {
		ok, failed, other = ok+t.ok, failed+t.failed+t.unanswered, other+t.other
		took = append(took, t.took...)
	}
	secs := elapsed.Seconds()
	for i, t := range tallies {
		n := "node" + strconv.Itoa(i+1)
		s[n+"_actions_per_s"] = float64(t.ok) / secs
		s[n+"_share_pct"] = 100 * float64(t.ok) / float64(max(ok, 1))
		s[n+"_cores"] = cores[i]
	}
	s["actions"], s["actions_per_s"] = float64(ok), float64(ok)/secs
	s["errors"], s["refused"] = float64(failed), float64(other)
	s["nodes_cores"], s["node_max_cores"] = sum(cores[:len(tallies)]), slices.Max(cores[:len(tallies)])
	s["db_cores"] = cores[len(tallies)]
	quantiles(s, "http_", took)
	return s
}

// limit says what limited a throughput sample on cpus cores: the machine's CPU when it
// was nearly all busy, naming who took most; otherwise the database when
// its process took most of a core (its writes commit one transaction at
// a time); otherwise neither.
func limit(s sample, cpus float64) string {
	busy := fmt.Sprintf("%.2f of %.0f cores busy: database %.2f, nodes %.2f (busiest %.2f), clients %.2f, other processes %.2f; iowait %.2f",
		s["busy_cores"], cpus, s["db_cores"], s["nodes_cores"], s["node_max_cores"], s["bench_cores"], s["others_cores"], s["iowait_cores"])
	switch {
	case s["busy_cores"] >= 0.9*cpus:
		most := "the nodes together"
		if s["db_cores"] >= s["nodes_cores"] {
			most = "the database"
		}
		return "the machine's CPU, most of it to " + most + " (" + busy + ")"
	case s["db_cores"] >= 0.85:
		return "the database process, near one core (" + busy + ")"
	default:
		return "not CPU (" + busy + ")"
	}
}
