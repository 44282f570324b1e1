// Command benchrealtime measures the realtime hub against a floor: the
// least a fan-out server on coder/websocket can do (a bounded queue and a
// batching writer per socket, each event encoded once). Both serve real
// coder/websocket clients over loopback; every scenario runs on each,
// alternately, -runs times, and the table shows medians. The floor is
// package standin/scripts/internal/fanoutfloor.
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
// -subs and -idle take comma-separated lists: saturation and latency run
// once per -subs value, idle once per -idle value. In the saturation and
// latency scenarios both ends of every socket are in this process when the
// open files limit allows (2 per subscriber); when it does not, the
// subscribers run in a child process (this program with -clients), whose
// CPU time still counts in the CPU figures, and client_procs is 1;
// -clients-apart puts them there at every size, for comparison. The idle
// scenario needs one descriptor per socket in each of its two
// processes.
//
// The table goes to stdout; -json prints the results as JSON instead, and
// -out FILE writes the JSON to FILE as well as printing the table:
//
//	{"program":"benchrealtime","machine":"…","load_before":"…","load_after":"…",
//	 "results":[{"scenario":"saturation","params":{"subs":1000},"description":"…",
//	   "load_before":"…","load_after":"…",
//	   "runs":{"hub":[{"deliveries_per_s":…,…,"others_cores":…}],"floor":[…]}}]}
//
// params holds the scenario's size: {"subs":N} for saturation and latency,
// {"idle":N}, {"stall_subs":N} or {"storm":N}. runs holds one object of
// metrics per run and system, in run order; the storm runs on the hub
// only. Every run reports others_cores, the cores other processes took
// while it ran.
//
// scripts/bench-realtime runs it with the descriptor limit raised.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/hostload"
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
	subsList      []int
	subs          int // of the run
	payload       int
	satDuration   time.Duration
	window        int64
	rate          int
	latDuration   time.Duration
	stallSubs     int
	stallPayload  int
	stallDuration time.Duration
	idleList      []int
	idle          int // of the run
	storm         int
	stormAway     int
	stormRate     int
	stormSpread   time.Duration
	clientsApart  bool
	json          bool
	out           string
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
	// param names the size the scenario runs at, in the results' params;
	// it runs once for each of benchresult.Values(cfg), applied to cfg by set.
	param  string
	values func(config) []int
	set    func(*config, int)
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
		run:   saturation,
		param: "subs", values: func(c config) []int { return c.subsList }, set: func(c *config, n int) { c.subs = n },
		metrics: []metric{
			{key: "deliveries_per_s", label: "delivered messages/s", format: "%.0f",
				target: ">= 0.9x floor", pass: func(h, f float64) bool { return h >= 0.9*f }},
			{key: "events_per_s", label: "events published/s", format: "%.0f"},
			{key: "cpu_us_per_delivery", label: "process CPU/delivery µs (servers+clients)", format: "%.2f"},
			{key: "cpu_cores", label: "process CPU, cores busy", format: "%.2f"},
			{key: "dropped", label: "subscribers dropped", format: "%.0f"},
			{key: "client_procs", label: "processes the clients ran in besides this one", format: "%.0f"},
		},
	}, {
		name: "latency",
		describe: func(c config) string {
			return fmt.Sprintf("%d subscribers, %d events/s for %v, %d B payloads", c.subs, c.rate, c.latDuration, c.payload)
		},
		run:   latency,
		param: "subs", values: func(c config) []int { return c.subsList }, set: func(c *config, n int) { c.subs = n },
		metrics: []metric{
			{key: "p50_ms", label: "publish→receive p50 ms", format: "%.2f"},
			{key: "p99_ms", label: "publish→receive p99 ms", format: "%.2f",
				target: "<= 15 ms", pass: func(h, _ float64) bool { return h <= 15 }},
			{key: "max_ms", label: "publish→receive max ms", format: "%.2f"},
			{key: "lost", label: "deliveries missing", format: "%.0f"},
			{key: "cpu_cores", label: "process CPU, cores busy", format: "%.2f"},
			{key: "client_procs", label: "processes the clients ran in besides this one", format: "%.0f"},
		},
	}, {
		name: "stall",
		describe: func(c config) string {
			return fmt.Sprintf("%d subscribers (+1 that stops reading, SO_RCVBUF 4 KiB), %d events/s for %v, %d B payloads",
				c.stallSubs, c.rate, c.stallDuration, c.stallPayload)
		},
		run:   stall,
		param: "stall_subs", values: func(c config) []int { return []int{c.stallSubs} }, set: func(c *config, n int) { c.stallSubs = n },
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
		run:   idle,
		param: "idle", values: func(c config) []int { return c.idleList }, set: func(c *config, n int) { c.idle = n },
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
		param:   "storm", values: func(c config) []int { return []int{c.storm} }, set: func(c *config, n int) { c.storm = n },
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

// result is one scenario's runs at one size.
type result = benchresult.Result

// report is a whole run.
type report = benchresult.Report

func run(args []string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("benchrealtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.String("serve", "", "serve `system` (hub or floor) for the idle scenario, until stdin closes; used by this program itself")
	list := fs.String("scenarios", "saturation,latency,stall,idle,storm", "comma-separated scenarios to run")
	fs.IntVar(&cfg.runs, "runs", 3, "runs of each scenario on each system")
	subsList := fs.String("subs", "1000", "comma-separated `counts` of subscribers in the saturation and latency scenarios; each runs once per count")
	fs.IntVar(&cfg.payload, "payload", 300, "event payload bytes in the saturation and latency scenarios")
	fs.DurationVar(&cfg.satDuration, "sat-duration", 5*time.Second, "publishing time of a saturation run")
	fs.Int64Var(&cfg.window, "window", 128, "events the saturation publisher may run ahead of the slowest subscriber (below the queue of 256)")
	fs.IntVar(&cfg.rate, "rate", 50, "events a second in the latency and stall scenarios")
	fs.DurationVar(&cfg.latDuration, "lat-duration", 10*time.Second, "publishing time of a latency run")
	fs.IntVar(&cfg.stallSubs, "stall-subs", 100, "reading subscribers in the stall scenario")
	fs.IntVar(&cfg.stallPayload, "stall-payload", 1024, "event payload bytes in the stall scenario")
	fs.DurationVar(&cfg.stallDuration, "stall-duration", 10*time.Second, "publishing time of each half of a stall run")
	idleList := fs.String("idle", "10000", "comma-separated `counts` of sockets in the idle scenario; it runs once per count")
	fs.IntVar(&cfg.storm, "storm", 1000, "subscribers in the storm scenario")
	fs.IntVar(&cfg.stormAway, "storm-away", 100, "events published while the storm's subscribers are away")
	fs.IntVar(&cfg.stormRate, "storm-rate", 200, "events a second throughout the storm scenario")
	fs.DurationVar(&cfg.stormSpread, "storm-spread", time.Second, "time over which the storm's subscribers reconnect")
	fs.BoolVar(&cfg.clientsApart, "clients-apart", false, "run the saturation and latency subscribers in a child process even when both ends of their sockets fit the open files limit of this one")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON instead of a table")
	fs.StringVar(&cfg.out, "out", "", "also write the results as JSON to `file`")
	clients := fs.String("clients", "", "open the subscribers `spec` describes and report on them, until stdin closes; used by this program itself")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serve != "" {
		return serveChild(*serve)
	}
	if *clients != "" {
		return serveClients(*clients)
	}
	var err error
	if cfg.subsList, err = benchresult.Sizes("-subs", *subsList); err != nil {
		return err
	}
	if cfg.idleList, err = benchresult.Sizes("-idle", *idleList); err != nil {
		return err
	}
	cfg.subs, cfg.idle = cfg.subsList[0], cfg.idleList[0]
	cfg.logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	if cfg.runs < 1 || cfg.stallSubs < 1 || cfg.rate < 1 || cfg.window < 1 ||
		cfg.storm < 1 || cfg.stormAway < 1 || cfg.stormRate < 1 || cfg.stormSpread < 0 {
		return fmt.Errorf("-runs, -stall-subs, -rate, -window, -storm, -storm-away and -storm-rate must be positive, -storm-spread not negative")
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
	loadStart := hostload.Loadavg()
	var results []result
	var ran []scenario // the scenario of each result
	for _, sc := range chosen {
		for _, v := range sc.values(cfg) {
			c := cfg
			sc.set(&c, v)
			r, err := runScenario(ctx, c, sc, map[string]int{sc.param: v})
			if err != nil {
				return err
			}
			results, ran = append(results, r), append(ran, sc)
		}
	}

	rep := report{Program: "benchrealtime", Machine: hostload.Machine(), LoadBefore: loadStart,
		LoadAfter: hostload.Loadavg(), Results: results}
	if cfg.out != "" {
		if err := benchresult.Write(cfg.out, rep); err != nil {
			return err
		}
	}
	if cfg.json {
		return benchresult.Encode(stdout, rep)
	}
	fmt.Fprintf(stdout, "%s\nload average before: %s   after: %s\n", rep.Machine, rep.LoadBefore, rep.LoadAfter)
	for i, r := range results {
		printTable(stdout, ran[i], r)
	}
	return nil
}

// runScenario runs sc, at the size of cfg that p names, cfg.runs times on
// each of its systems, alternating which goes first.
func runScenario(ctx context.Context, cfg config, sc scenario, p map[string]int) (result, error) {
	r := result{Scenario: sc.name, Params: p, Description: sc.describe(cfg), LoadBefore: hostload.Loadavg(), Runs: map[string][]sample{}}
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
			others, err := hostload.OthersCPU(func() error {
				var err error
				s, err = sc.run(ctx, cfg, system)
				return err
			})
			if err != nil {
				return r, fmt.Errorf("%s run %d on the %s: %w", sc.name, i+1, system, err)
			}
			s[othersKey] = others
			r.Runs[system] = append(r.Runs[system], s)
			cfg.logf("%s %s run %d/%d %-5s %5.1fs %s", sc.name, params(r.Params), i+1, cfg.runs, system,
				time.Since(start).Seconds(), brief(sc, s))
			hostload.Settle()
		}
	}
	r.LoadAfter = hostload.Loadavg()
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
	fmt.Fprintf(w, "\n== %s (%s): %s\n   load average before: %s   after: %s\n", sc.name, params(r.Params), r.Description, r.LoadBefore, r.LoadAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\thub\tfloor\thub/floor\ttarget\thub runs\tfloor runs\t")
	for _, m := range withOthers(sc) {
		hubRuns, floorRuns := benchresult.Values(r.Runs[systemHub], m.key), benchresult.Values(r.Runs[systemFloor], m.key)
		h, f := benchresult.Median(hubRuns), benchresult.Median(floorRuns)
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
			benchresult.Join(m.format, hubRuns), benchresult.Join(m.format, floorRuns))
	}
	tw.Flush()
}

// params shows a result's params as "key value, …".
func params(p map[string]int) string {
	keys := slices.Sorted(maps.Keys(p))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + strconv.Itoa(p[k])
	}
	return strings.Join(parts, ", ")
}
