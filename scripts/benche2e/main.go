// Command benche2e measures the whole path of an action taken while
// impersonating: HTTP request, authorization as the impersonated user, the
// audit event's group commit on the embedded database, and fan-out to every
// watcher of the activity feed over real WebSockets, beside a floor: the
// same fan-out done by the least server on coder/websocket
// (standin/scripts/internal/fanoutfloor).
//
// It starts the real server in this process on a fresh embedded database
// with the demo facility. For each number of watchers N in -watchers:
//
//   - paced: -runs runs of two phases, alternating which goes first.
//     standin: the owner opens N sockets on /ws, each subscribed to
//     "activity"; the admin impersonates Ben and lists resources, which is
//     one audited decision (one event) per request, one request at a time
//     at -rate a second for -duration. For each action, the time from the
//     request to the HTTP answer (authorize + persist + handler) and to
//     its event at the first and the last watcher, and the fan-out spread
//     between them. floor: N coder/websocket clients subscribed to a
//     fanoutfloor server in this process, -rate events a second for
//     -duration, each the size of a real activity event (one is taken from
//     the server at start); for each event the time from publishing to
//     the first and the last watcher. The table shows medians over the
//     runs and checks the target: the last watcher's p99 at most the HTTP
//     answer's p99 plus the floor's publish→last p99 plus 2 ms.
//   - saturation: -runs runs of -workers requests at a time for
//     -duration with N watchers; actions a second, and deliveries a
//     second across the watchers.
//
// Every run records the cores other processes took meanwhile
// (others_cores), and every scenario the load average before and after.
// The table goes to stdout; -json prints the results as JSON instead, and
// -out FILE writes the JSON to FILE as well as printing the table:
//
//	{"program":"benche2e","machine":"…","load_before":"…","load_after":"…",
//	 "results":[
//	  {"scenario":"paced","params":{"watchers":100,"rate":50},"description":"…",
//	   "load_before":"…","load_after":"…",
//	   "runs":{"standin":[{"http_p99_ms":…,"last_p99_ms":…,…}],
//	           "floor":[{"floor_last_p99_ms":…,…}]},
//	   "target":{"last_p99_ms":…,"http_p99_ms":…,"floor_last_p99_ms":…,
//	             "slack_ms":2,"limit_ms":…,"pass":true,"last_vs_floor":…}},
//	  {"scenario":"saturation","params":{"watchers":100,"workers":8},…,
//	   "runs":{"standin":[{"actions_per_s":…,"deliveries_per_s":…,…}]}}]}
//
// Durations are in milliseconds (keys ending in _ms) or seconds (_s).
// The target is computed on the medians of the runs.
//
// Usage: scripts/bench-e2e [-watchers 10,100,1000] [-rate 50] [-duration 10s] [-runs 3] [-out FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/cpuprofile"
	"standin/scripts/internal/hostload"
	"standin/server"
	"standin/server/password"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benche2e:", err)
		os.Exit(1)
	}
}

// The two systems of the paced scenario.
const (
	systemStandin = "standin"
	systemFloor   = "floor"
)

// targetSlack is the target's allowance beyond the HTTP answer and the
// floor's fan-out.
const targetSlack = 2.0 // ms

// config holds the flags.
type config struct {
	watchers []int
	rate     int
	duration time.Duration
	workers  int
	runs     int
	json     bool
	out      string
	logf     func(format string, args ...any)
}

// result is one scenario's runs at one number of watchers.
type result = benchresult.Result

// report is a whole run.
type report = benchresult.Report

// target is the paced scenario's check, on the medians of its runs: the
// event reaches the last watcher within the HTTP answer's p99 plus the
// floor's publish→last p99 plus SlackMS.
type target struct {
	LastP99MS      float64 `json:"last_p99_ms"`
	HTTPP99MS      float64 `json:"http_p99_ms"`
	FloorLastP99MS float64 `json:"floor_last_p99_ms"`
	SlackMS        float64 `json:"slack_ms"`
	LimitMS        float64 `json:"limit_ms"`
	Pass           bool    `json:"pass"`
	// LastVsFloor is the last watcher's p99 over the floor's
	// publish→last p99.
	LastVsFloor float64 `json:"last_vs_floor"`
}

func run(args []string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("benche2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	watchers := fs.String("watchers", "10,100,1000", "comma-separated `counts` of activity watchers; each scenario runs once per count")
	fs.IntVar(&cfg.rate, "rate", 50, "paced actions (and floor events) a second")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of each phase of a run")
	fs.IntVar(&cfg.workers, "workers", 8, "concurrent requests in the saturation scenario")
	fs.IntVar(&cfg.runs, "runs", 3, "runs of each scenario; the paced scenario alternates which system goes first")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON instead of a table")
	fs.StringVar(&cfg.out, "out", "", "also write the results as JSON to `file`")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (server and clients) to `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stopProfile, err := cpuprofile.Start(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if cfg.watchers, err = benchresult.Sizes("-watchers", *watchers); err != nil {
		return err
	}
	if cfg.rate < 1 || cfg.workers < 1 || cfg.runs < 1 || cfg.duration <= 0 {
		return fmt.Errorf("-rate, -workers, -runs and -duration must be positive")
	}
	cfg.logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	dir, err := os.MkdirTemp("", "standin-benche2e")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sctx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(sctx, server.Config{
			DataDir: dir, Addr: "127.0.0.1:0", Demo: server.DemoOn,
			// Every watcher is a socket of the owner's one session.
			MaxSocketsPerSession: slices.Max(cfg.watchers), MaxSocketsPerUser: slices.Max(cfg.watchers),
			PasswordCost: password.Params{Time: 1, Memory: 1024, Threads: 1},
			Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
			OnListen:     func(a net.Addr) { addr <- a },
		})
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-done:
		return fmt.Errorf("server: %w", err)
	}
	defer func() {
		stopServer()
		<-done
	}()

	sys := system{wsURL: "ws" + strings.TrimPrefix(base, "http") + "/ws"}
	if sys.owner, err = signIn(base, "owner@example.org"); err != nil {
		return err
	}
	if sys.admin, err = signIn(base, "admin@example.org"); err != nil {
		return err
	}
	if err := sys.admin.impersonate("ben@example.org"); err != nil {
		return err
	}
	event, err := realEvent(sys)
	if err != nil {
		return err
	}
	cfg.logf("standin end to end: %s; activity events of %d bytes", base, len(event))

	rep := report{Program: "benche2e", Machine: hostload.Machine(), LoadBefore: hostload.Loadavg()}
	for _, n := range cfg.watchers {
		r, err := paced(ctx, cfg, sys, n, event)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results, r)
		if r, err = saturation(ctx, cfg, sys, n); err != nil {
			return err
		}
		rep.Results = append(rep.Results, r)
	}
	rep.LoadAfter = hostload.Loadavg()

	if cfg.out != "" {
		if err := benchresult.Write(cfg.out, rep); err != nil {
			return err
		}
	}
	if cfg.json {
		return benchresult.Encode(stdout, rep)
	}
	fmt.Fprintf(stdout, "standin end to end, %s\nload average before: %s   after: %s\n", rep.Machine, rep.LoadBefore, rep.LoadAfter)
	for _, r := range rep.Results {
		switch r.Scenario {
		case "paced":
			printPaced(stdout, r)
		case "saturation":
			printSaturation(stdout, r)
		}
	}
	return nil
}

// paced runs the paced scenario with n watchers on the server and on the
// floor, cfg.runs times each, alternating which goes first.
func paced(ctx context.Context, cfg config, sys system, n int, event []byte) (result, error) {
	r := result{
		Scenario: "paced",
		Params:   map[string]int{"watchers": n, "rate": cfg.rate},
		Description: fmt.Sprintf("%d watchers; standin: %d actions/s for %v, one request at a time; floor: fanoutfloor, %d events/s of %d B for %v",
			n, cfg.rate, cfg.duration, cfg.rate, len(event), cfg.duration),
		LoadBefore: hostload.Loadavg(),
		Runs:       map[string][]sample{},
	}
	for i := range cfg.runs {
		order := []string{systemStandin, systemFloor}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, name := range order {
			err := measure(ctx, cfg, &r, name, i, func() (sample, error) {
				if name == systemStandin {
					return pacedStandin(sys, n, cfg.rate, cfg.duration)
				}
				return pacedFloor(n, cfg.rate, cfg.duration, event)
			})
			if err != nil {
				return r, err
			}
		}
	}
	r.LoadAfter = hostload.Loadavg()
	t := target{
		LastP99MS:      benchresult.Median(benchresult.Values(r.Runs[systemStandin], "last_p99_ms")),
		HTTPP99MS:      benchresult.Median(benchresult.Values(r.Runs[systemStandin], "http_p99_ms")),
		FloorLastP99MS: benchresult.Median(benchresult.Values(r.Runs[systemFloor], "floor_last_p99_ms")),
		SlackMS:        targetSlack,
	}
	t.LimitMS = t.HTTPP99MS + t.FloorLastP99MS + t.SlackMS
	t.Pass = t.LastP99MS <= t.LimitMS
	if t.FloorLastP99MS > 0 {
		t.LastVsFloor = t.LastP99MS / t.FloorLastP99MS
	}
	r.Target = &t
	return r, nil
}

// saturation runs the saturation scenario with n watchers cfg.runs times.
func saturation(ctx context.Context, cfg config, sys system, n int) (result, error) {
	r := result{
		Scenario:    "saturation",
		Params:      map[string]int{"watchers": n, "workers": cfg.workers},
		Description: fmt.Sprintf("%d watchers; %d requests at a time for %v", n, cfg.workers, cfg.duration),
		LoadBefore:  hostload.Loadavg(),
		Runs:        map[string][]sample{},
	}
	for i := range cfg.runs {
		if err := measure(ctx, cfg, &r, systemStandin, i, func() (sample, error) {
			return saturate(sys, n, cfg.workers, cfg.duration)
		}); err != nil {
			return r, err
		}
	}
	r.LoadAfter = hostload.Loadavg()
	return r, nil
}

// measure runs one run of r on system name, adds the cores other
// processes took meanwhile, and appends it to r.
func measure(ctx context.Context, cfg config, r *result, name string, i int, fn func() (sample, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	var s sample
	others, err := hostload.OthersCPU(func() error {
		var err error
		s, err = fn()
		return err
	})
	if err != nil {
		return fmt.Errorf("%s, %d watchers, run %d on the %s: %w", r.Scenario, r.Params["watchers"], i+1, name, err)
	}
	s["others_cores"] = others
	r.Runs[name] = append(r.Runs[name], s)
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(s)) {
		fmt.Fprintf(&b, " %s=%.4g", k, s[k])
	}
	cfg.logf("%s watchers %d run %d/%d %-7s %5.1fs%s", r.Scenario, r.Params["watchers"], i+1, cfg.runs, name,
		time.Since(start).Seconds(), b.String())
	hostload.Settle()
	return nil
}

// stage is one row of the paced table: the metrics prefix+"p50_ms",
// prefix+"p99_ms" and prefix+"max_ms" of system.
type stage struct {
	label, system, prefix string
}

var stages = []stage{
	{"action → HTTP answer (authorize + persist + handler)", systemStandin, "http_"},
	{"action → event at the first watcher", systemStandin, "first_"},
	{"action → event at the last watcher", systemStandin, "last_"},
	{"fan-out spread (last − first watcher)", systemStandin, "spread_"},
	{"floor: publish → first watcher", systemFloor, "floor_first_"},
	{"floor: publish → last watcher", systemFloor, "floor_last_"},
	{"floor: fan-out spread", systemFloor, "floor_spread_"},
}

func printPaced(w io.Writer, r result) {
	fmt.Fprintf(w, "\n== paced: %s\n   load average before: %s   after: %s\n", r.Description, r.LoadBefore, r.LoadAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage, median of runs\tp50 ms\tp99 ms\tmax ms\tp99 runs\t")
	for _, st := range stages {
		runs := r.Runs[st.system]
		p99 := benchresult.Values(runs, st.prefix+"p99_ms")
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%s\t\n", st.label, benchresult.Median(benchresult.Values(runs, st.prefix+"p50_ms")),
			benchresult.Median(p99), benchresult.Median(benchresult.Values(runs, st.prefix+"max_ms")), benchresult.Join("%.2f", p99))
	}
	for _, m := range []struct{ label, system, key, format string }{
		{"events lost or out of order, standin", systemStandin, "lost", "%.0f"},
		{"events lost or out of order, floor", systemFloor, "lost", "%.0f"},
		{"CPU taken by other processes, cores, standin", systemStandin, "others_cores", "%.2f"},
		{"CPU taken by other processes, cores, floor", systemFloor, "others_cores", "%.2f"},
	} {
		v := benchresult.Values(r.Runs[m.system], m.key)
		fmt.Fprintf(tw, "%s\t"+m.format+"\t\t\t%s\t\n", m.label, benchresult.Median(v), benchresult.Join(m.format, v))
	}
	tw.Flush()
	if t, ok := r.Target.(*target); ok {
		verdict := "FAIL"
		if t.Pass {
			verdict = "pass"
		}
		fmt.Fprintf(w, "   last watcher p99 / floor publish→last p99: %.2fx\n", t.LastVsFloor)
		fmt.Fprintf(w, "   target: last watcher p99 %.2f ms <= HTTP answer p99 %.2f + floor p99 %.2f + %.0f = %.2f ms: %s\n",
			t.LastP99MS, t.HTTPP99MS, t.FloorLastP99MS, t.SlackMS, t.LimitMS, verdict)
	}
}

func printSaturation(w io.Writer, r result) {
	fmt.Fprintf(w, "\n== saturation: %s\n   load average before: %s   after: %s\n", r.Description, r.LoadBefore, r.LoadAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tmedian\truns\t")
	runs := r.Runs[systemStandin]
	for _, m := range []struct{ label, key, format string }{
		{"actions/s", "actions_per_s", "%.0f"},
		{"deliveries/s", "deliveries_per_s", "%.0f"},
		{"last delivery after the start, s", "last_delivery_s", "%.2f"},
		{"events lost or out of order", "lost", "%.0f"},
		{"CPU taken by other processes, cores", "others_cores", "%.2f"},
	} {
		v := benchresult.Values(runs, m.key)
		fmt.Fprintf(tw, "%s\t"+m.format+"\t%s\t\n", m.label, benchresult.Median(v), benchresult.Join(m.format, v))
	}
	tw.Flush()
}
