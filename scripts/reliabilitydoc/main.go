// Command reliabilitydoc writes docs/RELIABILITY.md from the results of
// scripts/reliability: the `go test -json` streams of the fault tests
// (tests.jsonl) and of each fuzz target (fuzz-<target>.jsonl), and the
// facts about the run (run.txt), all in one directory. The page's prose is
// the template reliability.md.tmpl; every figure on it comes from the run.
//
// With -list it prints the tests and fuzz targets the page names, one a
// line ("test ./server/ TestKillUnderLoad", "fuzz ./server/ FuzzAPI"), for
// scripts/reliability to run.
//
// It exits with status 1 after writing the page when a test or fuzz target
// failed or did not run.
package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed reliability.md.tmpl
var pageTemplate string

func main() {
	in := flag.String("in", "docs/reliability", "directory holding the run's results")
	out := flag.String("out", "docs/RELIABILITY.md", "page to write")
	list := flag.Bool("list", false, "print the tests and fuzz targets the page names, and exit")
	flag.Parse()
	module, err := modulePath("go.mod")
	if err != nil {
		fail(err)
	}
	if *list {
		refs, err := references()
		if err != nil {
			fail(err)
		}
		for _, r := range refs {
			// go test -run cannot name a subtest alone in a pattern shared
			// with other tests: its test runs whole.
			name, _, _ := strings.Cut(r.Name, "/")
			fmt.Printf("%s ./%s/ %s\n", r.Kind, r.Pkg, name)
		}
		return
	}
	p, err := load(*in, module)
	if err != nil {
		fail(err)
	}
	var buf bytes.Buffer
	if err := render(&buf, p); err != nil {
		fail(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %s\n", *out, p.Summary)
	if !p.OK {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "reliabilitydoc:", err)
	os.Exit(2)
}

// modulePath reads the module path from go.mod.
func modulePath(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("run from the repository's root: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`), nil
		}
	}
	return "", errors.New("go.mod names no module")
}

// ref is a test or fuzz target the page names.
type ref struct{ Kind, Pkg, Name string }

// page is what the template is executed with.
type page struct {
	Meta     meta
	Tests    []testView // the tests the page names, in its order
	Fuzz     []fuzzView
	Failures []failure
	Summary  string
	OK       bool
}

// meta is run.txt: facts about the run that scripts/reliability recorded.
type meta struct {
	Date, Commit, Go, CPUs, CPUModel string
	Dirty                            bool
	LoadBefore, LoadAfter            string
	FuzzTime                         string
	Duration                         string
	TestCommand                      string
}

type testView struct {
	Pkg, Name    string
	Status, Time string
	Did          string // the figures it logged and its subtests
}

type fuzzView struct {
	Pkg, Name string
	Status    string
	Stats     fuzzStats
	Time      string // from start to end
	Baseline  string // how much of the starting corpus ran, in how long
	Rate      string // inputs per second once fuzzing
}

type failure struct {
	What  string
	Lines []string
	More  int
}

// funcs are the template's functions. test and fuzz name a test and a
// fuzz target in the prose; record, when set, collects them.
func funcs(record func(ref)) template.FuncMap {
	name := func(kind string) func(pkg, name string) string {
		return func(pkg, name string) string {
			if record != nil {
				record(ref{kind, pkg, name})
			}
			return "`" + name + "`"
		}
	}
	return template.FuncMap{
		"test": name("test"),
		"fuzz": name("fuzz"),
		"num":  num,
	}
}

// references executes the template once to learn what it names.
func references() ([]ref, error) {
	var refs []ref
	t, err := template.New("page").Funcs(funcs(func(r ref) {
		if !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
	})).Parse(pageTemplate)
	if err != nil {
		return nil, err
	}
	if err := t.Execute(io.Discard, &page{}); err != nil {
		return nil, err
	}
	return refs, nil
}

func render(w io.Writer, p *page) error {
	t, err := template.New("page").Funcs(funcs(nil)).Parse(pageTemplate)
	if err != nil {
		return err
	}
	return t.Execute(w, p)
}

// load reads the run's results from dir and builds the page.
func load(dir, module string) (*page, error) {
	refs, err := references()
	if err != nil {
		return nil, err
	}
	p := &page{OK: true}
	if p.Meta, err = readMeta(filepath.Join(dir, "run.txt")); err != nil {
		return nil, err
	}
	tests, err := parseFile(filepath.Join(dir, "tests.jsonl"))
	if err != nil {
		return nil, err
	}
	full := func(pkg string) string { return module + "/" + pkg }

	var failedTests, missing, failedFuzz, unfuzzed []string
	notRun := 0 // fuzz targets
	for _, r := range refs {
		if r.Kind != "test" {
			continue
		}
		v := testView{Pkg: r.Pkg, Name: r.Name, Status: tests.status(full(r.Pkg), r.Name)}
		if t := tests.tests[key(full(r.Pkg), r.Name)]; t != nil && t.Status != "" {
			v.Time = duration(tests.took(t))
		}
		v.Did = did(tests, full(r.Pkg), r.Name)
		switch v.Status {
		case "fail":
			failedTests = append(failedTests, "`"+r.Name+"`")
		case "not run", "skip":
			missing = append(missing, "`"+r.Name+"`")
		}
		p.Tests = append(p.Tests, v)
	}
	p.Failures = failures(tests, module)

	for _, r := range refs {
		if r.Kind != "fuzz" {
			continue
		}
		v := fuzzView{Pkg: r.Pkg, Name: r.Name}
		fz, err := parseFile(filepath.Join(dir, "fuzz-"+r.Name+".jsonl"))
		if err != nil {
			return nil, err
		}
		v.Status = fz.status(full(r.Pkg), r.Name)
		if t := fz.tests[key(full(r.Pkg), r.Name)]; t != nil {
			if v.Stats, err = fuzzStatsOf(t.Lines()); err != nil {
				return nil, fmt.Errorf("fuzz-%s.jsonl: %w", r.Name, err)
			}
		}
		if in := v.Stats.FailingInput; in != "" && !filepath.IsAbs(in) {
			v.Stats.FailingInput = filepath.ToSlash(filepath.Join(r.Pkg, in)) // go test writes it in the package
		}
		st := v.Stats
		if st.Elapsed > 0 {
			v.Time = duration(st.Elapsed)
		}
		if st.Baseline > 0 {
			v.Baseline = fmt.Sprintf("%s inputs in %s", num(st.Baseline), duration(st.BaselineTime))
			if st.BaselineDone < st.Baseline {
				v.Baseline = fmt.Sprintf("only %s of %s inputs in %s", num(st.BaselineDone), num(st.Baseline), duration(st.BaselineTime))
			}
		}
		if fuzzing := st.Elapsed - st.BaselineTime; fuzzing > 0 && st.Workers > 0 {
			v.Rate = num(int64(float64(st.Execs) / fuzzing.Seconds()))
		}
		if v.Status == "pass" && st.Workers == 0 {
			unfuzzed = append(unfuzzed, "`"+r.Name+"`")
		}
		p.Failures = append(p.Failures, failures(fz, module)...)
		switch v.Status {
		case "fail":
			failedFuzz = append(failedFuzz, "`"+r.Name+"`")
		case "not run":
			if p.Meta.FuzzTime != "0" {
				unfuzzed = append(unfuzzed, "`"+r.Name+"`")
				notRun++
			}
		}
		p.Fuzz = append(p.Fuzz, v)
	}

	var s []string
	if len(failedTests) == 0 && len(missing) == 0 {
		s = append(s, fmt.Sprintf("all %d tests passed", len(p.Tests)))
	} else {
		if len(failedTests) > 0 {
			s = append(s, fmt.Sprintf("**%d of %d tests failed** (%s)", len(failedTests), len(p.Tests), strings.Join(failedTests, ", ")))
		}
		if len(missing) > 0 {
			s = append(s, fmt.Sprintf("**%d of %d tests did not run** (%s)", len(missing), len(p.Tests), strings.Join(missing, ", ")))
		}
	}
	switch {
	case len(failedFuzz) > 0:
		s = append(s, fmt.Sprintf("**fuzzing found a failure** in %s", strings.Join(failedFuzz, ", ")))
	case p.Meta.FuzzTime == "0":
		s = append(s, "fuzzing was skipped")
	case len(unfuzzed) > 0:
		s = append(s, fmt.Sprintf("fuzzing found no failure, but **%s never began fuzzing** (see below)", strings.Join(unfuzzed, ", ")))
	default:
		s = append(s, "fuzzing found no failure")
	}
	p.Summary = strings.Join(s, "; ")
	p.Summary = strings.ToUpper(p.Summary[:1]) + p.Summary[1:] + "."
	// A target that ran its time gathering its baseline did not fail, but a
	// target that did not run at all did not do its part.
	p.OK = len(failedTests)+len(missing)+len(failedFuzz)+notRun == 0
	for i := range p.Tests {
		if p.Tests[i].Status == "fail" {
			p.Tests[i].Status = "**FAIL**"
		}
	}
	for i := range p.Fuzz {
		if p.Fuzz[i].Status == "fail" {
			p.Fuzz[i].Status = "**FAIL**"
		}
	}
	return p, nil
}

// parseFile parses one `go test -json` file; a missing file is a run in
// which nothing ran.
func parseFile(name string) (*run, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return parse(strings.NewReader(""))
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rn, err := parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rn, nil
}

// did describes what a test did: the figures it logged and how its
// subtests ended.
func did(rn *run, pkg, name string) string {
	if rn == nil {
		return ""
	}
	var parts []string
	if t := rn.tests[key(pkg, name)]; t != nil {
		for _, r := range t.Results() {
			parts = append(parts, r.Key+": "+r.Value)
		}
	}
	if subs := rn.subtests(pkg, name); len(subs) > 0 {
		var names []string
		allPass := true
		for _, s := range subs {
			n := "`" + strings.TrimPrefix(s.Name, name+"/") + "`"
			if st := rn.status(s.Package, s.Name); st != "pass" {
				allPass = false
				n += " " + strings.ToUpper(st)
			}
			names = append(names, n)
		}
		verdict := "all pass"
		if !allPass {
			verdict = "not all pass"
		}
		parts = append(parts, fmt.Sprintf("%d subtests, %s: %s", len(subs), verdict, strings.Join(names, ", ")))
	}
	return strings.ReplaceAll(strings.Join(parts, "; "), "|", `\|`) // inside a table row
}

// failures collects the output of every failed test that said something
// of its own, and of packages that failed outside any test.
func failures(rn *run, module string) []failure {
	if rn == nil {
		return nil
	}
	const maxLines = 40
	var fs []failure
	add := func(what string, lines []string) {
		var kept []string
		for _, l := range lines {
			if strings.HasPrefix(l, "=== ") || strings.HasPrefix(strings.TrimSpace(l), "--- ") ||
				strings.HasPrefix(l, "fuzz: elapsed: ") || strings.TrimSpace(l) == "" {
				continue
			}
			kept = append(kept, l)
		}
		if len(kept) == 0 {
			return
		}
		f := failure{What: what, Lines: kept}
		if len(kept) > maxLines {
			f.Lines, f.More = kept[:maxLines], len(kept)-maxLines
		}
		fs = append(fs, f)
	}
	for _, t := range rn.order {
		if rn.status(t.Package, t.Name) == "fail" {
			add(fmt.Sprintf("`%s` in `%s`", t.Name, strings.TrimPrefix(t.Package, module+"/")), t.Lines())
		}
	}
	// What a failed package said outside its tests: a panic, a timeout, a
	// build failure; not its closing verdict.
	var pkgs []string
	for pkg, st := range rn.packages {
		if st == "fail" {
			pkgs = append(pkgs, pkg)
		}
	}
	slices.Sort(pkgs)
	for _, pkg := range pkgs {
		b := rn.pkgOut[pkg]
		if b == nil {
			continue
		}
		var lines []string
		for l := range strings.Lines(b.String()) {
			l = strings.TrimSuffix(l, "\n")
			if l == "PASS" || l == "FAIL" || strings.HasPrefix(l, "FAIL\t") || strings.HasPrefix(l, "ok  \t") || strings.HasPrefix(l, "exit status ") {
				continue
			}
			lines = append(lines, l)
		}
		add(fmt.Sprintf("package `%s`", strings.TrimPrefix(pkg, module+"/")), lines)
	}
	return fs
}

// readMeta reads run.txt, key=value lines.
func readMeta(name string) (meta, error) {
	f, err := os.Open(name)
	if err != nil {
		return meta{}, err
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return meta{}, err
	}
	m := meta{
		Date: kv["date"], Commit: kv["commit"], Dirty: kv["dirty"] == "true",
		Go: kv["go"], CPUs: kv["cpus"], CPUModel: kv["cpu_model"],
		LoadBefore: kv["loadavg_before"], LoadAfter: kv["loadavg_after"],
		FuzzTime: kv["fuzztime"], TestCommand: kv["test_command"],
	}
	start, err1 := strconv.ParseInt(kv["started"], 10, 64)
	end, err2 := strconv.ParseInt(kv["finished"], 10, 64)
	if err1 == nil && err2 == nil {
		m.Duration = duration(time.Duration(end-start) * time.Second)
	}
	return m, nil
}

// duration formats d for the page: "0.4 s", "12.3 s", "1 min", "4 min 05 s".
func duration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	d = d.Round(time.Second)
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
}

// num formats n with thousands separators: 35618 is "35,618".
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
