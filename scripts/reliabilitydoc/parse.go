package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// event is one line of `go test -json` output (see `go doc cmd/test2json`).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events name the package here
	Test       string
	Elapsed    float64
	Output     string
}

// testRun is what one test (or subtest) did in a run.
type testRun struct {
	Package, Name string
	// Status is "pass", "fail" or "skip", or "" when the test started but
	// never reported an end (its test binary died under it).
	Status string
	// Elapsed is how long it ran, as go test reports it: without the time
	// a parallel test waited for its turn, and for a test whose subtests
	// are parallel, without them (see run.took).
	Elapsed time.Duration
	output  strings.Builder
}

// Lines returns the test's output, line by line.
func (t *testRun) Lines() []string {
	s := strings.TrimSuffix(t.output.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// result is a figure a test logged with t.Logf("result: key=value").
type result struct{ Key, Value string }

// Results returns the figures the test logged, in order.
func (t *testRun) Results() []result {
	var rs []result
	for _, line := range t.Lines() {
		_, after, ok := strings.Cut(line, "result: ")
		if !ok {
			continue
		}
		if k, v, ok := strings.Cut(after, "="); ok {
			rs = append(rs, result{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return rs
}

// run is one `go test -json` stream.
type run struct {
	tests    map[string]*testRun // by key(package, name)
	order    []*testRun          // in the order they started
	packages map[string]string   // package: "pass" or "fail" (including a failed build)
	pkgOut   map[string]*strings.Builder
}

func key(pkg, name string) string { return pkg + " " + name }

// parse reads a `go test -json` stream. Lines that are not JSON (a go
// command's own complaints) are kept as output of no package.
func parse(r io.Reader) (*run, error) {
	rn := &run{tests: map[string]*testRun{}, packages: map[string]string{}, pkgOut: map[string]*strings.Builder{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			rn.outputOf("").WriteString(string(line) + "\n")
			continue
		}
		if e.Package == "" {
			e.Package = e.ImportPath
		}
		if e.Test == "" {
			switch e.Action {
			case "output", "build-output":
				rn.outputOf(e.Package).WriteString(e.Output)
			case "pass", "fail", "build-fail":
				if rn.packages[e.Package] != "fail" {
					rn.packages[e.Package] = strings.TrimPrefix(e.Action, "build-")
				}
			}
			continue
		}
		t := rn.tests[key(e.Package, e.Test)]
		if t == nil {
			t = &testRun{Package: e.Package, Name: e.Test}
			rn.tests[key(e.Package, e.Test)] = t
			rn.order = append(rn.order, t)
		}
		switch e.Action {
		case "output":
			t.output.WriteString(e.Output)
		case "pass", "fail", "skip":
			t.Status = e.Action
			t.Elapsed = time.Duration(e.Elapsed * float64(time.Second))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return rn, nil
}

func (rn *run) outputOf(pkg string) *strings.Builder {
	b := rn.pkgOut[pkg]
	if b == nil {
		b = &strings.Builder{}
		rn.pkgOut[pkg] = b
	}
	return b
}

// status is a test's outcome: "pass", "fail", "skip" or "not run". A test
// that started but never ended in a failed package failed with it.
func (rn *run) status(pkg, name string) string {
	t := rn.tests[key(pkg, name)]
	switch {
	case t == nil:
		return "not run"
	case t.Status != "":
		return t.Status
	case rn.packages[pkg] == "fail":
		return "fail"
	default:
		return "not run"
	}
}

// subtests returns the direct subtests of name, in the order they started.
func (rn *run) subtests(pkg, name string) []*testRun {
	var subs []*testRun
	for _, t := range rn.order {
		if rest, ok := strings.CutPrefix(t.Name, name+"/"); ok && t.Package == pkg && !strings.Contains(rest, "/") {
			subs = append(subs, t)
		}
	}
	return subs
}

// took is how long a test ran with its subtests. Subtests that run in
// sequence are part of their parent's time; parallel ones run after the
// parent's function returned and are not, so theirs are added up instead.
func (rn *run) took(t *testRun) time.Duration {
	var subs time.Duration
	for _, s := range rn.subtests(t.Package, t.Name) {
		subs += rn.took(s)
	}
	return max(t.Elapsed, subs)
}

// fuzzStats is what the fuzzing engine reported for one target.
type fuzzStats struct {
	Elapsed        time.Duration // time since the start, from the last report
	Execs          int64         // inputs run
	NewInteresting int64         // inputs that found new coverage in this run
	Corpus         int64         // inputs in the corpus at the end
	// Before fuzzing, the engine runs the corpus it starts from (the
	// seeds and what earlier runs kept in the cache): Baseline inputs, of
	// which BaselineDone ran, taking BaselineTime.
	Baseline, BaselineDone int64
	BaselineTime           time.Duration
	Workers                int64  // 0 if fuzzing never began
	FailingInput           string // the file a failing input was written to, if any
}

var (
	fuzzProgress = regexp.MustCompile(`^fuzz: elapsed: (\S+), execs: (\d+) \(\d+/sec\), new interesting: (\d+) \(total: (\d+)\)`)
	fuzzBaseline = regexp.MustCompile(`^fuzz: elapsed: (\S+), gathering baseline coverage: (\d+)/(\d+) completed(?:, now fuzzing with (\d+) workers)?`)
	fuzzFailing  = regexp.MustCompile(`Failing input written to (\S+)`)
)

// fuzzStatsOf reads the fuzzing engine's reports from the output of the
// fuzz target's test. The last progress line holds the totals.
func fuzzStatsOf(lines []string) (fuzzStats, error) {
	var s fuzzStats
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if m := fuzzProgress.FindStringSubmatch(line); m != nil {
			d, err := time.ParseDuration(m[1])
			if err != nil {
				return s, fmt.Errorf("%q: %v", line, err)
			}
			s.Elapsed = d
			s.Execs, _ = strconv.ParseInt(m[2], 10, 64)
			s.NewInteresting, _ = strconv.ParseInt(m[3], 10, 64)
			s.Corpus, _ = strconv.ParseInt(m[4], 10, 64)
		} else if m := fuzzBaseline.FindStringSubmatch(line); m != nil {
			d, err := time.ParseDuration(m[1])
			if err != nil {
				return s, fmt.Errorf("%q: %v", line, err)
			}
			s.Elapsed, s.BaselineTime = d, d
			s.BaselineDone, _ = strconv.ParseInt(m[2], 10, 64)
			s.Baseline, _ = strconv.ParseInt(m[3], 10, 64)
			s.Workers, _ = strconv.ParseInt(m[4], 10, 64)
		} else if m := fuzzFailing.FindStringSubmatch(line); m != nil {
			s.FailingInput = m[1]
		}
	}
	return s, nil
}
