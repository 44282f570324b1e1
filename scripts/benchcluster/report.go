package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"standin/scripts/internal/benchresult"
)

// printReport writes the results as tables.
func printReport(w io.Writer, rep benchresult.Report) {
	fmt.Fprintf(w, "standin cluster, %s\nload average before: %s   after: %s\n", rep.Machine, rep.LoadBefore, rep.LoadAfter)
	for _, r := range rep.Results {
		fmt.Fprintf(w, "\n== %s: %s; medians of %d runs\n   load average before: %s   after: %s\n",
			r.Scenario, r.Description, len(r.Runs[system]), r.LoadBefore, r.LoadAfter)
		if len(r.Runs[system]) == 0 {
			continue
		}
		s := medianSample(r.Runs[system])
		switch r.Scenario {
		case "idle":
			printIdle(w, r, s)
		case "latency":
			printLatency(w, r, s)
		case "throughput":
			printThroughput(w, r, s)
		}
	}
}

func printIdle(w io.Writer, r result, s sample) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\t% of one core\t")
	for i := range r.Params["nodes"] {
		n := "node" + strconv.Itoa(i+1)
		fmt.Fprintf(tw, "%s\t%.2f\t\n", n, s[n+"_pct"])
	}
	fmt.Fprintf(tw, "database\t%.2f\t\n", s["db_pct"])
	tw.Flush()
	fmt.Fprintf(w, "   database commands/s: %.1f (writes %.1f)\n", s["commands_per_s"], s["write_cmds_per_s"])
}

func printLatency(w io.Writer, r result, s sample) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tp50 ms\tp99 ms\tmax ms\t")
	for _, st := range []struct{ label, prefix string }{
		{"event committed → at the watcher on A (the writer's node)", "local_after_commit_"},
		{"event committed → at the watcher on B (another node)", "remote_after_commit_"},
		{"action sent → HTTP answer from node A", "http_"},
		{"action sent → event at the watcher on A", "local_"},
		{"action sent → event at the watcher on B", "remote_"},
		{"HTTP answer → event at the watcher on B", "remote_after_answer_"},
	} {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t\n", st.label, s[st.prefix+"p50_ms"], s[st.prefix+"p99_ms"], s[st.prefix+"max_ms"])
	}
	tw.Flush()
	fmt.Fprintf(w, "   answered %.1f actions/s of %d sent a second\n", s["answered_per_s"], r.Params["rate"])
	fmt.Fprintf(w, "   errors: 5xx %.0f, 4xx %.0f, no answer %.0f\n", s["errors_5xx"], s["errors_4xx"], s["unanswered"])
	fmt.Fprintf(w, "   actions %.0f, errors %.0f, events lost or out of order %.0f, cluster CPU %.2f cores, other processes %.2f cores\n",
		s["actions"], s["errors"], s["lost"], s["cluster_cores"], s["others_cores"])
	if t, ok := r.Target.(*latencyTarget); ok {
		verdict := "FAIL"
		if t.Pass {
			verdict = "pass"
		}
		fmt.Fprintf(w, "   target: p99 from commit to the watcher on B %.1f ms and on A %.1f ms, each <= %.0f ms: %s\n",
			t.RemoteP99MS, t.LocalP99MS, t.LimitMS, verdict)
		fmt.Fprintln(w, "   (committed: the time the log stamps on the event as it accepts it, before it is stored)")
	}
}

func printThroughput(w io.Writer, r result, s sample) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tactions/s\tshare %\tCPU cores\t")
	for i := range r.Params["nodes"] {
		n := "node" + strconv.Itoa(i+1)
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.2f\t\n", n, s[n+"_actions_per_s"], s[n+"_share_pct"], s[n+"_cores"])
	}
	fmt.Fprintf(tw, "database\t\t\t%.2f\t\n", s["db_cores"])
	fmt.Fprintf(tw, "clients (this process)\t\t\t%.2f\t\n", s["bench_cores"])
	fmt.Fprintf(tw, "other processes\t\t\t%.2f\t\n", s["others_cores"])
	fmt.Fprintf(tw, "all\t%.0f\t\t%.2f\t\n", s["actions_per_s"], s["busy_cores"])
	tw.Flush()
	fmt.Fprintf(w, "   request p50 %.1f ms, p99 %.1f ms; errors (5xx or no answer) %.0f, refused (4xx) %.0f; events logged %.0f for %.0f actions\n",
		s["http_p50_ms"], s["http_p99_ms"], s["errors"], s["refused"], s["logged"], s["actions"])
	fmt.Fprintf(w, "   database: %.0f commands/s, %.0f writes/s (%.1f per action)\n", s["commands_per_s"], s["write_cmds_per_s"], s["write_cmds_per_action"])
	if t, ok := r.Target.(map[string]string); ok {
		fmt.Fprintf(w, "   limited by %s\n", t["limit"])
	}
}
