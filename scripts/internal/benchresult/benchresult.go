// Package benchresult is the JSON the benchmark programs write (their
// -out files, kept in docs/bench) and scripts/perfdoc reads, with the
// arithmetic on runs they share.
package benchresult

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sample is one run's metrics by key.
type Sample map[string]float64

// Result is one scenario with one set of parameters: its runs on each
// system ("hub", "standin", "floor"), in the order they ran.
type Result struct {
	Scenario    string              `json:"scenario"`
	Params      map[string]int      `json:"params"`
	Description string              `json:"description"`
	LoadBefore  string              `json:"load_before"`
	LoadAfter   string              `json:"load_after"`
	Runs        map[string][]Sample `json:"runs"`
	// Target is a scenario's own check on its medians, when it has one.
	Target any `json:"target,omitempty"`
}

// Report is a program's whole run.
type Report struct {
	Program    string   `json:"program"`
	Machine    string   `json:"machine"`
	LoadBefore string   `json:"load_before"`
	LoadAfter  string   `json:"load_after"`
	Results    []Result `json:"results"`
}

// Values returns key's value in each run; 0 where a run lacks it.
func Values(runs []Sample, key string) []float64 {
	out := make([]float64, len(runs))
	for i, s := range runs {
		out[i] = s[key]
	}
	return out
}

// Median returns the median of v, 0 when v is empty.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Join formats each of v with format, separated by spaces.
func Join(format string, v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, " ")
}

// Sizes parses the comma-separated positive integers of a flag, the sizes
// a scenario runs at; flag names it in the error.
func Sizes(flag, list string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive number", flag, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// Encode writes v to w as indented JSON.
func Encode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Write writes v as indented JSON to the file path.
func Write(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	if err := Encode(f, v); err != nil {
		f.Close()
		return fmt.Errorf("writing the results to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the results to %s: %w", path, err)
	}
	return nil
}

// Quantiles sets prefix+"p50_ms", prefix+"p99_ms" and prefix+"max_ms" of
// s from ds, by nearest rank, in milliseconds; -1 when ds is empty. Every
// benchmark program computes its latencies this way, so that their
// figures compare.
func (s Sample) Quantiles(prefix string, ds []time.Duration) {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	ms := func(q float64) float64 {
		if len(sorted) == 0 {
			return -1
		}
		return float64(sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]) / 1e6
	}
	s[prefix+"p50_ms"], s[prefix+"p99_ms"], s[prefix+"max_ms"] = ms(0.50), ms(0.99), ms(1)
}
