package result

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Unit says how a figure is printed.
type Unit int

const (
	Seconds    Unit = iota // printed in seconds, 3 decimals
	Millis                 // a value in seconds printed in milliseconds
	MiB                    // a value in bytes printed in MiB
	CPUSeconds             // CPU seconds, 2 decimals
	Count                  // a plain number
)

func (u Unit) format(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	switch u {
	case Millis:
		return fmt.Sprintf("%.1f ms", v*1000)
	case MiB:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case CPUSeconds:
		return fmt.Sprintf("%.2f s", v)
	case Count:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3f s", v)
	}
}

// Target judges berth's value against the goal for a figure.
type Target struct {
	Text string // the goal, as printed
	// Met reports whether the goal holds; floor is NaN when the figure has
	// no floor.
	Met func(berth, upstream, floor float64) bool
	// Needs says which values besides berth's the goal compares with.
	NeedsUpstream, NeedsFloor bool
}

func (t *Target) measurable(b, u, f float64) bool {
	return !math.IsNaN(b) && !(t.NeedsUpstream && math.IsNaN(u)) && !(t.NeedsFloor && math.IsNaN(f))
}

// Row is one line of the table: the P-th percentile of a series, pooled
// over every round.
type Row struct {
	Label  string
	Series string
	P      float64
	Unit   Unit
	// Floor names the CRI-floor series this figure is compared with
	// (berth's overhead above the runtime); empty for none.
	Floor  string
	Target *Target
}

// Line is a computed row.
type Line struct {
	Row
	Berth, Upstream, Ratio, FloorValue, Overhead float64
	NBerth, NUpstream, NFloor                    int
	// Baseline is the earlier berth's value (NaN when the run has none).
	Baseline  float64
	NBaseline int
	Verdict   string // "yes", "NO", or "" without a target
}

// Compute evaluates rows over the samples.
func Compute(s *Samples, rows []Row) []Line {
	lines := make([]Line, 0, len(rows))
	for _, r := range rows {
		b, u := s.Get(Berth, r.Series), s.Get(Upstream, r.Series)
		l := Line{Row: r, NBerth: len(b), NUpstream: len(u)}
		l.Berth, l.Upstream = Percentile(b, r.P), Percentile(u, r.P)
		l.Ratio = l.Berth / l.Upstream
		base := s.Get(Baseline, r.Series)
		l.NBaseline, l.Baseline = len(base), Percentile(base, r.P)
		l.FloorValue, l.Overhead = math.NaN(), math.NaN()
		if r.Floor != "" {
			f := s.Get(Floor, r.Floor)
			l.NFloor = len(f)
			l.FloorValue = Percentile(f, r.P)
			l.Overhead = l.Berth - l.FloorValue
		}
		if r.Target != nil && r.Target.measurable(l.Berth, l.Upstream, l.FloorValue) {
			l.Verdict = "NO"
			if r.Target.Met(l.Berth, l.Upstream, l.FloorValue) {
				l.Verdict = "yes"
			}
		}
		lines = append(lines, l)
	}
	return lines
}

func (l Line) label() string {
	if l.P == 50 {
		return l.Label + " p50"
	}
	return fmt.Sprintf("%s p%g", l.Label, l.P)
}

func ratio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func (l Line) overhead() string {
	if math.IsNaN(l.Overhead) {
		return "–"
	}
	s := l.Unit.format(math.Abs(l.Overhead))
	if l.Overhead < 0 {
		return "−" + s
	}
	return "+" + s
}

func (l Line) target() string {
	if l.Target == nil {
		return ""
	}
	return l.Verdict + " (" + l.Target.Text + ")"
}

func (l Line) n() string {
	s := fmt.Sprintf("%d/%d", l.NBerth, l.NUpstream)
	if l.Floor != "" {
		s += fmt.Sprintf("/%d", l.NFloor)
	}
	return s
}

var (
	header         = []string{"figure", "berth", "upstream", "berth/upstream", "CRI floor", "berth − floor", "n b/u/f", "target met?"}
	baselineHeader = []string{"baseline", "berth/baseline", "n base"}
)

func (l Line) cells(withBaseline bool) []string {
	c := []string{l.label(), l.Unit.format(l.Berth), l.Unit.format(l.Upstream), ratio(l.Ratio),
		l.Unit.format(l.FloorValue), l.overhead(), l.n(), l.target()}
	if withBaseline {
		c = append(c, l.Unit.format(l.Baseline), ratio(l.Berth/l.Baseline), fmt.Sprint(l.NBaseline))
	}
	return c
}

// hasBaseline reports whether the run measured an earlier berth: only then
// does the table get its columns.
func hasBaseline(lines []Line) bool {
	for _, l := range lines {
		if l.NBaseline > 0 {
			return true
		}
	}
	return false
}

func headerFor(lines []Line) []string {
	if hasBaseline(lines) {
		return append(slices.Clone(header), baselineHeader...)
	}
	return header
}

// WriteText prints lines as an aligned plain-text table.
func WriteText(w io.Writer, lines []Line) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headerFor(lines), "\t"))
	for _, l := range lines {
		fmt.Fprintln(tw, strings.Join(l.cells(hasBaseline(lines)), "\t"))
	}
	return tw.Flush()
}

// WriteMarkdown prints lines as a Markdown table.
func WriteMarkdown(w io.Writer, lines []Line) error {
	h := headerFor(lines)
	fmt.Fprintf(w, "| %s |\n", strings.Join(h, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(h)))
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "| %s |\n", strings.Join(l.cells(hasBaseline(lines)), " | ")); err != nil {
			return err
		}
	}
	return nil
}
