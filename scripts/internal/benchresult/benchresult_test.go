package benchresult

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		v    []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(tc.v); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestReportRoundTrip(t *testing.T) {
	in := Report{Program: "p", Results: []Result{{Scenario: "s", Params: map[string]int{"subs": 10},
		Runs: map[string][]Sample{"hub": {{"x": 1}, {"x": 3}}}}}}
	var buf bytes.Buffer
	if err := Encode(&buf, in); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte(`"target"`)) {
		t.Fatalf("an unset target is written: %s", buf.Bytes())
	}
	var out Report
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if got := Values(out.Results[0].Runs["hub"], "x"); Join("%.0f", got) != "1 3" || out.Results[0].Params["subs"] != 10 {
		t.Fatalf("round trip: %+v", out)
	}
}
