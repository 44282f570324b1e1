package audit_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/standin"
)

// BenchmarkAppend measures append throughput: one writer with one event
// per call (each call is its own commit), eight writers at once (group
// commit gathers their events into shared inserts), and calls of 100
// events.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()

	b.Run("Sequential", func(b *testing.B) {
		l := mustLog(b, mustDB(b), audit.Config{})
		for b.Loop() {
			if err := l.Append(ctx, login("bench")); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("Concurrent8", func(b *testing.B) {
		l := mustLog(b, mustDB(b), audit.Config{})
		const writers = 8
		lat := make([][]time.Duration, writers)
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for w := range writers {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					start := time.Now()
					if err := l.Append(ctx, login("bench")); err != nil {
						b.Error(err)
						return
					}
					lat[w] = append(lat[w], time.Since(start))
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		all := slices.Concat(lat...)
		slices.Sort(all)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		if len(all) > 0 {
			b.ReportMetric(float64(all[len(all)*50/100].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[min(len(all)*99/100, len(all)-1)].Microseconds())/1000, "p99-ms")
		}
	})

	b.Run("Batch100", func(b *testing.B) {
		l := mustLog(b, mustDB(b), audit.Config{})
		for b.Loop() {
			evs := make([]*standin.Event, 100)
			for i := range evs {
				evs[i] = login("bench")
			}
			if err := l.Append(ctx, evs...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkQuery measures filtered queries over a large log, built once.
// The log holds STANDIN_BENCH_EVENTS events (default 20,000: on the
// embedded FerretDB every such query scans the whole collection, about
// 5,000 documents a second on a small machine, so 100,000 would take
// some 20 s per query).
func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	n := 20_000
	if s := os.Getenv("STANDIN_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	l := mustLog(b, mustDB(b), audit.Config{})
	start := time.Now()
	types := []string{standin.EventLogin, standin.EventActionAllowed, standin.EventActionDenied, standin.EventImpersonationStarted}
	for i := 0; i < n; {
		var evs []*standin.Event
		for ; i < n && len(evs) < 500; i++ {
			evs = append(evs, &standin.Event{
				Type: types[i%4], Actor: standin.EventUser{ID: fmt.Sprintf("u%d", i%50), Name: "Actor"},
				Subject: standin.EventUser{ID: fmt.Sprintf("u%d", i%97), Name: "Subject"},
				Action:  "booking.create", Object: fmt.Sprintf("booking/%d", i), Outcome: "allowed",
				Reason: "member of the project with the required trainings", IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (bench)",
				Project: fmt.Sprintf("p%d", i%10), Projects: []string{fmt.Sprintf("p%d", i%10), fmt.Sprintf("p%d", (i+3)%10)},
			})
		}
		mustAppend(b, l, evs...)
	}
	b.Logf("built a log of %d events in %v", n, time.Since(start))

	for _, tc := range []struct {
		name string
		f    standin.EventFilter
	}{
		{"Type", standin.EventFilter{Type: standin.EventActionDenied}},
		{"SubjectInManagersProjects", standin.EventFilter{SubjectID: "u7", Projects: []string{"p1", "p2"}}},
		{"AfterSeqCatchUp", standin.EventFilter{AfterSeq: int64(n - 100)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				page, _, err := l.Query(ctx, tc.f, standin.Page{Limit: 50})
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					b.Fatal("empty page")
				}
			}
			b.ReportMetric(float64(n), "events-in-log")
		})
	}
}
