// Command benchsinks measures the audit log's delivery to outside sinks.
// It builds the standin binary and runs one console as a real process, as
// `standin` runs on one machine: the embedded database in a fresh data
// directory, the demo facility, STANDIN_SINK_ALLOW=127.0.0.1. The admin
// adds and removes webhook sinks through /api/v1/sinks; the receivers run
// in this process on loopback, check every batch's signature with the
// sink's secret and acknowledge at once. An action is the support agent,
// impersonating Cleo, viewing her profile (GET /api/v1/profile), which
// is audited by its outcome: one action.allowed event, committed before
// the answer leaves. Scenarios:
//
//   - throughput: one sink with history, which first receives the log so
//     far; then -events actions as fast as the console answers -workers
//     requests at a time. Events a second delivered, from the arrival of
//     the first record of the actions' events to that of the last seq;
//     beside it the events a second appended; each event's lag from its
//     time in the log (the append) to its arrival, p50/p99/max; what
//     arrived twice or not at all.
//   - backlog: the throughput sink removed, a new sink with history added
//     to the log the throughput scenario left: how fast one sink catches
//     up, events a second from its first record's arrival to the head's.
//   - overhead: the action's latency, from sending it to its answer, at
//     -rate actions a second for -duration, each sent at its time whether
//     or not the ones before were answered: without sinks, then with
//     three, two healthy and one whose receiver takes every batch and
//     never answers, so that the console's send waits for its timeout
//     (10 s) and backs off. -runs runs of each, alternating which goes
//     first; the added p50 and p99 are on the medians of the runs.
//
// Every measurement records the CPU the console, this process (clients
// and receivers) and other processes took meanwhile (*_cores), and every
// scenario the load average before and after. The table goes to stdout;
// -json prints the results as JSON instead, and -out FILE writes the JSON
// to FILE as well (benchresult.Report; runs under "standin", or "none"
// and "sinks" for the overhead's phases). Durations are in milliseconds
// (_ms keys) or seconds (_s).
//
// Usage: go run ./scripts/benchsinks [-events 50000] [-workers 8] [-rate 50] [-duration 20s] [-runs 3] [-out FILE]
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
	"strings"
	"text/tabwriter"
	"time"

	"standin/scripts/internal/benchproc"
	"standin/scripts/internal/benchresult"
	"standin/scripts/internal/hostload"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchsinks:", err)
		os.Exit(1)
	}
}

// sample holds one run's measurements by metric key.
type sample = benchresult.Sample

// result is one scenario's runs.
type result = benchresult.Result

// system is the key of the runs of the throughput and backlog scenarios.
const system = "standin"

// config holds the flags.
type config struct {
	events   int
	workers  int
	rate     int
	duration time.Duration
	runs     int
	bin      string
	keep     bool
	json     bool
	out      string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("benchsinks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.events, "events", 50_000, "audited actions of the throughput scenario, one event each")
	fs.IntVar(&cfg.workers, "workers", 8, "requests at a time in the throughput scenario")
	fs.IntVar(&cfg.rate, "rate", 50, "paced actions a second in the overhead scenario")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "length of each phase of the overhead scenario")
	fs.IntVar(&cfg.runs, "runs", 3, "runs of each phase of the overhead scenario, alternating which goes first")
	fs.StringVar(&cfg.bin, "bin", "", "a standin binary to run instead of building one")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the console's directory (log, database)")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON instead of a table")
	fs.StringVar(&cfg.out, "out", "", "also write the results as JSON to `file`")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.events < 1 || cfg.workers < 1 || cfg.rate < 1 || cfg.runs < 1 || cfg.duration < time.Second {
		return cfg, fmt.Errorf("-events, -workers, -rate and -runs must be positive, -duration at least 1s")
	}
	return cfg, nil
}

// bench is the running console with its people.
type bench struct {
	cfg    config
	con    *console
	people *people
	logf   func(format string, args ...any)
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, logf: func(format string, args ...any) {
		fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "standin-benchsinks")
	if err != nil {
		return err
	}
	if cfg.keep {
		b.logf("console in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if cfg.bin == "" {
		b.logf("building standin")
		if cfg.bin, err = benchproc.Build(ctx, dir); err != nil {
			return err
		}
	}
	rep := benchresult.Report{Program: "benchsinks", Machine: hostload.Machine(), LoadBefore: hostload.Loadavg()}
	if b.con, err = startConsole(cfg.bin, dir); err != nil {
		return err
	}
	b.logf("standin at %s, log %s", b.con.URL, b.con.Log)
	rep.Results, err = b.scenarios(ctx)
	if serr := b.con.Stop(); err == nil {
		err = serr
	}
	if err != nil {
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

// scenarios signs the people in and runs the scenarios in turn.
func (b *bench) scenarios(ctx context.Context) ([]result, error) {
	var err error
	if b.people, err = signInPeople(b.con.URL); err != nil {
		return nil, err
	}
	var out []result
	for _, fn := range []func(context.Context, *bench) (result, error){throughput, backlog, overhead} {
		r, err := fn(ctx, b)
		if err == nil {
			err = b.con.Alive()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Scenario, err)
		}
		out = append(out, r)
		hostload.Settle()
	}
	return out, nil
}

// newResult starts a result, with the load average now.
func newResult(scenario string, params map[string]int, description string) result {
	return result{Scenario: scenario, Params: params, Description: description, LoadBefore: hostload.Loadavg(),
		Runs: map[string][]sample{}}
}

// logSample logs a measurement's metrics.
func (b *bench) logSample(what string, s sample) {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(s)) {
		fmt.Fprintf(&sb, " %s=%.4g", k, s[k])
	}
	b.logf("%s:%s", what, sb.String())
}

func printReport(w io.Writer, rep benchresult.Report) {
	fmt.Fprintf(w, "standin audit sinks, %s\nload average before: %s   after: %s\n", rep.Machine, rep.LoadBefore, rep.LoadAfter)
	for _, r := range rep.Results {
		fmt.Fprintf(w, "\n== %s: %s\n   load average before: %s   after: %s\n", r.Scenario, r.Description, r.LoadBefore, r.LoadAfter)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		switch r.Scenario {
		case "throughput", "backlog":
			printRuns(tw, r.Runs[system], []metric{
				{"events", "events", "%.0f"},
				{"appended/s", "appended_per_s", "%.0f"},
				{"delivered/s, first record → last seq", "delivered_per_s", "%.0f"},
				{"first record → last seq, s", "deliver_s", "%.1f"},
				{"sink added → first record, s", "first_record_s", "%.1f"},
				{"lag, append → receiver, p50 ms", "lag_p50_ms", "%.0f"},
				{"lag p99 ms", "lag_p99_ms", "%.0f"},
				{"lag max ms", "lag_max_ms", "%.0f"},
				{"last action → its event at the receiver, s", "drain_s", "%.2f"},
				{"request p50 ms", "http_p50_ms", "%.1f"},
				{"request p99 ms", "http_p99_ms", "%.1f"},
				{"events per batch", "events_per_batch", "%.0f"},
				{"signed checkpoints received", "checkpoints", "%.0f"},
				{"missing", "missing", "%.0f"},
				{"duplicates", "duplicates", "%.0f"},
				{"batches refused (bad signature)", "forged", "%.0f"},
				{"records neither an event nor a checkpoint", "bad_records", "%.0f"},
				{"CPU, cores: console", "console_cores", "%.2f"},
				{"CPU, cores: this process", "bench_cores", "%.2f"},
				{"CPU, cores: other processes", "others_cores", "%.2f"},
			})
		case "overhead":
			fmt.Fprintln(tw, "phase, median of runs\tp50 ms\tp99 ms\tmax ms\tanswered/s\terrors\tp99 runs\t")
			for _, phase := range []string{phaseNone, phaseSinks} {
				runs := r.Runs[phase]
				med := func(k string) float64 { return benchresult.Median(benchresult.Values(runs, k)) }
				fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.1f\t%.0f\t%s\t\n", phase, med("http_p50_ms"), med("http_p99_ms"), med("http_max_ms"),
					med("answered_per_s"), med("errors"), benchresult.Join("%.2f", benchresult.Values(runs, "http_p99_ms")))
			}
			runs := r.Runs[phaseSinks]
			for _, m := range []metric{
				{"healthy sinks' lag p50 ms, with one dead", "healthy_lag_p50_ms", "%.0f"},
				{"healthy sinks' lag p99 ms", "healthy_lag_p99_ms", "%.0f"},
				{"batches sent to the dead sink", "dead_batches", "%.0f"},
			} {
				v := benchresult.Values(runs, m.key)
				fmt.Fprintf(tw, "%s\t"+m.format+"\t\t\t\t\t%s\t\n", m.label, benchresult.Median(v), benchresult.Join(m.format, v))
			}
			tw.Flush()
			if t, ok := r.Target.(*overheadTarget); ok {
				fmt.Fprintf(w, "   added by the sinks: p50 %+.2f ms, p99 %+.2f ms (p99 %.2f → %.2f ms)\n", t.AddedP50MS, t.AddedP99MS, t.NoneP99MS, t.SinksP99MS)
			}
		}
		tw.Flush()
	}
}

// metric is one row of a table: a label, a sample key and its format.
type metric struct{ label, key, format string }

// printRuns writes the rows of ms, those the runs have: the median and
// every run.
func printRuns(tw *tabwriter.Writer, runs []sample, ms []metric) {
	fmt.Fprintln(tw, "metric\tmedian\truns\t")
	for _, m := range ms {
		if len(runs) == 0 {
			continue
		}
		if _, ok := runs[0][m.key]; !ok {
			continue
		}
		v := benchresult.Values(runs, m.key)
		fmt.Fprintf(tw, "%s\t"+m.format+"\t%s\t\n", m.label, benchresult.Median(v), benchresult.Join(m.format, v))
	}
}
