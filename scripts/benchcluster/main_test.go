package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"standin/scripts/internal/benchresult"
)

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		line     string
		seq, tag int64
		ok       bool
	}{
		{"Tagged", `{"type":"event","topic":"activity","seq":42,"event":{"id":"e1","seq":42,"type":"action.allowed","ip":"127.0.0.1","user_agent":"benchcluster/1234","hash":"ab"}}`, 42, 1234, true},
		{"Untagged", `{"type":"event","topic":"activity","seq":7,"event":{"seq":7,"user_agent":"Mozilla/5.0"}}`, 7, -1, true},
		{"Subscribed", `{"type":"subscribed","topic":"activity","seq":7}`, 0, 0, false},
		{"NoSeq", `{"type":"event","topic":"activity"}`, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, tag, ok := parseEvent([]byte(tc.line))
			if ok != tc.ok || ok && (seq != tc.seq || tag != tc.tag) {
				t.Fatalf("parseEvent = %d, %d, %v; want %d, %d, %v", seq, tag, ok, tc.seq, tc.tag, tc.ok)
			}
		})
	}
}

func TestEventTime(t *testing.T) {
	line := []byte(`{"type":"event","topic":"activity","seq":42,"event":{"id":"e1","seq":42,"time":"2026-12-03T09:53:38.125Z","type":"action.allowed"}}`)
	if got, want := eventTime(line), time.Date(2026, 12, 3, 9, 53, 38, 125e6, time.UTC); !got.Equal(want) {
		t.Fatalf("eventTime = %v, want %v", got, want)
	}
	if got := eventTime([]byte(`{"type":"event","seq":1,"event":{"seq":1}}`)); !got.IsZero() {
		t.Fatalf("eventTime without a time = %v, want zero", got)
	}
}

func TestQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := sample{}
	quantiles(s, "x_", ds)
	if s["x_p50_ms"] != 50 || s["x_p99_ms"] != 99 || s["x_max_ms"] != 100 {
		t.Fatalf("quantiles = %v", s)
	}
	empty := sample{}
	quantiles(empty, "x_", nil)
	if len(empty) != 0 {
		t.Fatalf("quantiles of nothing = %v, want nothing", empty)
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    sample
		want string
	}{
		{"MachineDatabase", sample{"busy_cores": 1.98, "db_cores": 1.1, "nodes_cores": 0.6}, "the machine's CPU, most of it to the database ("},
		{"MachineNodes", sample{"busy_cores": 1.98, "db_cores": 0.5, "nodes_cores": 1.2}, "the machine's CPU, most of it to the nodes together ("},
		{"Database", sample{"busy_cores": 1.2, "db_cores": 0.95, "nodes_cores": 0.2}, "the database process, near one core ("},
		{"NotCPU", sample{"busy_cores": 0.5, "db_cores": 0.3, "nodes_cores": 0.1}, "not CPU ("},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := limit(tc.s, 2); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("limit = %q, want it to start with %q", got, tc.want)
			}
		})
	}
}

func TestMedianSample(t *testing.T) {
	got := medianSample([]sample{{"a": 3, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 9}})
	if got["a"] != 2 || got["b"] != 2 || len(got) != 2 {
		t.Fatalf("medianSample = %v", got)
	}
}

func TestParseFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-latency-nodes", "1"},
		{"-scenarios", "idle,storm"},
		{"-rates", "20,x"},
		{"-throughput-nodes", "0"},
		{"-clients", "0"},
		{"-runs", "0"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted it", args)
		}
	}
	cfg, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.latencyNodes != 3 || len(cfg.rates) != 3 || len(cfg.throughputNodes) != 3 || cfg.clients != 8 || len(cfg.scenarios) != 3 || cfg.runs != 1 {
		t.Fatalf("defaults = %+v", cfg)
	}
}

// TestRun runs every scenario briefly on real processes: two nodes for
// idle and latency, one for throughput. Every action's event reaches both
// watchers, in order, later than it was sent; every answered action is in
// the log.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds standin and starts two clusters")
	}
	var out, log bytes.Buffer
	err := run([]string{"-json", "-latency-nodes", "2", "-rates", "10", "-latency-duration", "2s", "-throughput-nodes", "1",
		"-throughput-duration", "2s", "-warmup", "500ms", "-idle", "1s", "-settle", "0s"}, &out, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	var rep benchresult.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]sample{}
	for _, r := range rep.Results {
		if len(r.Runs[system]) != 1 {
			t.Fatalf("%s: %d runs", r.Scenario, len(r.Runs[system]))
		}
		got[r.Scenario] = r.Runs[system][0]
	}
	if s := got["idle"]; s == nil || s["db_pct"] <= 0 || s["node1_pct"] <= 0 || s["node2_pct"] <= 0 {
		t.Errorf("idle = %v, want the CPU of both nodes and the database", s)
	}
	if s := got["latency"]; s == nil || s["actions"] != 20 || s["errors"] != 0 || s["lost"] != 0 || s["remote_p50_ms"] <= 0 || s["local_p50_ms"] <= 0 {
		t.Errorf("latency = %v, want 20 actions delivered to both watchers", s)
	}
	if s := got["throughput"]; s == nil || s["actions"] < 1 || s["errors"] != 0 || s["logged"] < s["actions"] || s["node1_share_pct"] != 100 || s["write_cmds_per_s"] <= 0 {
		t.Errorf("throughput = %v, want answered actions, each logged", s)
	}
}
