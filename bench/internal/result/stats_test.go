package result

import (
	"math"
	"strings"
	"testing"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"empty", nil, 50, math.NaN()},
		{"one", []float64{3}, 90, 3},
		{"odd median", []float64{5, 1, 3}, 50, 3},
		{"even median", []float64{4, 1, 3, 2}, 50, 2.5},
		{"p0", []float64{4, 1, 3}, 0, 1},
		{"p100", []float64{4, 1, 3}, 100, 4},
		{"p90 interpolated", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9.1},
		{"p99 of two", []float64{0, 1}, 99, 0.99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Percentile(tt.xs, tt.p)
			if math.IsNaN(tt.want) {
				if !math.IsNaN(got) {
					t.Fatalf("got %v, want NaN", got)
				}
				return
			}
			if math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPercentileKeepsInput(t *testing.T) {
	xs := []float64{3, 1, 2}
	Percentile(xs, 50)
	if xs[0] != 3 || xs[1] != 1 || xs[2] != 2 {
		t.Fatalf("input reordered: %v", xs)
	}
}

func TestCompute(t *testing.T) {
	s := NewSamples()
	s.Add(Berth, "x", 1, 2, 3)
	s.Add(Upstream, "x", 4, 4, 6)
	s.Add(Floor, "x", 0.5, 1.5)
	half := &Target{Text: "half", Met: func(b, u, _ float64) bool { return b <= u/2 }, NeedsUpstream: true}
	lines := Compute(s, []Row{
		{Label: "x", Series: "x", P: 50, Floor: "x", Target: half},
		{Label: "y", Series: "y", P: 50, Target: half},
		{Label: "only berth", Series: "x", P: 50, Target: &Target{Text: "t", Met: func(b, u, _ float64) bool { return b <= u }, NeedsUpstream: true}},
	})
	l := lines[0]
	if l.Berth != 2 || l.Upstream != 4 || l.Ratio != 0.5 || l.FloorValue != 1 || l.Overhead != 1 || l.Verdict != "yes" {
		t.Fatalf("line = %+v", l)
	}
	if lines[1].Verdict != "" {
		t.Fatalf("verdict without samples: %q", lines[1].Verdict)
	}
	s2 := NewSamples()
	s2.Add(Berth, "x", 1)
	if v := Compute(s2, []Row{{Series: "x", P: 50, Target: half}})[0].Verdict; v != "" {
		t.Fatalf("verdict without upstream: %q", v)
	}
}

func TestBaselineColumns(t *testing.T) {
	s := NewSamples()
	s.Add(Berth, "x", 1, 2, 3)
	s.Add(Upstream, "x", 4)
	rows := []Row{{Label: "x", Series: "x", P: 50}}

	var without strings.Builder
	if err := WriteMarkdown(&without, Compute(s, rows)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(without.String(), "baseline") {
		t.Fatalf("baseline columns without a baseline:\n%s", without.String())
	}

	s.Add(Baseline, "x", 4, 4)
	lines := Compute(s, rows)
	if lines[0].Baseline != 4 || lines[0].NBaseline != 2 {
		t.Fatalf("line = %+v", lines[0])
	}
	var with strings.Builder
	if err := WriteMarkdown(&with, lines); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| berth/baseline |", "| 4.000 s | 0.50 | 2 |"} {
		if !strings.Contains(with.String(), want) {
			t.Fatalf("no %q in:\n%s", want, with.String())
		}
	}
}
