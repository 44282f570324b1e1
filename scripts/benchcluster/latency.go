package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"standin/scripts/internal/hostload"
)

// latencyLimit is the target for the event's p99 from its commit to a
// watcher, on another node than the writer's and on the writer's.
const latencyLimit = 150.0 // ms

// latencyTarget is the latency scenario's check.
type latencyTarget struct {
	RemoteP99MS float64 `json:"remote_p99_ms"`
	LocalP99MS  float64 `json:"local_p99_ms"`
	LimitMS     float64 `json:"limit_ms"`
	Pass        bool    `json:"pass"`
}

// tags numbers the benchmark's actions, across the whole run.
var tags atomic.Int64

// paceSystem is the latency scenario's people: a writer on node A (the
// first), acting as an admin impersonating Ben, and two admins watching
// the activity feed, one on A and one on B (the second node).
type paceSystem struct {
	cl                *cluster
	db                *mongo.Client
	writer            *client
	onWriter, onOther *client
}

// newPaceSystem signs the writer and the watchers in on their nodes.
func newPaceSystem(cl *cluster, db *mongo.Client, action string) (*paceSystem, error) {
	a, b := cl.nodes[0].URL, cl.nodes[1].URL
	sys := &paceSystem{cl: cl, db: db}
	var err error
	if sys.writer, err = signIn(a, "admin@example.org"); err != nil {
		return nil, err
	}
	if err := sys.writer.impersonate("ben@example.org"); err != nil {
		return nil, err
	}
	sys.writer.action = action
	if sys.onWriter, err = signIn(a, "admin@example.org"); err != nil {
		return nil, err
	}
	if sys.onOther, err = signIn(b, "admin@example.org"); err != nil {
		return nil, err
	}
	return sys, nil
}

// sent is one paced action: its tag, when it was sent and answered, and
// its status (0 when no answer came).
type sent struct {
	tag          int64
	at, answered time.Time
	status       int
	err          error
}

// paced takes rate actions a second for d on node A, each sent at its
// time whether or not the ones before were answered, with both watchers
// open from the head of the log. It measures, for each action answered
// with success, the time from sending it to its answer and to its event
// at each watcher.
func paced(ctx context.Context, sys *paceSystem, rate int, d time.Duration) (sample, error) {
	head, err := sys.onWriter.Head()
	if err != nil {
		return nil, err
	}
	local, err := watch(sys.onWriter, head)
	if err != nil {
		return nil, err
	}
	defer local.close()
	remote, err := watch(sys.onOther, head)
	if err != nil {
		return nil, err
	}
	defer remote.close()

	pids := sys.cl.pids()
	u0, err := snapshot(ctx, pids, sys.db)
	if err != nil {
		return nil, err
	}
	var actions []sent
	others, err := hostload.OthersCPU(func() error {
		actions = send(ctx, sys.writer, rate, d)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	u1, err := snapshot(ctx, pids, sys.db)
	if err != nil {
		return nil, err
	}
	s, err := deliveries(actions, local, remote)
	if err != nil {
		return nil, err
	}
	s["cluster_cores"] = sum(u0.cores(u1))
	s["others_cores"] = max(0, others-s["cluster_cores"])
	return s, nil
}

// send takes rate actions a second for d as c, each on its own
// goroutine at its time, and returns them once all are answered.
func send(ctx context.Context, c *client, rate int, d time.Duration) []sent {
	n := int(float64(rate) * d.Seconds())
	actions := make([]sent, n)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range actions {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		if ctx.Err() != nil {
			actions = actions[:i]
			break
		}
		a := &actions[i]
		a.tag = tags.Add(1)
		wg.Go(func() {
			a.at = time.Now()
			a.status, a.err = c.act(a.tag)
			a.answered = time.Now()
		})
	}
	wg.Wait()
	return actions
}

// deliveries waits until the event of every action answered with success
// reached both watchers, and measures.
func deliveries(actions []sent, local, remote *watcher) (sample, error) {
	var ok []int64
	kinds := map[string]float64{"errors": 0, "errors_5xx": 0, "errors_4xx": 0, "unanswered": 0}
	var firstErr error
	for _, a := range actions {
		if a.err == nil && a.status < 300 {
			ok = append(ok, a.tag)
			continue
		}
		kinds["errors"]++
		switch {
		case a.err != nil:
			kinds["unanswered"]++
		case a.status >= 500:
			kinds["errors_5xx"]++
		default:
			kinds["errors_4xx"]++
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("action %d: status %d, %v", a.tag, a.status, a.err)
		}
	}
	if len(ok) == 0 {
		return nil, fmt.Errorf("no action succeeded: %w", firstErr)
	}
	for _, w := range []*watcher{local, remote} {
		if err := w.waitFor(ok, time.Minute); err != nil {
			return nil, err
		}
	}
	var answer, atLocal, atRemote, remoteAfter, localCommit, remoteCommit []time.Duration
	for _, a := range actions {
		if a.err != nil || a.status >= 300 {
			continue
		}
		l, _ := local.at(a.tag)
		r, _ := remote.at(a.tag)
		answer, atLocal = append(answer, a.answered.Sub(a.at)), append(atLocal, l.Sub(a.at))
		atRemote, remoteAfter = append(atRemote, r.Sub(a.at)), append(remoteAfter, r.Sub(a.answered))
		lc, lok := local.sinceStamp(a.tag)
		rc, rok := remote.sinceStamp(a.tag)
		if !lok || !rok {
			return nil, fmt.Errorf("the event of action %d carries no time", a.tag)
		}
		localCommit, remoteCommit = append(localCommit, lc), append(remoteCommit, rc)
	}
	s := sample{"actions": float64(len(actions)), "lost": float64(local.lost() + remote.lost()), "answered_per_s": answeredRate(actions)}
	maps.Copy(s, kinds)
	quantiles(s, "http_", answer)
	quantiles(s, "local_", atLocal)
	quantiles(s, "remote_", atRemote)
	quantiles(s, "remote_after_answer_", remoteAfter)
	quantiles(s, "local_after_commit_", localCommit)
	quantiles(s, "remote_after_commit_", remoteCommit)
	return s, nil
}

// answeredRate is the actions answered with success a second, from the
// first sent to the last answered: below the rate they were sent at, the
// node did not keep up.
func answeredRate(actions []sent) float64 {
	var first, last time.Time
	n := 0
	for _, a := range actions {
		if a.err != nil || a.status >= 300 {
			continue
		}
		n++
		if first.IsZero() || a.at.Before(first) {
			first = a.at
		}
		if a.answered.After(last) {
			last = a.answered
		}
	}
	if n < 2 {
		return 0
	}
	return float64(n) / last.Sub(first).Seconds()
}

// sum adds v up.
func sum(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t
}

// errNoNodes is returned when a scenario needs more nodes than it has.
var errNoNodes = errors.New("the latency scenario needs at least 2 nodes")
