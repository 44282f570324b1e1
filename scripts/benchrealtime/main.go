// Command benchrealtime measures the realtime hub against a floor: the
// least a fan-out server on coder/websocket can do (a bounded queue and a
// batching writer per socket, each event encoded once). Both serve real
// coder/websocket clients over loopback; every scenario runs on each,
// alternately, -runs times, and the table shows medians.
//
// Scenarios:
//
//   - saturation: -subs subscribers, events published as fast as the
//     slowest keeps up with; delivered messages a second and CPU per
//     delivery. Clients and publisher share the process, so the CPU figure
//     includes them.
//   - latency: -subs subscribers, -rate events a second; publish-to-receive
//     delay of every delivery.
//   - stall: -stall-subs subscribers with and without one more that stops
//     reading; the others' delay, and how the stalled one is closed.
//   - idle: -idle idle subscribed sockets to a server in a child process
//     (this program with -serve), so its memory is measured alone.
//   - storm: -storm subscribers drop at once and, after -storm-away
//     events, reconnect with after_seq over -storm-spread, while events go
//     out at -storm-rate a second; events lost and repeated, and how long
//     until all are live again. The hub only, replaying from an in-memory
//     backlog: the floor has none.
//
// scripts/bench-realtime runs it with the descriptor limit raised.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchrealtime:", err)
		os.Exit(1)
	}
}

// config holds the flags.
type config struct {
	scenarios     []string
	runs          int
	subs          int
	payload       int
	satDuration   time.Duration
	window        int64
	rate          int
	latDuration   time.Duration
	stallSubs     int
	stallPayload  int
	stallDuration time.Duration
	idle          int
	storm         int
	stormAway     int
	stormRate     int
	stormSpread   time.Duration
	json          bool
	// logf writes a line of progress.
	logf func(format string, args ...any)
}

// scenario is one measurement and the metrics it reports.
type scenario struct {
	name string
	// systems are those the scenario runs on; nil means both.
	systems  []string
	describe func(config) string
	run      func(context.Context, config, string) (sample, error)
	metrics  []metric
}

// metric is one row of a scenario's table.
type metric struct {
	key, label, format string
	// target, when set, names the goal that pass checks on the medians.
	target string
	pass   func(hub, floor float64) bool
}

func scenarios() []scenario {
	return []scenario{{
		name: "saturation",
		describe: func(c config) string {
			return fmt.Sprintf("%d subscribers, %v, %d B payloads, publisher at most %d events ahead",
				c.subs, c.satDuration, c.payload, c.window)
		},
		run: saturation,
		metrics: []metric{
			{key: "deliveries_per_s", label: "delivered messages/s", format: "%.0f",
				target: ">= 0.9x floor", pass: func(h, f float64) bool { return h >= 0.9*f }},
			{key: "events_per_s", label: "events published/s", format: "%.0f"},
			{key: "cpu_us_per_delivery", label: "process CPU/delivery µs (servers+clients)", format: "%.2f"},
			{key: "cpu_cores", label: "process CPU, cores busy", format: "%.2f"},
			{key: "dropped", label: "subscribers dropped", format: "%.0f"},
		},
	}, {
		name: "latency",
		describe: func(c config) string {
			return fmt.Sprintf("%d subscribers, %d events/s for %v, %d B payloads", c.subs, c.rate, c.latDuration, c.payload)
		},
		run: latency,
		metrics: []metric{
			{key: "p50_ms", label: "publish→receive p50 ms", format: "%.2f"},
			{key: "p99_ms", label: "publish→receive p99 ms", format: "%.2f",
				target: "<= 15 ms", pass: func(h, _ float64) bool { return h <= 15 }},
			{key: "max_ms", label: "publish→receive max ms", format: "%.2f"},
			{key: "lost", label: "deliveries missing", format: "%.0f"},
			{key: "cpu_cores", label: "process CPU, cores busy", format: "%.2f"},
		},
	}, {
		name: "stall",
		describe: func(c config) string {
			return fmt.Sprintf("%d subscribers (+1 that stops reading, SO_RCVBUF 4 KiB), %d events/s for %v, %d B payloads",
				c.stallSubs, c.rate, c.stallDuration, c.stallPayload)
		},
		run: stall,
		metrics: []metric{
			{key: "alone_p50_ms", label: "others p50 ms, no stalled client", format: "%.2f"},
			{key: "alone_p99_ms", label: "others p99 ms, no stalled client", format: "%.2f"},
			{key: "alone_max_ms", label: "others max ms, no stalled client", format: "%.2f"},
			{key: "with_p50_ms", label: "others p50 ms, with stalled client", format: "%.2f"},
			{key: "with_p99_ms", label: "others p99 ms, with stalled client", format: "%.2f"},
			{key: "with_max_ms", label: "others max ms, with stalled client", format: "%.2f"},
			{key: "alone_lost", label: "others' deliveries missing, alone", format: "%.0f"},
			{key: "with_lost", label: "others' deliveries missing, with", format: "%.0f"},
			{key: "drop_s", label: "stalled socket dropped after s (-1 never)", format: "%.2f"},
			{key: "close_code", label: "close code stalled client read (-1 none)", format: "%.0f"},
			{key: "stalled_events", label: "events stalled client got", format: "%.0f"},
		},
	}, {
		name: "idle",
		describe: func(c config) string {
			return fmt.Sprintf("%d idle subscribed sockets; server in a child process, after GC", c.idle)
		},
		run: idle,
		metrics: []metric{
			{key: "rss_kib_per_socket", label: "server RSS KiB/socket", format: "%.1f",
				target: "<= 25 KiB", pass: func(h, _ float64) bool { return h <= 25 }},
			{key: "heap_kib_per_socket", label: "server heap+stacks KiB/socket", format: "%.1f"},
			{key: "goroutines_per_socket", label: "server goroutines/socket", format: "%.2f"},
			{key: "client_rss_kib_per_socket", label: "client RSS KiB/socket (this process)", format: "%.1f"},
		},
	}, {
		name: "storm",
		describe: func(c config) string {
			return fmt.Sprintf("%d subscribers drop at once, %d+ events later reconnect with after_seq over %v; %d events/s throughout, %d B payloads; in-memory backlog",
				c.storm, c.stormAway, c.stormSpread, c.stormRate, c.payload)
		},
		systems: []string{systemHub},
		run:     storm,
		metrics: []metric{
			{key: "lost", label: "events lost (gaps)", format: "%.0f",
				target: "= 0", pass: func(h, _ float64) bool { return h == 0 }},
			{key: "duplicated", label: "events duplicated", format: "%.0f",
				target: "= 0", pass: func(h, _ float64) bool { return h == 0 }},
			{key: "all_live_s", label: "all live again, s after reconnects began (-1 never)", format: "%.2f"},
			{key: "catchup_p50", label: "reconnect→caught up p50 ms", format: "%.1f"},
			{key: "catchup_p99", label: "reconnect→caught up p99 ms", format: "%.1f"},
			{key: "catchup_max", label: "reconnect→caught up max ms", format: "%.1f"},
			{key: "not_live", label: "clients not live after 30 s", format: "%.0f"},
			{key: "server_closed", label: "sockets the server closed (clients resumed)", format: "%.0f"},
			{key: "missed_min", label: "events missed while away, fewest", format: "%.0f"},
			{key: "published", label: "events published", format: "%.0f"},
		},
	}}
}

// result is one scenario's runs.
type result struct {
	Scenario    string              `json:"scenario"`
	Description string              `json:"description"`
	LoadBefore  string              `json:"load_before"`
	LoadAfter   string              `json:"load_after"`
	Runs        map[string][]sample `json:"runs"` // by system
}

func run(args []string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("benchrealtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.String("serve", "", "serve `system` (hub or floor) for the idle scenario, until stdin closes; used by this program itself")
	list := fs.String("scenarios", "saturation,latency,stall,idle,storm", "comma-separated scenarios to run")
	fs.IntVar(&cfg.runs, "runs", 3, "runs of each scenario on each system")
	fs.IntVar(&cfg.subs, "subs", 1000, "subscribers in the saturation and latency scenarios")
	fs.IntVar(&cfg.payload, "payload", 300, "event payload bytes in the saturation and latency scenarios")
	fs.DurationVar(&cfg.satDuration, "sat-duration", 5*time.Second, "publishing time of a saturation run")
	fs.Int64Var(&cfg.window, "window", 128, "events the saturation publisher may run ahead of the slowest subscriber (below the queue of 256)")
	fs.IntVar(&cfg.rate, "rate", 50, "events a second in the latency and stall scenarios")
	fs.DurationVar(&cfg.latDuration, "lat-duration", 10*time.Second, "publishing time of a latency run")
	fs.IntVar(&cfg.stallSubs, "stall-subs", 100, "reading subscribers in the stall scenario")
	fs.IntVar(&cfg.stallPayload, "stall-payload", 1024, "event payload bytes in the stall scenario")
	fs.DurationVar(&cfg.stallDuration, "stall-duration", 10*time.Second, "publishing time of each half of a stall run")
	fs.IntVar(&cfg.idle, "idle", 10000, "sockets in the idle scenario")
	fs.IntVar(&cfg.storm, "storm", 1000, "subscribers in the storm scenario")
	fs.IntVar(&cfg.stormAway, "storm-away", 100, "events published while the storm's subscribers are away")
	fs.IntVar(&cfg.stormRate, "storm-rate", 200, "events a second throughout the storm scenario")
	fs.DurationVar(&cfg.stormSpread, "storm-spread", time.Second, "time over which the storm's subscribers reconnect")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serve != "" {
		return serveChild(*serve)
	}
	cfg.logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	if cfg.runs < 1 || cfg.subs < 1 || cfg.idle < 1 || cfg.stallSubs < 1 || cfg.rate < 1 || cfg.window < 1 ||
		cfg.storm < 1 || cfg.stormAway < 1 || cfg.stormRate < 1 || cfg.stormSpread < 0 {
		return fmt.Errorf("-runs, -subs, -idle, -stall-subs, -rate, -window, -storm, -storm-away and -storm-rate must be positive, -storm-spread not negative")
	}

	all := scenarios()
	var chosen []scenario
	for name := range strings.SplitSeq(*list, ",") {
		i := slices.IndexFunc(all, func(s scenario) bool { return s.name == strings.TrimSpace(name) })
		if i < 0 {
			return fmt.Errorf("unknown scenario %q", name)
		}
		chosen = append(chosen, all[i])
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	loadStart := loadavg()
	var results []result
	for _, sc := range chosen {
		r, err := runScenario(ctx, cfg, sc)
		if err != nil {
			return err
		}
		results = append(results, r)
	}

	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Machine    string   `json:"machine"`
			LoadBefore string   `json:"load_before"`
			LoadAfter  string   `json:"load_after"`
			Results    []result `json:"results"`
		}{machine(), loadStart, loadavg(), results})
	}
	fmt.Fprintf(stdout, "%s\nload average before: %s   after: %s\n", machine(), loadStart, loadavg())
	for i, r := range results {
		printTable(stdout, chosen[i], r)
	}
	return nil
}

// runScenario runs sc cfg.runs times on each of its systems, alternating
// which goes first.
func runScenario(ctx context.Context, cfg config, sc scenario) (result, error) {
	r := result{Scenario: sc.name, Description: sc.describe(cfg), LoadBefore: loadavg(), Runs: map[string][]sample{}}
	systems := sc.systems
	if systems == nil {
		systems = []string{systemHub, systemFloor}
	}
	for i := range cfg.runs {
		order := slices.Clone(systems)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, system := range order {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			start := time.Now()
			var s sample
			others, err := othersCPU(func() error {
				var err error
				s, err = sc.run(ctx, cfg, system)
				return err
			})
			if err != nil {
				return r, fmt.Errorf("%s run %d on the %s: %w", sc.name, i+1, system, err)
			}
			s[othersKey] = others
			r.Runs[system] = append(r.Runs[system], s)
			cfg.logf("%s run %d/%d %-5s %5.1fs %s", sc.name, i+1, cfg.runs, system,
				time.Since(start).Seconds(), brief(sc, s))
			settle()
		}
	}
	r.LoadAfter = loadavg()
	return r, nil
}

// othersKey is the metric every scenario reports: the cores other
// processes took during the run, which skew the others.
const othersKey = "others_cores"

// withOthers returns the metrics of sc and othersKey.
func withOthers(sc scenario) []metric {
	return append(slices.Clip(sc.metrics), metric{key: othersKey, label: "CPU taken by other processes, cores", format: "%.2f"})
}

// brief is a run's metrics on one line, for the progress log.
func brief(sc scenario, s sample) string {
	var b strings.Builder
	for _, m := range withOthers(sc) {
		fmt.Fprintf(&b, " %s="+m.format, m.key, s[m.key])
	}
	return b.String()
}

func printTable(w io.Writer, sc scenario, r result) {
	fmt.Fprintf(w, "\n== %s: %s\n   load average before: %s   after: %s\n", sc.name, r.Description, r.LoadBefore, r.LoadAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\thub\tfloor\thub/floor\ttarget\thub runs\tfloor runs\t")
	for _, m := range withOthers(sc) {
		hubRuns, floorRuns := values(r.Runs[systemHub], m.key), values(r.Runs[systemFloor], m.key)
		h, f := median(hubRuns), median(floorRuns)
		floorMedian, ratio := "-", "-"
		if len(floorRuns) > 0 {
			floorMedian = fmt.Sprintf(m.format, f)
		}
		if f > 0 && h >= 0 {
			ratio = fmt.Sprintf("%.2fx", h/f)
		}
		target := ""
		if m.pass != nil {
			verdict := "FAIL"
			if m.pass(h, f) {
				verdict = "pass"
			}
			target = m.target + " " + verdict
		}
		fmt.Fprintf(tw, "%s\t"+m.format+"\t%s\t%s\t%s\t%s\t%s\t\n", m.label, h, floorMedian, ratio, target,
			join(m.format, hubRuns), join(m.format, floorRuns))
	}
	tw.Flush()
}

func values(runs []sample, key string) []float64 {
	out := make([]float64, len(runs))
	for i, s := range runs {
		out[i] = s[key]
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func join(format string, v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, " ")
}

// loadavg returns the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func machine() string {
	return fmt.Sprintf("%s %s/%s, %d CPUs, GOMAXPROCS %d", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0))
}
