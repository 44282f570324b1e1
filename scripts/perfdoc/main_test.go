package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := parseBench([]byte(`goos: linux
pkg: standin/server/audit
BenchmarkAppend/Concurrent4-2   	    5000	    600000 ns/op	         1.5 p50-ms	         7.5 p99-ms	      1705 events/s
BenchmarkAppend/Concurrent4-2   	    5000	    600000 ns/op	         2.5 p50-ms	         9.5 p99-ms	      1500 events/s
BenchmarkPolicyVisible 	     100	     12345 ns/op	    150000 visible-after-ns
PASS
`))
	if got := out["BenchmarkAppend/Concurrent4"]["events/s"]; len(got) != 2 || got[0] != 1705 || got[1] != 1500 {
		t.Fatalf("events/s = %v", got)
	}
	if got := median(out["BenchmarkAppend/Concurrent4"]["p99-ms"]); got != 8.5 {
		t.Fatalf("median p99 = %v", got)
	}
	if got := out["BenchmarkPolicyVisible"]["visible-after-ns"]; len(got) != 1 || got[0] != 150000 {
		t.Fatalf("visible-after-ns = %v", got)
	}
}

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		format string
		x      float64
		want   string
	}{
		{"%.0f", 822819, "822,819"},
		{"%.1f", 1234.56, "1,234.6"},
		{"%.2f", 0.92, "0.92"},
		{"%.0f", 100, "100"},
		{"%.0f", -2500, "-2,500"},
		{"%.0f", math.NaN(), "—"},
	} {
		if got := num(tc.format, tc.x); got != tc.want {
			t.Errorf("num(%q, %v) = %q, want %q", tc.format, tc.x, got, tc.want)
		}
	}
}

// TestRender renders the page from a small set of results: the figures
// come from them, targets get verdicts, and what did not run says so.
func TestRender(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("realtime.json", `{"program":"benchrealtime","results":[
 {"scenario":"saturation","params":{"subs":1000},"load_before":"1.0","load_after":"2.0",
  "runs":{"hub":[{"deliveries_per_s":800000,"cpu_us_per_delivery":2.4},{"deliveries_per_s":820000,"cpu_us_per_delivery":2.2},{"deliveries_per_s":900000,"cpu_us_per_delivery":2.3}],
          "floor":[{"deliveries_per_s":1000000,"cpu_us_per_delivery":2.0}]}}]}`)
	write("realtime.facts", "date: 2026-11-26 07:00 UTC\ncommit: abc1234\ncpus: 2\ncpu-model: Test CPU\nloadavg-before: 1.0 1.0 1.0\nloadavg-after: 2.0 2.0 2.0\n")
	write("cluster.json", `{"program":"benchcluster","results":[
 {"scenario":"idle","params":{"nodes":2,"seconds":30},"load_before":"0.5","load_after":"0.6",
  "runs":{"standin":[{"node1_pct":2.5,"node2_pct":2.26,"db_pct":8.5,"commands_per_s":80,"write_cmds_per_s":1.2,"others_cores":0.1}]}},
 {"scenario":"latency","params":{"nodes":3,"rate":20},"load_before":"0.7","load_after":"0.8",
  "runs":{"standin":[{"answered_per_s":19.9,"http_p50_ms":30,"http_p99_ms":80,"http_max_ms":90,"local_p50_ms":20,"local_p99_ms":60,"local_max_ms":70,
   "remote_p50_ms":55,"remote_p99_ms":120,"remote_max_ms":140,"remote_after_answer_p50_ms":25,"remote_after_answer_p99_ms":70,
   "local_after_commit_p50_ms":4,"local_after_commit_p99_ms":12,"local_after_commit_max_ms":15,"remote_after_commit_p50_ms":40,"remote_after_commit_p99_ms":95,"remote_after_commit_max_ms":110,"errors":0,"lost":0,"others_cores":0.2}]},
  "target":{"remote_p99_ms":95,"local_p99_ms":12,"limit_ms":150,"pass":true}},
 {"scenario":"throughput","params":{"nodes":2,"clients":8},"load_before":"0.9","load_after":"1.0",
  "runs":{"standin":[{"actions_per_s":60,"node1_actions_per_s":31,"node2_actions_per_s":29,"node1_share_pct":51.7,"node2_share_pct":48.3,"errors":0,"logged":900,"actions":900,
   "http_p50_ms":250,"http_p99_ms":600,"db_cores":0.9,"nodes_cores":0.3,"node_max_cores":0.16,"bench_cores":0.02,"others_cores":0.1,
   "write_cmds_per_s":61,"write_cmds_per_action":1.02,"commands_per_s":700}]},
  "target":{"limit":"the database process, near one core"}}]}`)
	write("cluster.facts", "date: 2026-12-03 08:00 UTC\ncommit: def5678\nloadavg-before: 0.5 0.5 0.5\nloadavg-after: 1.0 1.0 1.0\n")
	write("go.txt", "BenchmarkAppend/Batch100-2 10 1 ns/op 6000 events/s\nBenchmarkDiskFloor/Fdatasync100-2 10 1 ns/op 10000 records/s\n")
	r, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	page, err := render(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, want := range []string{
		"2 × Test CPU",
		"| fan-out (`realtime`) | 2026-11-26 07:00 UTC | abc1234 | 1.0 1.0 1.0 → 2.0 2.0 2.0 |",
		"| 1,000 | 820,000 (800,000, 820,000, 900,000) | 1,000,000 (1,000,000) | 0.82×: **not met** | 2.30 µs | 2.00 µs | 1.15×: **not met** |",
		"6,000 events/s in batches of 100 = 60.0% of 10,000 | met |",
		"| a policy change visible ≤ 100 ms later | p99 — ms, worst — ms | not measured |",
		"### Reconnect storm\n\nNot measured in this run.",
		"| several nodes (`cluster`) | 2026-12-03 08:00 UTC | def5678 | 0.5 0.5 0.5 → 1.0 1.0 1.0 |",
		"| 3 nodes, 20 actions/s sent to one (answered 19.9/s): p99 from commit to the event at a watcher on another node ≤ 150 ms | 95 ms | met |",
		"| 3 nodes, 20 actions/s sent to one (answered 19.9/s): p99 from commit to the event at a watcher on the writer's node ≤ 150 ms | 12 ms | met |",
		"## Several nodes",
		"| 20 | 19.9 | 4 / 12 / 15 | 40 / 95 / 110 | met | 30 / 80 / 90 | 20 / 60 / 70 | 55 / 120 / 140 | 25 / 70 | 0; 0 | 0.20 | 0.7 → 0.8 |",
		"| 2 | 60.0 | 31.0 (52%), 29.0 (48%) | 0 | 900 / 900 | 250 / 600 ms | 0.90 / 0.30 (0.16) / 0.02 / 0.10 | 15.0 ms | 11.7 (1.02) | 0.9 → 1.0 |",
		"2 nodes: the database process, near one core.",
		"Runs of B's p99 (ms): 20/s: from commit 95, from sending 120 (answered/s 19.9);",
		"Runs of actions/s: 2 nodes: 60.0 (database CPU 0.90 cores);",
		"| node 1 | 0.75 | 2.50 |\n| node 2 | 0.68 | 2.26 |\n| database | 2.55 | 8.50 |",
		"The database answered 80 commands a second (1.2 writes)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(s, "<no value>") {
		t.Error("page has <no value>")
	}
}

// sinksJSON is a run of scripts/benchsinks.
const sinksJSON = `{"program":"benchsinks","results":[
 {"scenario":"throughput","params":{"events":50000,"workers":8},"load_before":"1.5","load_after":"2.5",
  "runs":{"standin":[{"events":50002,"actions":50000,"generate_s":62.5,"appended_per_s":800,"delivered_per_s":805,"deliver_s":62.1,
   "lag_p50_ms":480,"lag_p99_ms":990,"lag_max_ms":1100,"drain_s":0.45,"http_p50_ms":8.2,"http_p99_ms":45.5,"batches":250,
   "events_per_batch":200,"checkpoints":50,"missing":0,"duplicates":0,"forged":0,"console_cores":0.9,"bench_cores":0.1,"others_cores":0.3}]}},
 {"scenario":"backlog","params":{"events":50006},"load_before":"2.5","load_after":"2.6",
  "runs":{"standin":[{"events":50006,"delivered_per_s":25000,"deliver_s":2.0,"first_record_s":2.4,"missing":0,"duplicates":0,
   "console_cores":0.4,"others_cores":0.2}]}},
 {"scenario":"overhead","params":{"rate":50,"seconds":20,"sinks":3,"dead":1},"load_before":"2.6","load_after":"2.7",
  "runs":{"none":[{"http_p50_ms":3.0,"http_p99_ms":12.0,"http_max_ms":20,"answered_per_s":50,"errors":0,"console_cores":0.15,"others_cores":0.2},
                  {"http_p50_ms":3.2,"http_p99_ms":14.0,"http_max_ms":25,"answered_per_s":50,"errors":0,"console_cores":0.15,"others_cores":0.2}],
          "sinks":[{"http_p50_ms":3.1,"http_p99_ms":15.5,"http_max_ms":30,"answered_per_s":50,"errors":0,"console_cores":0.2,"others_cores":0.2,
                    "healthy_lag_p50_ms":500,"healthy_lag_p99_ms":1000,"healthy_missing":0,"dead_batches":2,"dead_failures":1},
                   {"http_p50_ms":3.3,"http_p99_ms":16.5,"http_max_ms":31,"answered_per_s":50,"errors":1,"console_cores":0.2,"others_cores":0.2,
                    "healthy_lag_p50_ms":520,"healthy_lag_p99_ms":1010,"healthy_missing":0,"dead_batches":2,"dead_failures":2}]},
  "target":{"added_p99_ms":3}}]}`

// TestRenderSinks renders the audit sinks' section from a small set of
// results, and says it was not measured without them.
func TestRenderSinks(t *testing.T) {
	write := func(t *testing.T, dir, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "sinks.json", sinksJSON)
		write(t, dir, "sinks.facts", "date: 2026-12-04 18:00 UTC\ncommit: 1234abc\nloadavg-before: 1.5 1.5 1.5\nloadavg-after: 2.7 2.7 2.7\n")
		s := mustRender(t, dir)
		for _, want := range []string{
			"| audit sinks (`sinks`) | 2026-12-04 18:00 UTC | 1234abc | 1.5 1.5 1.5 → 2.7 2.7 2.7 |",
			"then 50,000 actions are taken as fast as the console answers\n8 requests at a time.",
			"| events appended | 50,002 in 62.5 s: 800 events/s (request p50 8.2 / p99 45.5 ms) |",
			"| delivered to the sink, first record → last seq | 805 events/s over 62.1 s |",
			"| lag, append → arrival at the sink, p50 / p99 / max | 480 / 990 / 1,100 ms |",
			"| batches; events per batch; signed checkpoints with them | 250; 200; 50 |",
			"| CPU, cores: console / benchmark (clients, receiver) / other processes | 0.90 / 0.10 / 0.30 |",
			"Load average 1.5 → 2.5. The sink kept up with the log",
			"it left, 50,006 events: it received them at 25,000 events/s",
			"The phases alternate which goes first, 2\nruns each",
			"| none | 3.10 | 13.00 | 22.5 | 50.0 | 0, 0 | 12.0, 14.0 | 0.15 | 0.20 |",
			"| two healthy, one dead | 3.20 | 16.00 | 30.5 | 50.0 | 0, 1 | 15.5, 16.5 | 0.20 | 0.20 |",
			"| added by the sinks | +0.10 | +3.00 | | | | | | |",
			"510 ms after their append at p50 and 1,005 ms at p99 (runs of p99:\n1,000, 1,010;",
			"dead one was sent 2, 2 batches during the runs, and its health counted\n1, 2 failures in a row",
			"The p99 the sinks add, +3.0 ms, exceeds the spread of either phase's\nruns (2.0 ms at most).",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})

	t.Run("Noisy", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "sinks.json", strings.Replace(sinksJSON, `"http_p99_ms":14.0`, `"http_p99_ms":40.0`, 1))
		s := mustRender(t, dir)
		want := "The p99 the sinks add, -10.0 ms, is within the spread of one phase's runs\n(28.0 ms between its fastest and slowest p99)"
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	})

	t.Run("NotMeasured", func(t *testing.T) {
		s := mustRender(t, t.TempDir())
		for _, want := range []string{
			"| audit sinks (`sinks`) | — | — | — → — |",
			"### Throughput to one webhook\n\nNot measured in this run.",
			"### A new sink catching up\n\nNot measured in this run.",
			"### What three sinks, one dead, add to a request\n\nNot measured in this run.",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})
}

// mustRender renders the page from the results in dir.
func mustRender(t *testing.T, dir string) string {
	t.Helper()
	r, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	page, err := render(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(page), "<no value>") {
		t.Error("page has <no value>")
	}
	return string(page)
}
