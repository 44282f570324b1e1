package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/hostload"
)

// The two phases of the overhead scenario, the keys of its runs.
const (
	phaseNone  = "none"  // no sinks
	phaseSinks = "sinks" // two healthy webhook sinks and a dead one
)

// stopWithin is how long the console takes at most to stop delivering a
// removed sink: it reads the sinks every 2 s.
const stopWithin = 3 * time.Second

// overheadTarget is what the sinks add to an audited request, on the
// medians of the runs. The brief sets no limit: the figure is reported.
type overheadTarget struct {
	NoneP50MS  float64 `json:"none_p50_ms"`
	NoneP99MS  float64 `json:"none_p99_ms"`
	SinksP50MS float64 `json:"sinks_p50_ms"`
	SinksP99MS float64 `json:"sinks_p99_ms"`
	AddedP50MS float64 `json:"added_p50_ms"`
	AddedP99MS float64 `json:"added_p99_ms"`
}

// overhead measures the latency of the agent's audited action at -rate a
// second for -duration without sinks and with three webhook sinks, two
// healthy and one that never answers, -runs times each, alternating
// which goes first.
func overhead(ctx context.Context, b *bench) (result, error) {
	cfg := b.cfg
	r := newResult("overhead", map[string]int{"rate": cfg.rate, "seconds": int(cfg.duration.Seconds()), "sinks": 3, "dead": 1},
		fmt.Sprintf("%d audited actions/s for %v, each sent at its time: no sinks, then two healthy webhook sinks and one that never answers", cfg.rate, cfg.duration))
	r.Runs = map[string][]sample{}
	for i := range cfg.runs {
		order := []string{phaseNone, phaseSinks}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, name := range order {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			run := b.withoutSinks
			if name == phaseSinks {
				run = b.withSinks
			}
			s, err := run(ctx)
			if err != nil {
				return r, fmt.Errorf("overhead, run %d, %s: %w", i+1, name, err)
			}
			r.Runs[name] = append(r.Runs[name], s)
			b.logSample(fmt.Sprintf("overhead run %d/%d %-5s", i+1, cfg.runs, name), s)
			hostload.Settle()
		}
	}
	r.LoadAfter = hostload.Loadavg()
	med := func(phase, key string) float64 { return benchresult.Median(benchresult.Values(r.Runs[phase], key)) }
	t := overheadTarget{
		NoneP50MS: med(phaseNone, "http_p50_ms"), NoneP99MS: med(phaseNone, "http_p99_ms"),
		SinksP50MS: med(phaseSinks, "http_p50_ms"), SinksP99MS: med(phaseSinks, "http_p99_ms"),
	}
	t.AddedP50MS, t.AddedP99MS = t.SinksP50MS-t.NoneP50MS, t.SinksP99MS-t.NoneP99MS
	r.Target = &t
	return r, nil
}

// withoutSinks is one phase without sinks.
func (b *bench) withoutSinks(ctx context.Context) (sample, error) {
	var acts []sent
	console, own, others, err := b.cores(func() error {
		acts = paced(ctx, b.people, b.cfg.rate, b.cfg.duration)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	s := answers(acts)
	s["console_cores"], s["bench_cores"], s["others_cores"] = console, own, others
	return s, nil
}

// withSinks is one phase with three sinks: it adds them, waits until the
// healthy two deliver and the dead one's first batch hangs, measures,
// waits until the healthy two have every event of the phase, and removes
// the three.
func (b *bench) withSinks(ctx context.Context) (s sample, err error) {
	var healthy []*receiver
	for range 2 {
		rcv, err := newReceiver()
		if err != nil {
			return nil, err
		}
		defer rcv.close()
		healthy = append(healthy, rcv)
	}
	dead, err := newDeadReceiver()
	if err != nil {
		return nil, err
	}
	defer dead.close()
	var added []string
	defer func() {
		for _, id := range added {
			err = errors.Join(err, b.people.removeSink(id))
		}
		time.Sleep(stopWithin)
	}()
	for i, rcv := range healthy {
		sk, err := b.people.addSink(fmt.Sprintf("healthy %d", i+1), rcv.url, false)
		if err != nil {
			return nil, err
		}
		added = append(added, sk.ID)
		rcv.setSecret(sk.Secret)
	}
	deadSink, err := b.people.addSink("dead", dead.url, false)
	if err != nil {
		return nil, err
	}
	added = append(added, deadSink.ID)

	head0, err := b.people.admin.Head()
	if err != nil {
		return nil, err
	}
	for _, rcv := range healthy {
		if err := rcv.waitFor(head0, time.Minute); err != nil {
			return nil, err
		}
	}
	if err := dead.waitTried(1, time.Minute); err != nil {
		return nil, err
	}
	tried0 := dead.tried()

	var acts []sent
	console, own, others, err := b.cores(func() error {
		acts = paced(ctx, b.people, b.cfg.rate, b.cfg.duration)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	s = answers(acts)
	s["console_cores"], s["bench_cores"], s["others_cores"] = console, own, others
	s["dead_batches"] = float64(dead.tried() - tried0)

	head1, err := b.people.admin.Head()
	if err != nil {
		return nil, err
	}
	var lags []time.Duration
	var missing, forged float64
	for _, rcv := range healthy {
		if err := rcv.waitFor(head1, time.Minute); err != nil {
			return nil, err
		}
		recs, c := rcv.snapshot()
		d := summarize(recs, head0, head1)
		lags = append(lags, d.lags...)
		missing, forged = missing+float64(d.missing), forged+float64(c.forged)
	}
	s.Quantiles("healthy_lag_", lags)
	s["healthy_missing"], s["forged"] = missing, forged
	h, err := b.people.health(deadSink.ID)
	if err != nil {
		return nil, err
	}
	s["dead_failures"] = float64(h.Failures)
	return s, nil
}

// sent is one paced action: when it was sent and answered, and its
// status (0 when no answer came).
type sent struct {
	at, answered time.Time
	status       int
	err          error
}

// paced takes rate actions a second for d as the agent, each on its own
// goroutine at its time whether or not the ones before were answered, and
// returns them once all are answered.
func paced(ctx context.Context, p *people, rate int, d time.Duration) []sent {
	acts := make([]sent, int(float64(rate)*d.Seconds()))
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range acts {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		if ctx.Err() != nil {
			acts = acts[:i]
			break
		}
		a := &acts[i]
		wg.Go(func() {
			a.at = time.Now()
			a.status, a.err = p.act()
			a.answered = time.Now()
		})
	}
	wg.Wait()
	return acts
}

// answers measures paced actions: the time from sending each to its
// answer, for those answered with success, the errors, and the actions
// answered a second from the first sent to the last answered.
func answers(acts []sent) sample {
	var took []time.Duration
	var first, last time.Time
	errs := 0
	for _, a := range acts {
		if a.err != nil || a.status >= 300 {
			errs++
			continue
		}
		took = append(took, a.answered.Sub(a.at))
		if first.IsZero() || a.at.Before(first) {
			first = a.at
		}
		if a.answered.After(last) {
			last = a.answered
		}
	}
	s := sample{"actions": float64(len(acts)), "errors": float64(errs)}
	if len(took) > 1 {
		s["answered_per_s"] = float64(len(took)) / last.Sub(first).Seconds()
	}
	s.Quantiles("http_", took)
	return s
}
