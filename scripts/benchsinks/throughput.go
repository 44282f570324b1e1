package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"standin/scripts/internal/hostload"
)

// drainTimeout bounds the wait for a sink to receive the last event of a
// measurement.
const drainTimeout = 10 * time.Minute

// generated is what a closed loop of actions did.
type generated struct {
	ok, failed int // answered with 2xx–3xx; otherwise, or not answered
	firstErr   error
	took       []time.Duration // of each action answered with success
	start, end time.Time
}

// generate has workers requests at a time take actions as the agent, one
// after another, until n were answered with success or ctx ends; a
// failure counts and the loop goes on.
func generate(ctx context.Context, p *people, n, workers int) generated {
	var g generated
	var mu sync.Mutex
	var tickets atomic.Int64
	var wg sync.WaitGroup
	g.start = time.Now()
	for range workers {
		wg.Go(func() {
			var ok, failed int
			var took []time.Duration
			var firstErr error
			for ctx.Err() == nil && tickets.Add(1) <= int64(n) {
				t0 := time.Now()
				status, err := p.act()
				if err == nil && status < 300 {
					ok++
					took = append(took, time.Since(t0))
					continue
				}
				failed++
				tickets.Add(-1) // taken again
				if firstErr == nil {
					firstErr = fmt.Errorf("status %d, %v", status, err)
				}
				if failed > n/10+10 {
					return // the console is failing, not slow
				}
			}
			mu.Lock()
			defer mu.Unlock()
			g.ok, g.failed = g.ok+ok, g.failed+failed
			g.took = append(g.took, took...)
			if g.firstErr == nil {
				g.firstErr = firstErr
			}
		})
	}
	wg.Wait()
	g.end = time.Now()
	return g
}

// cores runs fn and returns the cores the console, this process (the
// clients and the receivers) and other processes took meanwhile.
func (b *bench) cores(fn func() error) (console, own, others float64, err error) {
	c0, err := hostload.ProcessCPU(b.con.PID())
	if err != nil {
		return 0, 0, 0, err
	}
	own0, start := hostload.CPUTime(), time.Now()
	all, err := hostload.OthersCPU(fn)
	if err != nil {
		return 0, 0, 0, err
	}
	secs := time.Since(start).Seconds()
	c1, err := hostload.ProcessCPU(b.con.PID())
	if err != nil {
		return 0, 0, 0, err
	}
	console, own = (c1-c0).Seconds()/secs, (hostload.CPUTime()-own0).Seconds()/secs
	// The console is a child still running: OthersCPU counts it.
	return console, own, max(0, all-console), nil
}

// throughput adds one webhook sink with history, waits until it has the
// log so far, then has the agent take -events actions as fast as the
// console answers -workers requests at a time, and measures what
// reaches the sink: events a second from the first record of the
// actions' events to the last, and each event's lag from its time in the
// log to its arrival.
func throughput(ctx context.Context, b *bench) (result, error) {
	cfg := b.cfg
	r := newResult("throughput", map[string]int{"events": cfg.events, "workers": cfg.workers},
		fmt.Sprintf("one webhook sink with history; %d audited actions, %d requests at a time, as fast as the console answers", cfg.events, cfg.workers))
	rcv, err := newReceiver()
	if err != nil {
		return r, err
	}
	defer rcv.close()
	s, err := b.people.addSink("throughput", rcv.url, true)
	if err != nil {
		return r, err
	}
	rcv.setSecret(s.Secret)
	head0, err := b.people.admin.Head()
	if err != nil {
		return r, err
	}
	if err := rcv.waitFor(head0, drainTimeout); err != nil {
		return r, fmt.Errorf("the log before the measurement: %w", err)
	}
	b.logf("throughput: the sink has the log so far (%d events); %d actions, %d at a time", head0, cfg.events, cfg.workers)
	_, c0 := rcv.snapshot()

	var g generated
	var head1 int64
	console, own, others, err := b.cores(func() error {
		g = generate(ctx, b.people, cfg.events, cfg.workers)
		if g.ok < cfg.events {
			return fmt.Errorf("%d of %d actions answered with success; the first failure: %v", g.ok, cfg.events, g.firstErr)
		}
		var err error
		if head1, err = b.people.admin.Head(); err != nil {
			return err
		}
		b.logf("throughput: %d actions in %.1fs, %d failed; waiting for seq %d at the sink", g.ok, g.end.Sub(g.start).Seconds(), g.failed, head1)
		return rcv.waitFor(head1, drainTimeout)
	})
	if err != nil {
		return r, err
	}
	recs, c1 := rcv.snapshot()
	d := summarize(recs, head0, head1)
	batches := c1.batches - c0.batches
	sm := sample{
		"events": float64(head1 - head0), "actions": float64(g.ok), "action_errors": float64(g.failed),
		"generate_s":      g.end.Sub(g.start).Seconds(),
		"appended_per_s":  float64(head1-head0) / g.end.Sub(g.start).Seconds(),
		"delivered_per_s": d.perSecond(), "delivered": float64(d.events),
		"deliver_s": d.last.Sub(d.first).Seconds(), "drain_s": d.last.Sub(g.end).Seconds(),
		"missing": float64(d.missing), "duplicates": float64(d.duplicates),
		"batches": float64(batches), "checkpoints": float64(c1.checkpoints - c0.checkpoints),
		"forged": float64(c1.forged), "bad_records": float64(c1.bad),
		"console_cores": console, "bench_cores": own, "others_cores": others,
	}
	if batches > 0 {
		sm["events_per_batch"] = float64(d.events+d.duplicates) / float64(batches)
	}
	sm.Quantiles("lag_", d.lags)
	sm.Quantiles("http_", g.took)
	r.Runs[system] = append(r.Runs[system], sm)
	r.LoadAfter = hostload.Loadavg()
	b.logSample("throughput", sm)
	return r, b.people.removeSink(s.ID)
}

// backlog adds a webhook sink with history to a log that holds the
// throughput scenario's events, and measures how fast it catches up:
// events a second from the first record's arrival to the head's.
func backlog(ctx context.Context, b *bench) (result, error) {
	r := newResult("backlog", nil, "")
	rcv, err := newReceiver()
	if err != nil {
		return r, err
	}
	defer rcv.close()
	var s *sink
	var head int64
	var added time.Time
	console, own, others, err := b.cores(func() error {
		added = time.Now()
		var err error
		if s, err = b.people.addSink("backlog", rcv.url, true); err != nil {
			return err
		}
		rcv.setSecret(s.Secret)
		if head, err = b.people.admin.Head(); err != nil {
			return err
		}
		b.logf("backlog: a sink with history added to a log of %d events", head)
		return errors.Join(rcv.waitFor(head, drainTimeout), ctx.Err())
	})
	r.Params = map[string]int{"events": int(head)}
	r.Description = fmt.Sprintf("a webhook sink added with history to a log of %d events, alone", head)
	if err != nil {
		return r, err
	}
	recs, c := rcv.snapshot()
	d := summarize(recs, 0, head)
	sm := sample{
		"events": float64(head), "delivered": float64(d.events), "delivered_per_s": d.perSecond(),
		"deliver_s": d.last.Sub(d.first).Seconds(), "first_record_s": d.first.Sub(added).Seconds(),
		"missing": float64(d.missing), "duplicates": float64(d.duplicates), "batches": float64(c.batches),
		"checkpoints": float64(c.checkpoints), "forged": float64(c.forged), "bad_records": float64(c.bad),
		"console_cores": console, "bench_cores": own, "others_cores": others,
	}
	r.Runs[system] = append(r.Runs[system], sm)
	r.LoadAfter = hostload.Loadavg()
	b.logSample("backlog", sm)
	return r, b.people.removeSink(s.ID)
}
