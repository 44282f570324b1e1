package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A parallel test that logged figures and passed, one with a failing
// subtest, and one still running when its test binary died.
const sampleTests = `{"Action":"start","Package":"m/a"}
{"Action":"run","Package":"m/a","Test":"TestLoad"}
{"Action":"output","Package":"m/a","Test":"TestLoad","Output":"=== RUN   TestLoad\n"}
{"Action":"output","Package":"m/a","Test":"TestLoad","Output":"=== PAUSE TestLoad\n"}
{"Action":"run","Package":"m/a","Test":"TestFaults"}
{"Action":"run","Package":"m/a","Test":"TestFaults/Lost"}
{"Action":"output","Package":"m/a","Test":"TestFaults/Lost","Output":"    f_test.go:9: lost twice\n"}
{"Action":"output","Package":"m/a","Test":"TestFaults/Lost","Output":"--- FAIL: TestFaults/Lost (0.10s)\n"}
{"Action":"fail","Package":"m/a","Test":"TestFaults/Lost","Elapsed":0.1}
{"Action":"run","Package":"m/a","Test":"TestFaults/Kept"}
{"Action":"pass","Package":"m/a","Test":"TestFaults/Kept","Elapsed":0.05}
{"Action":"run","Package":"m/a","Test":"TestFaults/Kept/Deeper"}
{"Action":"pass","Package":"m/a","Test":"TestFaults/Kept/Deeper","Elapsed":0}
{"Action":"fail","Package":"m/a","Test":"TestFaults","Elapsed":0.15}
{"Action":"cont","Package":"m/a","Test":"TestLoad"}
{"Action":"output","Package":"m/a","Test":"TestLoad","Output":"    crash_test.go:310: result: bookings acknowledged=23\n"}
{"Action":"output","Package":"m/a","Test":"TestLoad","Output":"    crash_test.go:311: result: first 503 after = 1.25s\n"}
{"Action":"output","Package":"m/a","Test":"TestLoad","Output":"    crash_test.go:312: not a result\n"}
{"Action":"pass","Package":"m/a","Test":"TestLoad","Elapsed":41.25}
{"Action":"fail","Package":"m/a","Elapsed":42}
{"Action":"start","Package":"m/b"}
{"Action":"run","Package":"m/b","Test":"TestHangs"}
{"Action":"output","Package":"m/b","Output":"panic: test timed out after 20m0s\n"}
{"Action":"fail","Package":"m/b","Elapsed":1200}
go: some complaint of the go command
`

// The stream of a fuzz target that ran its time without a failure.
const sampleFuzz = `{"Action":"run","Package":"m/b","Test":"FuzzFrame"}
{"Action":"output","Package":"m/b","Test":"FuzzFrame","Output":"fuzz: elapsed: 0s, gathering baseline coverage: 0/189 completed\n"}
{"Action":"output","Package":"m/b","Test":"FuzzFrame","Output":"fuzz: elapsed: 1s, gathering baseline coverage: 189/189 completed, now fuzzing with 2 workers\n"}
{"Action":"output","Package":"m/b","Test":"FuzzFrame","Output":"fuzz: elapsed: 3s, execs: 1873 (624/sec), new interesting: 2 (total: 191)\n"}
{"Action":"output","Package":"m/b","Test":"FuzzFrame","Output":"fuzz: elapsed: 1m0s, execs: 50370 (1055/sec), new interesting: 4 (total: 193)\n"}
{"Action":"output","Package":"m/b","Test":"FuzzFrame","Output":"--- PASS: FuzzFrame (60.05s)\n"}
{"Action":"pass","Package":"m/b","Test":"FuzzFrame","Elapsed":60.05}
{"Action":"pass","Package":"m/b","Elapsed":60.07}
`

func TestParse(t *testing.T) {
	rn, err := parse(strings.NewReader(sampleTests))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ pkg, name, want string }{
		{"m/a", "TestLoad", "pass"},
		{"m/a", "TestFaults", "fail"},
		{"m/a", "TestFaults/Lost", "fail"},
		{"m/a", "TestFaults/Kept", "pass"},
		{"m/b", "TestHangs", "fail"}, // its package failed under it
		{"m/a", "TestNever", "not run"},
		{"m/b", "TestLoad", "not run"},
	} {
		if got := rn.status(tt.pkg, tt.name); got != tt.want {
			t.Errorf("status(%s, %s) = %q, want %q", tt.pkg, tt.name, got, tt.want)
		}
	}
	load := rn.tests[key("m/a", "TestLoad")]
	if load.Elapsed != 41250*time.Millisecond {
		t.Errorf("TestLoad took %v", load.Elapsed)
	}
	want := []result{{"bookings acknowledged", "23"}, {"first 503 after", "1.25s"}}
	if got := load.Results(); !slices.Equal(got, want) {
		t.Errorf("TestLoad results %q, want %q", got, want)
	}
	var subs []string
	for _, s := range rn.subtests("m/a", "TestFaults") {
		subs = append(subs, s.Name)
	}
	if !slices.Equal(subs, []string{"TestFaults/Lost", "TestFaults/Kept"}) {
		t.Errorf("subtests %q", subs)
	}
	if got := rn.took(rn.tests[key("m/a", "TestFaults")]); got != 150*time.Millisecond {
		t.Errorf("TestFaults took %v", got)
	}
	if rn.packages["m/a"] != "fail" || rn.packages["m/b"] != "fail" {
		t.Errorf("packages %v", rn.packages)
	}
	if got := rn.pkgOut[""].String(); got != "go: some complaint of the go command\n" {
		t.Errorf("output of no package %q", got)
	}
	if got := did(rn, "m/a", "TestFaults"); got != "2 subtests, not all pass: `Lost` FAIL, `Kept`" {
		t.Errorf("did(TestFaults) = %q", got)
	}
	fs := failures(rn, "m")
	if len(fs) != 2 || fs[0].What != "`TestFaults/Lost` in `a`" || !slices.Equal(fs[0].Lines, []string{"    f_test.go:9: lost twice"}) ||
		fs[1].What != "package `b`" || !slices.Equal(fs[1].Lines, []string{"panic: test timed out after 20m0s"}) {
		t.Errorf("failures %+v", fs)
	}
}

func TestFuzzStats(t *testing.T) {
	rn, err := parse(strings.NewReader(sampleFuzz))
	if err != nil {
		t.Fatal(err)
	}
	s, err := fuzzStatsOf(rn.tests[key("m/b", "FuzzFrame")].Lines())
	if err != nil {
		t.Fatal(err)
	}
	want := fuzzStats{Elapsed: time.Minute, Execs: 50370, NewInteresting: 4, Corpus: 193,
		Baseline: 189, BaselineDone: 189, BaselineTime: time.Second, Workers: 2}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	s, _ = fuzzStatsOf([]string{"    Failing input written to testdata/fuzz/FuzzFrame/0123abcd"})
	if s.FailingInput != "testdata/fuzz/FuzzFrame/0123abcd" {
		t.Errorf("failing input %q", s.FailingInput)
	}
	// Out of time before the baseline was done.
	s, _ = fuzzStatsOf([]string{
		"fuzz: elapsed: 0s, gathering baseline coverage: 0/239 completed",
		"fuzz: elapsed: 5s, gathering baseline coverage: 93/239 completed",
	})
	if want := (fuzzStats{Elapsed: 5 * time.Second, Baseline: 239, BaselineDone: 93, BaselineTime: 5 * time.Second}); s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
}

// The page renders from a run's files, and every test and target it names
// shows up with its result.
func TestPage(t *testing.T) {
	refs, err := references()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(refs, ref{"test", "server", "TestKillUnderLoad"}) || !slices.Contains(refs, ref{"fuzz", "realtime", "FuzzClientFrame"}) {
		t.Fatalf("references %v", refs)
	}
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("run.txt", "date=2026-01-02 03:04 UTC\nstarted=100\nfinished=425\ncommit=abc1234\ngo=go1.26 linux/amd64\ncpus=2\nfuzztime=60s\n")
	write("tests.jsonl", `{"Action":"run","Package":"m/server","Test":"TestKillUnderLoad"}
{"Action":"output","Package":"m/server","Test":"TestKillUnderLoad","Output":"    crash_test.go:1: result: bookings acknowledged before the kill=23\n"}
{"Action":"pass","Package":"m/server","Test":"TestKillUnderLoad","Elapsed":41.2}
`)
	write("fuzz-FuzzClientFrame.jsonl", strings.NewReplacer(`"m/b"`, `"m/realtime"`, "FuzzFrame", "FuzzClientFrame").Replace(sampleFuzz))
	p, err := load(dir, "m")
	if err != nil {
		t.Fatal(err)
	}
	if p.OK {
		t.Error("a run with tests not run is OK")
	}
	var b strings.Builder
	if err := render(&b, p); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"| `TestKillUnderLoad` | `server` | pass | 41.2 s | bookings acknowledged before the kill: 23 |",
		"| `TestInsertFaults` | `server/audit` | not run |",
		"| `FuzzClientFrame` | pass | 1 min | 189 inputs in 1.0 s | 50,370 | 853 | 4 | 193 | 2 |",
		"| `FuzzAPI` | not run |",
		"taking 5 min 25 s",
		"did not run",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}

func TestNum(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 35618: "35,618", 1234567: "1,234,567", -4000: "-4,000"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}
