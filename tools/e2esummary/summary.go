package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report is the part of a Ginkgo v2 JSON report (--json-report: an array
// of suite reports) that the summary reads. Ginkgo writes State and
// LeafNodeType as strings.
type report struct {
	SuiteDescription string
	SpecReports      []specReport
}

type specReport struct {
	ContainerHierarchyTexts []string
	LeafNodeType            string
	LeafNodeText            string
	State                   string
	RunTime                 time.Duration
	Failure                 *failure
}

type failure struct {
	Message  string
	Location struct {
		FileName   string
		LineNumber int
	}
}

// Result is one spec's outcome.
type Result struct {
	Name    string
	State   string // passed, failed, skipped, ... as Ginkgo reports it
	Reason  string // failed or skipped at run time: the first line that says why
	Where   string // failed: file:line of the failure
	RunTime time.Duration
}

// Summary sorts the specs that a run selected by outcome. Specs that the
// focus/skip filters left out are counted, not listed.
type Summary struct {
	Passed, Failed, Skipped []Result
	NotSelected             int
}

// failedStates are the Ginkgo states that count as a failure.
var failedStates = []string{"failed", "panicked", "timedout", "interrupted", "aborted"}

// parse reads a Ginkgo JSON report.
func parse(r io.Reader) ([]report, error) {
	var reports []report
	if err := json.NewDecoder(r).Decode(&reports); err != nil {
		return nil, fmt.Errorf("decode Ginkgo JSON report: %w", err)
	}
	return reports, nil
}

// summarize sorts every spec of the reports. Suite-level nodes
// (BeforeSuite, ReportAfterSuite, ...) appear only when they failed: a
// failing SynchronizedBeforeSuite fails the whole run, and the summary has
// to say so. A skipped spec without a message was filtered out; one with a
// message skipped itself at run time (e2eskipper) and is listed.
func summarize(reports []report) Summary {
	var s Summary
	for _, rep := range reports {
		for _, sr := range rep.SpecReports {
			res := Result{Name: specName(sr), State: sr.State, RunTime: sr.RunTime}
			if sr.Failure != nil {
				res.Reason = reasonLine(sr.Failure.Message)
				if sr.Failure.Location.FileName != "" {
					res.Where = fmt.Sprintf("%s:%d", trimPath(sr.Failure.Location.FileName), sr.Failure.Location.LineNumber)
				}
			}
			isSpec := sr.LeafNodeType == "It" || sr.LeafNodeType == ""
			switch {
			case slices.Contains(failedStates, sr.State):
				s.Failed = append(s.Failed, res)
			case !isSpec:
				// a suite node that passed or was skipped: not a spec
			case sr.State == "passed":
				s.Passed = append(s.Passed, res)
			case sr.State == "skipped" && res.Reason != "":
				s.Skipped = append(s.Skipped, res)
			default: // skipped by the filters, or pending
				s.NotSelected++
			}
		}
	}
	for _, l := range [][]Result{s.Passed, s.Failed, s.Skipped} {
		slices.SortFunc(l, func(a, b Result) int { return strings.Compare(a.Name, b.Name) })
	}
	return s
}

// specName is the spec's full text as Ginkgo prints it and as focus
// regexps match it.
func specName(sr specReport) string {
	parts := make([]string, 0, len(sr.ContainerHierarchyTexts)+1)
	for _, t := range sr.ContainerHierarchyTexts {
		if t != "" {
			parts = append(parts, t)
		}
	}
	if sr.LeafNodeText != "" {
		parts = append(parts, sr.LeafNodeText)
	}
	if len(parts) == 0 {
		return "[" + sr.LeafNodeType + "]"
	}
	return strings.Join(parts, " ")
}

// reasonLine is the first non-empty line of a failure or skip message,
// cut to a length that fits a table row. Gomega's messages start with a
// bare "Expected" and put the values on the lines below, so short lines
// are joined with the next (up to four) until the reason says something.
func reasonLine(msg string) string {
	const (
		maxLen   = 300
		minLen   = 60
		maxLines = 4
	)
	var parts []string
	n := 0
	for l := range strings.SplitSeq(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		parts = append(parts, l)
		n += len(l)
		if n >= minLen || len(parts) == maxLines {
			break
		}
	}
	r := strings.Join(parts, " ")
	if len(r) > maxLen {
		r = r[:maxLen] + "…"
	}
	return r
}

// trimPath keeps a source path from the module root on
// (k8s.io/kubernetes@v1.37.2/test/e2e/... → test/e2e/...).
func trimPath(p string) string {
	if i := strings.Index(p, "/test/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// CountLine is the one-line result, e.g. "212 passed, 3 failed, 13 skipped".
func (s Summary) CountLine() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", len(s.Passed), len(s.Failed), len(s.Skipped))
}

// writeMarkdown writes the summary as Markdown under a title.
func writeMarkdown(w io.Writer, title string, s Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s (%d specs not selected)\n", title, s.CountLine(), s.NotSelected)
	if len(s.Failed) > 0 {
		fmt.Fprintf(&b, "\n## Failed (%d)\n\n", len(s.Failed))
		for _, r := range s.Failed {
			fmt.Fprintf(&b, "- %s\n  - %s: %s", r.Name, r.State, r.Reason)
			if r.Where != "" {
				fmt.Fprintf(&b, " (%s)", r.Where)
			}
			b.WriteString("\n")
		}
	}
	if len(s.Skipped) > 0 {
		fmt.Fprintf(&b, "\n## Skipped at run time (%d)\n\n", len(s.Skipped))
		for _, r := range s.Skipped {
			fmt.Fprintf(&b, "- %s\n  - %s\n", r.Name, r.Reason)
		}
	}
	if len(s.Passed) > 0 {
		fmt.Fprintf(&b, "\n## Passed (%d)\n\n", len(s.Passed))
		for _, r := range s.Passed {
			fmt.Fprintf(&b, "- %s (%.0fs)\n", r.Name, r.RunTime.Seconds())
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
