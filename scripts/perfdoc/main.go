// Command perfdoc writes docs/PERFORMANCE.md from the results scripts/bench
// keeps in docs/bench: the Go benchmarks' text output (go.txt), the JSON
// of scripts/benchrealtime, scripts/benche2e, scripts/benchaudit,
// scripts/benchcluster and scripts/benchsinks, and
// each stage's facts (date, commit, load average). The page's prose is the
// template performance.md.tmpl; every figure in it comes from the results.
//
// Usage: go run ./scripts/perfdoc [-in docs/bench] [-out docs/PERFORMANCE.md]
package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"standin/scripts/internal/benchresult"
)

//go:embed performance.md.tmpl
var pageTemplate string

func main() {
	in := flag.String("in", "docs/bench", "directory of the results")
	out := flag.String("out", "docs/PERFORMANCE.md", "page to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "perfdoc:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	r, err := load(in)
	if err != nil {
		return err
	}
	page, err := render(r)
	if err != nil {
		return err
	}
	return os.WriteFile(out, page, 0o644)
}

// result is one scenario of a benchmark program.
type result = benchresult.Result

// results is everything a run of scripts/bench left.
type results struct {
	programs map[string]*benchresult.Report  // by stage: realtime, e2e, audit, cluster, sinks
	facts    map[string]map[string]string    // by stage
	bench    map[string]map[string][]float64 // Go benchmark name → unit → values
}

// stageFiles are the JSON files of the program stages.
var stageFiles = map[string]string{"realtime": "realtime.json", "e2e": "e2e.json", "audit": "audit.json", "cluster": "cluster.json",
	"sinks": "sinks.json"}

// allStages are the stages of scripts/bench, in order.
var allStages = []string{"go", "realtime", "e2e", "audit", "cluster", "sinks"}

func load(dir string) (*results, error) {
	r := &results{programs: map[string]*benchresult.Report{}, facts: map[string]map[string]string{}, bench: map[string]map[string][]float64{}}
	for stage, name := range stageFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var p benchresult.Report
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		r.programs[stage] = &p
	}
	for _, stage := range allStages {
		b, err := os.ReadFile(filepath.Join(dir, stage+".facts"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.facts[stage] = parseFacts(b)
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.txt"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	r.bench = parseBench(b)
	return r, nil
}

// parseFacts reads "key: value" lines.
func parseFacts(b []byte) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// benchLine matches a Go benchmark result: its name with the GOMAXPROCS
// suffix, the iterations, then value-unit pairs.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBench reads the Go benchmark text format: for every benchmark
// name, the values of each unit over the -count runs.
func parseBench(b []byte) map[string]map[string][]float64 {
	out := map[string]map[string][]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if out[m[1]] == nil {
				out[m[1]] = map[string][]float64{}
			}
			out[m[1]][f[i+1]] = append(out[m[1]][f[i+1]], v)
		}
	}
	return out
}

// median is the median of v; NaN, shown as missing, when v is empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return benchresult.Median(v)
}

// find returns the result of scenario in stage whose params include
// key=value (any, when key is ""), or nil.
func (r *results) find(stage, scenario, key string, value int) *result {
	p := r.programs[stage]
	if p == nil {
		return nil
	}
	for i := range p.Results {
		res := &p.Results[i]
		if res.Scenario != scenario {
			continue
		}
		if v, ok := res.Params[key]; key == "" || ok && v == value {
			return res
		}
	}
	return nil
}

func (r *results) funcs() template.FuncMap {
	return template.FuncMap{
		"res": r.find,
		// params lists the values of key among the stage's results of
		// scenario, in increasing order.
		"params": func(stage, scenario, key string) []int {
			var out []int
			if p := r.programs[stage]; p != nil {
				for _, res := range p.Results {
					if v, ok := res.Params[key]; ok && res.Scenario == scenario && !slices.Contains(out, v) {
						out = append(out, v)
					}
				}
			}
			slices.Sort(out)
			return out
		},
		"med": func(res *result, system, key string) float64 {
			if res == nil {
				return math.NaN()
			}
			var v []float64
			for _, run := range res.Runs[system] {
				if x, ok := run[key]; ok {
					v = append(v, x)
				}
			}
			return median(v)
		},
		// medratio is the median over the runs of key a over key b.
		"medratio": func(res *result, system, a, b string) float64 {
			if res == nil {
				return math.NaN()
			}
			var v []float64
			for _, run := range res.Runs[system] {
				if x, y := run[a], run[b]; y != 0 {
					v = append(v, x/y)
				}
			}
			return median(v)
		},
		// spread is the largest less the smallest of key over the runs:
		// how much the machine moved a figure between runs.
		"spread": func(res *result, system, key string) float64 {
			if res == nil {
				return math.NaN()
			}
			var v []float64
			for _, run := range res.Runs[system] {
				if x, ok := run[key]; ok {
					v = append(v, x)
				}
			}
			if len(v) == 0 {
				return math.NaN()
			}
			return slices.Max(v) - slices.Min(v)
		},
		"runs": func(res *result, system, key, format string) string {
			if res == nil {
				return "—"
			}
			var parts []string
			for _, run := range res.Runs[system] {
				if x, ok := run[key]; ok {
					parts = append(parts, num(format, x))
				}
			}
			return strings.Join(parts, ", ")
		},
		"load": func(res *result) string {
			if res == nil {
				return "—"
			}
			return res.LoadBefore + " → " + res.LoadAfter
		},
		"bench": func(name, unit string) float64 { return median(r.bench[name][unit]) },
		"benchruns": func(name, unit, format string) string {
			var parts []string
			for _, x := range r.bench[name][unit] {
				parts = append(parts, num(format, x))
			}
			return strings.Join(parts, ", ")
		},
		// fact is a fact of a stage's run; stage "any" takes the first
		// stage that has it.
		"fact": func(stage, key string) string {
			stages := []string{stage}
			if stage == "any" {
				stages = allStages
			}
			for _, s := range stages {
				if v := r.facts[s][key]; v != "" {
					return v
				}
			}
			return "—"
		},
		"ran": func(stage string) bool { return r.facts[stage] != nil },
		"num": func(format string, x any) string { return num(format, toFloat(x)) },
		"div": func(a, b any) float64 {
			if toFloat(b) == 0 {
				return math.NaN()
			}
			return toFloat(a) / toFloat(b)
		},
		"add":  func(a, b any) float64 { return toFloat(a) + toFloat(b) },
		"sub":  func(a, b any) float64 { return toFloat(a) - toFloat(b) },
		"abs":  func(a any) float64 { return math.Abs(toFloat(a)) },
		"mul":  func(a, b any) float64 { return toFloat(a) * toFloat(b) },
		"max2": func(a, b any) float64 { return math.Max(toFloat(a), toFloat(b)) },
		"toF":  toFloat,
		"ok":   func(x any) bool { return !math.IsNaN(toFloat(x)) },
		"le":   func(a, b any) bool { x, y := toFloat(a), toFloat(b); return !math.IsNaN(x) && !math.IsNaN(y) && x <= y },
		"ge":   func(a, b any) bool { x, y := toFloat(a), toFloat(b); return !math.IsNaN(x) && !math.IsNaN(y) && x >= y },
		"eq0":  func(a any) bool { return toFloat(a) == 0 },
		"lt0":  func(a any) bool { return toFloat(a) < 0 },
		"met":  verdict,
		"vle":  func(a, b any) string { return compare(a, b, func(x, y float64) bool { return x <= y }) },
		"vge":  func(a, b any) string { return compare(a, b, func(x, y float64) bool { return x >= y }) },
		"ints": func(v ...int) []int { return v },
		// upto is 1, 2, … n.
		"upto": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i + 1
			}
			return out
		},
	}
}

// toFloat converts the numbers a template passes to float64; NaN for
// anything else.
func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return math.NaN()
}

// compare is the verdict on a target "a op b"; "not measured" when
// either is missing.
func compare(a, b any, op func(x, y float64) bool) string {
	x, y := toFloat(a), toFloat(b)
	if math.IsNaN(x) || math.IsNaN(y) {
		return "not measured"
	}
	return verdict(op(x, y))
}

// verdict is how a target is reported.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// num formats x with format and groups the integer part's digits in
// thousands; "—" for a missing value.
func num(format string, x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	s := fmt.Sprintf(format, x)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if len(intPart) > 3 && strings.Trim(intPart, "0123456789") == "" {
		var b strings.Builder
		for i, c := range intPart {
			if i > 0 && (len(intPart)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		intPart = b.String()
	}
	if hasFrac {
		return sign + intPart + "." + frac
	}
	return sign + intPart
}

func render(r *results) ([]byte, error) {
	t, err := template.New("page").Funcs(r.funcs()).Option("missingkey=error").Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, nil); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	// Blank lines the template's actions leave collapse to one.
	page := regexp.MustCompile(`\n{3,}`).ReplaceAll(buf.Bytes(), []byte("\n\n"))
	return page, nil
}
