// Command e2esummary turns the Ginkgo JSON report of an e2e.test run
// (hack/conformance.sh) into a summary: the specs that passed, those that
// failed with the line that says why, and those that skipped themselves at
// run time with their reason.
//
// Usage:
//
//	e2esummary -report report.json -title "berth: NodeConformance" -o summary.md [-fail-on-skip]
//
// It prints the count line ("N passed, N failed, N skipped") and the failed
// specs to stdout, and exits 1 when a spec failed (or, with -fail-on-skip,
// skipped itself): a subset that CI runs must not lose a spec silently.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	ok, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2esummary:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(args []string) (ok bool, err error) {
	fs := flag.NewFlagSet("e2esummary", flag.ContinueOnError)
	var (
		reportPath = fs.String("report", "", "Ginkgo JSON report (required)")
		title      = fs.String("title", "e2e results", "title of the Markdown summary")
		out        = fs.String("o", "", "write the Markdown summary here")
		failOnSkip = fs.Bool("fail-on-skip", false, "a spec that skipped itself at run time counts as a failure")
	)
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *reportPath == "" {
		return false, fmt.Errorf("-report is required")
	}
	f, err := os.Open(*reportPath)
	if err != nil {
		return false, err
	}
	defer f.Close()
	reports, err := parse(f)
	if err != nil {
		return false, fmt.Errorf("%s: %w", *reportPath, err)
	}
	s := summarize(reports)
	if *out != "" {
		w, err := os.Create(*out)
		if err != nil {
			return false, err
		}
		if err := writeMarkdown(w, *title, s); err != nil {
			w.Close()
			return false, err
		}
		if err := w.Close(); err != nil {
			return false, err
		}
	}
	for _, r := range s.Failed {
		fmt.Printf("FAILED  %s\n        %s\n", r.Name, r.Reason)
	}
	if *failOnSkip {
		for _, r := range s.Skipped {
			fmt.Printf("SKIPPED %s\n        %s\n", r.Name, r.Reason)
		}
	}
	fmt.Printf("%s: %s\n", *title, s.CountLine())
	ok = len(s.Failed) == 0 && (!*failOnSkip || len(s.Skipped) == 0)
	if len(s.Passed)+len(s.Failed)+len(s.Skipped) == 0 {
		fmt.Println("no spec ran: the selection matched nothing")
		ok = false
	}
	return ok, nil
}
