// Command berthbench measures berth against the upstream kubelet on one
// machine, in one run: the same control plane, the same containerd, the
// same images and pods, agent after agent (A B A B ...), with the CRI floor
// — the same pods made directly through CRI — measured in between. It
// prints, per figure, berth's value, upstream's, the ratio, and berth's
// overhead above the floor. hack/bench.sh sets up the cluster and runs it;
// docs/benchmarks.md explains the method.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/bench/internal/result"
)

type options struct {
	state   string // hack/cluster.sh's STATE_DIR
	out     string // where results, agent dirs and profiles go
	berth   string
	kubelet string
	// baseline is an earlier berth binary measured as a third agent.
	baseline string
	criAddr  string
	// runtimePidFile holds containerd's pid (hack/containerd.sh writes it).
	runtimePidFile string
	node           string
	namespace      string
	port           int
	healthz        int
	cgroupRoot     string
	agents         string

	rounds       int
	single       int
	exits        int
	burstRounds  int
	floorRounds  int
	floorSingle  int
	idle         time.Duration
	footprintN   int
	configMaps   int
	summaryReqs  int
	scale        int
	scaleChecks  int
	idleScale    time.Duration
	propTimeout  time.Duration
	profileDir   string
	profileSecs  int
	agentVerbose int
}

func main() {
	var o options
	flag.StringVar(&o.state, "state", "", "hack/cluster.sh STATE_DIR of the bench cluster (admin.kubeconfig, node.kubeconfig, pki/)")
	flag.StringVar(&o.out, "out", "", "directory for results, agent state and logs (default STATE_DIR/..)")
	flag.StringVar(&o.berth, "berth", "", "berth binary")
	flag.StringVar(&o.kubelet, "kubelet", "", "upstream kubelet binary")
	flag.StringVar(&o.baseline, "baseline", "", "an earlier berth binary, measured as agent \"baseline\" in the same rounds (before/after of a change)")
	flag.StringVar(&o.criAddr, "cri", "", "containerd's CRI endpoint, unix://...")
	flag.StringVar(&o.runtimePidFile, "runtime-pid-file", "", "file with containerd's pid, to measure its CPU time during bursts")
	flag.StringVar(&o.node, "node", "bench-node", "node name both agents register as (the node certificate's)")
	flag.StringVar(&o.namespace, "namespace", "bench", "namespace of the benchmark's pods")
	flag.IntVar(&o.port, "port", 11250, "kubelet API port of both agents")
	flag.IntVar(&o.healthz, "healthz-port", 11248, "healthz port of both agents")
	flag.StringVar(&o.cgroupRoot, "cgroup-root", "/berthbench", "upstream kubelet's cgroupRoot; never the one other kubelets on the machine use")
	flag.StringVar(&o.agents, "agents", "berth,upstream", "agents, in the order of each round")
	flag.IntVar(&o.rounds, "rounds", 3, "A/B rounds")
	flag.IntVar(&o.single, "single", 7, "single pod starts per agent per round")
	flag.IntVar(&o.exits, "exits", 6, "exit-detection pods per agent per round")
	flag.IntVar(&o.burstRounds, "burst-rounds", 2, "rounds that include the 100-pod burst (the 30-pod one is in every round)")
	flag.IntVar(&o.floorRounds, "floor-rounds", 2, "rounds that start with the CRI floor")
	flag.IntVar(&o.floorSingle, "floor-single", 10, "single CRI-floor pods per floor round")
	flag.DurationVar(&o.idle, "idle", time.Minute, "idle footprint window (0 skips the footprint and scale part)")
	flag.IntVar(&o.footprintN, "footprint-pods", 100, "pods of the idle-with-pods footprint")
	flag.IntVar(&o.configMaps, "configmaps", 5, "of those, pods that mount a ConfigMap for the propagation figure")
	flag.IntVar(&o.summaryReqs, "summary-requests", 10, "/stats/summary requests timed at footprint-pods")
	flag.IntVar(&o.scale, "scale", 250, "pods on the node in the scale part (0 skips it)")
	flag.IntVar(&o.scaleChecks, "scale-checks", 3, "single starts and exits measured at scale")
	flag.DurationVar(&o.idleScale, "idle-scale", 20*time.Second, "idle footprint window at scale")
	flag.DurationVar(&o.propTimeout, "propagation-timeout", 150*time.Second, "how long a ConfigMap update may take to show")
	flag.StringVar(&o.profileDir, "profile-dir", "", "if set, take CPU profiles of each agent (round 1 latency scenarios, idle with pods) into this directory")
	flag.IntVar(&o.profileSecs, "profile-seconds", 30, "length of the round-1 CPU profile")
	flag.IntVar(&o.agentVerbose, "agent-v", 0, "log verbosity of both agents")
	flag.Parse()
	if o.state == "" || o.berth == "" || o.kubelet == "" || o.criAddr == "" {
		fmt.Fprintln(os.Stderr, "berthbench: -state, -berth, -kubelet and -cri are required; run it through hack/bench.sh")
		os.Exit(2)
	}
	if o.out == "" {
		o.out = filepath.Dir(filepath.Clean(o.state))
	}
	if o.baseline != "" && !slices.Contains(strings.Split(o.agents, ","), result.Baseline) {
		o.agents += "," + result.Baseline
	}
	// client-go logs throttling and retries through klog; keep the output
	// to the benchmark's own lines.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(discard{})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err := run(ctx, o)
	logf("finished in %s", time.Since(start).Round(time.Second))
	if err != nil {
		fmt.Fprintf(os.Stderr, "berthbench: %v\n", err)
		os.Exit(1)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

var startTime = time.Now()

func logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(startTime).Seconds(), strings.TrimRight(msg, "\n"))
}
