// Command benchcluster measures Standin as a cluster: several console
// processes ("nodes") on one database, each delivering to its live
// sockets every event of the audit log whoever committed it. It builds
// the standin binary and runs `standin database` and the nodes as real
// processes, as scripts/cluster does, and talks to each node directly
// (no balancer), so that it knows which node did what. Scenarios:
//
//   - idle: -latency-nodes nodes, no traffic, for -idle: the CPU each
//     node process and the database process take following the log and
//     the signals (utime+stime from /proc/<pid>/stat), in % of one core,
//     and the database's commands a second.
//   - latency: on the same cluster, an admin impersonating Ben takes
//     actions on node A (GET -action, by default /api/v1/profile, a view
//     of Ben's data, which while impersonating is audited by its outcome:
//     one action.allowed event each) at each rate of -rates for -latency-duration, each
//     sent at its time whether or not the ones before were answered. Two
//     admins watch the activity feed, one on A and one on node B. Each
//     action's User-Agent carries a number, which its event records; for
//     each action the time from sending it to its answer and to its event
//     at each watcher, and from its commit (the time the log stamps on the
//     event) to each watcher. Target: p99 from commit ≤ 150 ms at both.
//   - throughput: for each count of -throughput-nodes, a fresh cluster;
//     on each node -clients clients in a closed loop take actions as an
//     admin, the owner or support impersonating a user (one session per node) for -warmup, then
//     for -throughput-duration measured: actions a second, each node's
//     share, errors (5xx or no answer), the CPU of every process and the
//     database's commands, and what limited it.
//
// Each measurement runs -runs times (the throughput scenario on a fresh
// cluster each time); the tables show medians, the JSON every run.
// The table goes to stdout; -json prints the results as JSON instead, and
// -out FILE writes the JSON to FILE as well (benchresult.Report; the
// runs are under "standin"). Durations are in milliseconds (_ms keys),
// CPU in cores (_cores) or % of one core (_pct).
//
// Usage: scripts/bench-cluster [-scenarios idle,latency,throughput] [-rates 20,60,100] [-out FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"standin/scripts/internal/benchproc"
	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/hostload"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchcluster:", err)
		os.Exit(1)
	}
}

// sample holds one run's measurements by metric key.
type sample = benchresult.Sample

// result is one scenario's runs with one set of parameters.
type result = benchresult.Result

// system is the key of the runs in a result.
const system = "standin"

// config holds the flags.
type config struct {
	scenarios          []string
	runs               int
	action             string
	bin                string
	latencyNodes       int
	rates              []int
	latencyDuration    time.Duration
	throughputNodes    []int
	clients            int
	warmup             time.Duration
	throughputDuration time.Duration
	idle               time.Duration
	settle             time.Duration
	json               bool
	out                string
	keep               bool
	logf               func(format string, args ...any)
}

// parseFlags reads args into a config.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("benchcluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarios := fs.String("scenarios", "idle,latency,throughput", "comma-separated scenarios to run: idle, latency, throughput")
	fs.StringVar(&cfg.action, "action", "/api/v1/profile", "the `path` each action GETs while impersonating: one audited event")
	fs.IntVar(&cfg.runs, "runs", 1, "runs of each measurement; tables show medians")
	fs.StringVar(&cfg.bin, "bin", "", "a standin binary to run instead of building one")
	fs.IntVar(&cfg.latencyNodes, "latency-nodes", 3, "nodes of the idle and latency scenarios' cluster (at least 2)")
	rates := fs.String("rates", "20,60,100", "comma-separated paced `rates` of the latency scenario, actions a second")
	fs.DurationVar(&cfg.latencyDuration, "latency-duration", 20*time.Second, "length of each paced rate")
	nodes := fs.String("throughput-nodes", "1,2,3", "comma-separated `counts` of nodes of the throughput scenario, a fresh cluster each")
	fs.IntVar(&cfg.clients, "clients", 8, "closed-loop clients per node in the throughput scenario")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured closed loop before each throughput measurement")
	fs.DurationVar(&cfg.throughputDuration, "throughput-duration", 15*time.Second, "length of each throughput measurement")
	fs.DurationVar(&cfg.idle, "idle", 30*time.Second, "length of the idle measurement")
	fs.DurationVar(&cfg.settle, "settle", 5*time.Second, "wait after the cluster is ready before the idle measurement")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON instead of a table")
	fs.StringVar(&cfg.out, "out", "", "also write the results as JSON to `file`")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the clusters' directories (logs, databases)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.rates, err = benchresult.Sizes("-rates", *rates); err != nil {
		return cfg, err
	}
	if cfg.throughputNodes, err = benchresult.Sizes("-throughput-nodes", *nodes); err != nil {
		return cfg, err
	}
	for s := range strings.SplitSeq(*scenarios, ",") {
		if !slices.Contains([]string{"idle", "latency", "throughput"}, s) {
			return cfg, fmt.Errorf("-scenarios: unknown scenario %q", s)
		}
		cfg.scenarios = append(cfg.scenarios, s)
	}
	if cfg.latencyNodes < 2 {
		return cfg, errNoNodes
	}
	if cfg.runs < 1 || cfg.clients < 1 || cfg.latencyDuration <= 0 || cfg.throughputDuration <= 0 || cfg.idle <= 0 || cfg.warmup < 0 || cfg.settle < 0 {
		return cfg, fmt.Errorf("-runs, -clients and the durations must be positive")
	}
	return cfg, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg.logf = func(format string, args ...any) {
		fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "standin-benchcluster")
	if err != nil {
		return err
	}
	if cfg.keep {
		cfg.logf("clusters in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if cfg.bin == "" {
		cfg.logf("building standin")
		if cfg.bin, err = benchproc.Build(ctx, dir); err != nil {
			return err
		}
	}
	rep := benchresult.Report{Program: "benchcluster", Machine: hostload.Machine(), LoadBefore: hostload.Loadavg()}
	if rep.Results, err = scenarios(ctx, cfg, dir); err != nil {
		return err
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
	printReport(stdout, rep)
	return nil
}

// scenarios runs the scenarios cfg names: idle and latency on one
// cluster, then throughput on a fresh cluster for each count of nodes and
// each run.
func scenarios(ctx context.Context, cfg config, dir string) ([]result, error) {
	var out []result
	if slices.Contains(cfg.scenarios, "idle") || slices.Contains(cfg.scenarios, "latency") {
		rs, err := withCluster(ctx, cfg, filepath.Join(dir, "paced"), cfg.latencyNodes, func(cl *cluster) ([]result, error) {
			return idleAndPaced(ctx, cfg, cl)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	if !slices.Contains(cfg.scenarios, "throughput") {
		return out, nil
	}
	for _, n := range cfg.throughputNodes {
		r := newResult("throughput", map[string]int{"nodes": n, "clients": cfg.clients},
			fmt.Sprintf("%d node(s) on one database; %d closed-loop clients per node (GET %s) for %v after %v of warm-up",
				n, cfg.clients, cfg.action, cfg.throughputDuration, cfg.warmup))
		for i := range cfg.runs {
			sub := filepath.Join(dir, "throughput"+strconv.Itoa(n)+"-"+strconv.Itoa(i+1))
			if _, err := withCluster(ctx, cfg, sub, n, func(cl *cluster) ([]result, error) {
				return nil, throughput(ctx, cfg, cl, &r)
			}); err != nil {
				return nil, err
			}
		}
		r.Target = map[string]string{"limit": limit(medianSample(r.Runs[system]), float64(runtime.NumCPU()))}
		out = append(out, r)
	}
	return out, nil
}

// withCluster starts a cluster of n nodes in dir, runs fn on it and stops
// it; a node that exited on its own fails the run.
func withCluster(ctx context.Context, cfg config, dir string, n int, fn func(*cluster) ([]result, error)) ([]result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg.logf("starting the database and %d nodes in %s", n, dir)
	cl, err := startCluster(cfg.bin, dir, n)
	if err != nil {
		return nil, err
	}
	rs, err := fn(cl)
	if serr := cl.stop(); err == nil {
		err = serr
	}
	return rs, err
}
