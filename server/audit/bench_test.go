package audit_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"standin/server/audit"
	"standin/server/standin"
)

// BenchmarkAppend measures append throughput: one writer with one event
// per call (each call is its own commit), four and eight writers at once
// (group commit gathers their events into shared inserts), and calls of
// 100 events. Each log is anchored, as the server's is (its head file is
// replaced after every commit); STANDIN_BENCH_ANCHOR=off measures without.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	// As the server opens it on FerretDB, which uses no secondary index.
	base := audit.Config{NoIndexes: os.Getenv("STANDIN_TEST_MONGODB_URI") == ""}
	anchored := os.Getenv("STANDIN_BENCH_ANCHOR") != "off"
	config := func(b *testing.B) audit.Config {
		cfg := base
		if anchored {
			cfg.Anchor = mustAnchor(b, b.TempDir())
		}
		return cfg
	}

	b.Run("Sequential", func(b *testing.B) {
		l := mustLog(b, mustDB(b), config(b))
		for b.Loop() {
			if err := l.Append(ctx, login("bench")); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})

	for _, writers := range []int{4, 8} {
		b.Run(fmt.Sprintf("Concurrent%d", writers), func(b *testing.B) {
			l := mustLog(b, mustDB(b), config(b))
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
	}

	b.Run("Batch100", func(b *testing.B) {
		l := mustLog(b, mustDB(b), config(b))
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

// BenchmarkQuery measures filtered queries over a large log, built once:
// STANDIN_BENCH_EVENTS events (default 100,000). "Window" answers from
// the newest events kept in memory, as the server does on the embedded
// database; "Database" sends every query to the database, as on MongoDB.
// On the embedded FerretDB each database query reads and decodes the whole
// collection (some 20 s at 100,000 events), so "Database" runs only when
// STANDIN_BENCH_SCAN=1.
func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	n := 100_000
	if s := os.Getenv("STANDIN_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	db := mustDB(b)
	writer := mustLog(b, db, audit.Config{})
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
		mustAppend(b, writer, evs...)
	}
	b.Logf("built a log of %d events in %v", n, time.Since(start))
	start = time.Now()
	windowed := mustLog(b, db, audit.Config{Window: n})
	b.Logf("opened a Log keeping %d events in memory in %v", n, time.Since(start))

	modes := []struct {
		name string
		l    *audit.Log
	}{{"Window", windowed}}
	if os.Getenv("STANDIN_BENCH_SCAN") == "1" {
		modes = append(modes, struct {
			name string
			l    *audit.Log
		}{"Database", writer})
	}
	for _, mode := range modes {
		for _, tc := range []struct {
			name  string
			f     standin.EventFilter
			pages int
		}{
			{"Type", standin.EventFilter{Type: standin.EventActionDenied}, 1},
			{"SubjectInManagersProjects", standin.EventFilter{SubjectID: "u7", Projects: []string{"p1", "p2"}}, 1},
			{"SubjectInManagersProjects10Pages", standin.EventFilter{SubjectID: "u7", Projects: []string{"p1", "p2"}}, 10},
			{"AfterSeqCatchUp", standin.EventFilter{AfterSeq: int64(n - 100)}, 1},
		} {
			b.Run(mode.name+"/"+tc.name, func(b *testing.B) {
				var lat []time.Duration
				for b.Loop() {
					started := time.Now()
					cursor := ""
					for range tc.pages {
						page, next, err := mode.l.Query(ctx, tc.f, standin.Page{Limit: 50, Cursor: cursor})
						if err != nil {
							b.Fatal(err)
						}
						if len(page) == 0 {
							b.Fatal("empty page")
						}
						cursor = next
					}
					lat = append(lat, time.Since(started))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[min(len(lat)*99/100, len(lat)-1)].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(n), "events-in-log")
			})
		}
	}
}

// BenchmarkDiskFloor measures what the disk under the test database
// allows, for comparison with BenchmarkAppend in the same run: appends of
// an event-sized record (300 bytes) to a file, each followed by fdatasync,
// and groups of 100 records per fdatasync, as group commit would write
// them if the database did nothing else.
func BenchmarkDiskFloor(b *testing.B) {
	record := make([]byte, 300)
	for i := range record {
		record[i] = 'x'
	}
	for _, group := range []int{1, 100} {
		b.Run(fmt.Sprintf("Fdatasync%d", group), func(b *testing.B) {
			f, err := os.CreateTemp(b.TempDir(), "floor")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			for b.Loop() {
				for range group {
					if _, err := f.Write(record); err != nil {
						b.Fatal(err)
					}
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(group*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
