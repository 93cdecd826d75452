package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/berth-dev/berth/bench/internal/result"
)

// The targets (berth issue 7).
var (
	startTarget = &result.Target{Text: "≤ ½ upstream and ≤ floor + 100 ms", Met: func(b, u, f float64) bool { return b <= u/2 && b-f <= 0.1 }, NeedsUpstream: true, NeedsFloor: true}
	burstTarget = &result.Target{Text: "≤ floor + 15% and ≤ upstream", Met: func(b, u, f float64) bool { return b <= f*1.15 && b <= u }, NeedsUpstream: true, NeedsFloor: true}
	exitTarget  = &result.Target{Text: "< 200 ms", Met: func(b, _, _ float64) bool { return b < 0.2 }}
	propTarget  = &result.Target{Text: "< 2 s", Met: func(b, _, _ float64) bool { return b < 2 }}
	thirdTarget = &result.Target{Text: "≤ ⅓ upstream", Met: func(b, u, _ float64) bool { return b <= u/3 }, NeedsUpstream: true}
	notWorse    = &result.Target{Text: "≤ upstream", Met: func(b, u, _ float64) bool { return b <= u }, NeedsUpstream: true}
)

// rows lists the table's figures in the order of issue 7.
func rows(o options) []result.Row {
	rs := []result.Row{
		{Label: "single pod start → Running", Series: "start.running", P: 50, Floor: "start.running", Target: startTarget},
		{Label: "single pod start → Running", Series: "start.running", P: 90, Floor: "start.running"},
		{Label: "single pod start → Ready", Series: "start.ready", P: 50},
		{Label: "single pod start → Ready", Series: "start.ready", P: 90},
		{Label: "burst 30 → all Running (to last)", Series: "burst30.last", P: 50, Floor: "burst30.last", Target: burstTarget},
		{Label: "burst 30, per pod → Running", Series: "burst30.pod", P: 50, Floor: "burst30.pod"},
		{Label: "burst 30, per pod → Running", Series: "burst30.pod", P: 99, Floor: "burst30.pod"},
		{Label: "burst 100 → all Running (to last)", Series: "burst100.last", P: 50, Floor: "burst100.last", Target: burstTarget},
		{Label: "burst 100, per pod → Running", Series: "burst100.pod", P: 50, Floor: "burst100.pod"},
		{Label: "burst 100, per pod → Running", Series: "burst100.pod", P: 99, Floor: "burst100.pod"},
		{Label: "burst 30: agent CPU s until all Running", Series: "burst30.cpu.agent", P: 50, Unit: result.CPUSeconds},
		{Label: "burst 30: containerd CPU s until all Running", Series: "burst30.cpu.runtime", P: 50, Unit: result.CPUSeconds, Floor: "burst30.cpu.runtime"},
		{Label: "burst 30: API server + etcd CPU s until all Running", Series: "burst30.cpu.api", P: 50, Unit: result.CPUSeconds, Floor: "burst30.cpu.api"},
		{Label: "burst 30: machine CPU s until all Running", Series: "burst30.cpu.node", P: 50, Unit: result.CPUSeconds, Floor: "burst30.cpu.node"},
		{Label: "burst 100: agent CPU s until all Running", Series: "burst100.cpu.agent", P: 50, Unit: result.CPUSeconds},
		{Label: "burst 100: containerd CPU s until all Running", Series: "burst100.cpu.runtime", P: 50, Unit: result.CPUSeconds, Floor: "burst100.cpu.runtime"},
		{Label: "burst 100: API server + etcd CPU s until all Running", Series: "burst100.cpu.api", P: 50, Unit: result.CPUSeconds, Floor: "burst100.cpu.api"},
		{Label: "burst 100: machine CPU s until all Running", Series: "burst100.cpu.node", P: 50, Unit: result.CPUSeconds, Floor: "burst100.cpu.node"},
		{Label: "exit → status terminated", Series: "exit.detect", P: 50, Target: exitTarget},
		{Label: "delete grace 0 → containers stopped", Series: "delete0.stopped", P: 50, Target: notWorse},
		{Label: "delete grace 0 → object gone", Series: "delete0.gone", P: 50},
		{Label: "delete graceful → containers stopped", Series: "deletegrace.stopped", P: 50, Target: notWorse},
		{Label: "delete graceful → object gone", Series: "deletegrace.gone", P: 50, Target: notWorse},
		{Label: "burst 30 deleted → all stopped", Series: "burst30.delete", P: 50, Target: notWorse},
		{Label: "burst 100 deleted → all stopped", Series: "burst100.delete", P: 50, Target: notWorse},
	}
	if o.idle == 0 {
		return rs
	}
	n := o.footprintN
	rs = append(rs,
		result.Row{Label: "ConfigMap change → file in pod", Series: "propagation", P: 50, Target: propTarget},
		result.Row{Label: "RSS idle, 0 pods", Series: "rss.idle0", P: 50, Unit: result.MiB, Target: thirdTarget},
		result.Row{Label: fmt.Sprintf("RSS idle, %d pods", n), Series: "rss.idle100", P: 50, Unit: result.MiB, Target: thirdTarget},
		result.Row{Label: "  of which anonymous (heap, stacks), 0 pods", Series: "rssanon.idle0", P: 50, Unit: result.MiB},
		result.Row{Label: fmt.Sprintf("  of which anonymous (heap, stacks), %d pods", n), Series: "rssanon.idle100", P: 50, Unit: result.MiB},
		result.Row{Label: "CPU s per 60 s idle, 0 pods", Series: "cpu.idle0", P: 50, Unit: result.CPUSeconds},
		result.Row{Label: fmt.Sprintf("CPU s per 60 s idle, %d pods", n), Series: "cpu.idle100", P: 50, Unit: result.CPUSeconds, Target: thirdTarget},
		result.Row{Label: fmt.Sprintf("/stats/summary at %d pods, latency", n), Series: "summary.latency", P: 50, Unit: result.Millis, Target: notWorse},
		result.Row{Label: fmt.Sprintf("/stats/summary at %d pods, CPU", n), Series: "summary.cpu", P: 50, Unit: result.Millis, Target: notWorse},
	)
	if o.scale <= n {
		return rs
	}
	s := o.scale
	return append(rs,
		result.Row{Label: fmt.Sprintf("scale %d→%d → all Running (to last)", n, s), Series: "scale.last", P: 50, Target: notWorse},
		result.Row{Label: fmt.Sprintf("at %d pods: single start → Running", s), Series: "scale.start.running", P: 50, Target: notWorse},
		result.Row{Label: fmt.Sprintf("at %d pods: single start → Ready", s), Series: "scale.start.ready", P: 50},
		result.Row{Label: fmt.Sprintf("at %d pods: exit → status terminated", s), Series: "scale.exit.detect", P: 50, Target: exitTarget},
		result.Row{Label: fmt.Sprintf("at %d pods: delete grace 0 → stopped", s), Series: "scale.delete0.stopped", P: 50},
		result.Row{Label: fmt.Sprintf("at %d pods: RSS idle", s), Series: "rss.idlescale", P: 50, Unit: result.MiB, Target: thirdTarget},
		result.Row{Label: fmt.Sprintf("at %d pods: CPU s per 60 s idle", s), Series: "cpu.idlescale", P: 50, Unit: result.CPUSeconds, Target: thirdTarget},
		result.Row{Label: fmt.Sprintf("at %d pods: node Lease age", s), Series: "scale.lease_age", P: 50},
	)
}

// writeBreakdown prints where each agent's runtime time went, from its
// own metrics, averaged per call over every session.
func (b *bench) writeBreakdown(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	agents := []string{result.Berth, result.Upstream}
	if _, ok := b.ops[result.Baseline]; ok {
		agents = append(agents, result.Baseline)
	}
	fmt.Fprint(tw, "CRI operation (agents' own metrics)")
	for _, a := range agents {
		fmt.Fprintf(tw, "\t%s calls\t%s mean", a, a)
	}
	fmt.Fprintln(tw)
	keys := map[string]bool{}
	for _, ops := range b.ops {
		for k := range ops {
			keys[k] = true
		}
	}
	cell := func(s agentOp) (string, string) {
		if s.Count == 0 {
			return "–", "–"
		}
		return fmt.Sprintf("%.0f", s.Count), fmt.Sprintf("%.1f ms", s.Sum/s.Count*1000)
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		fmt.Fprint(tw, k)
		for _, a := range agents {
			c, m := cell(b.ops[a][k])
			fmt.Fprintf(tw, "\t%s\t%s", c, m)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

type agentOp = struct{ Sum, Count float64 }
