package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/bench/internal/agent"
	"github.com/berth-dev/berth/bench/internal/cri"
	"github.com/berth-dev/berth/bench/internal/result"
	"github.com/berth-dev/berth/bench/internal/scenario"
)

// bench is one run.
type bench struct {
	o      options
	env    *scenario.Env
	agents map[string]agent.Config
	// ops accumulates, per agent, the runtime operations the agent timed
	// itself (kubelet_runtime_operations_duration_seconds) over its
	// sessions: where its CRI time goes.
	ops map[string]agent.OpStats
	// podStart is the agent's own pod start time (first seen → running,
	// kubelet_pod_start_duration_seconds) over its sessions.
	podStart map[string]agent.OpStats
}

func run(ctx context.Context, o options) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(o.state, "admin.kubeconfig"))
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	// Bursts create 100 pods at once: no client-side throttling.
	cfg.QPS, cfg.Burst, cfg.Timeout = 2000, 2000, 30*time.Second
	cfg.UserAgent = "berthbench"
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	criClient, err := cri.Dial(o.criAddr)
	if err != nil {
		return err
	}
	defer criClient.Close()

	if err := agent.EnsureCgroupRoot(o.cgroupRoot); err != nil {
		return fmt.Errorf("cgroup root for the upstream kubelet: %w", err)
	}
	if err := ensureNamespace(ctx, kube, o.namespace); err != nil {
		return err
	}
	tracker := scenario.NewTracker()
	if err := tracker.Run(ctx, kube, o.namespace); err != nil {
		return err
	}
	ctrdPid := 0
	if o.runtimePidFile != "" {
		raw, err := os.ReadFile(o.runtimePidFile)
		if err != nil {
			return fmt.Errorf("containerd pid: %w", err)
		}
		if ctrdPid, err = strconv.Atoi(strings.TrimSpace(string(raw))); err != nil {
			return fmt.Errorf("containerd pid file %s: %w", o.runtimePidFile, err)
		}
	}
	b := &bench{
		o: o,
		env: &scenario.Env{Kube: kube, CRI: criClient, Tracker: tracker, Samples: result.NewSamples(),
			Node: o.node, NS: o.namespace, Logf: logf, RuntimePid: ctrdPid},
		agents:   map[string]agent.Config{},
		ops:      map[string]agent.OpStats{},
		podStart: map[string]agent.OpStats{},
	}
	for _, name := range strings.Split(o.agents, ",") {
		c := agent.Config{
			Name: name, Dir: filepath.Join(o.out, "agents", name), NodeName: o.node,
			Kubeconfig: filepath.Join(o.state, "node.kubeconfig"), RuntimeEndpoint: o.criAddr,
			ClientCAFile: filepath.Join(o.state, "pki", "ca.crt"), Port: int32(o.port), HealthzPort: int32(o.healthz),
			MaxPods: int32(max(o.scale, o.footprintN) + 50), CgroupRoot: o.cgroupRoot, Verbosity: o.agentVerbose,
		}
		switch name {
		case result.Berth:
			c.Binary = o.berth
		case result.Upstream:
			c.Binary = o.kubelet
		default:
			return fmt.Errorf("unknown agent %q (want berth, upstream)", name)
		}
		b.agents[name] = c
	}
	// A previous run that died leaves pods behind: start from an empty
	// runtime and namespace.
	if err := b.clean(ctx); err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}

	runErr := b.rounds(ctx)
	if err := b.report(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func (b *bench) rounds(ctx context.Context) error {
	for round := 1; round <= b.o.rounds; round++ {
		if round <= b.o.floorRounds {
			if err := b.floor(ctx, round); err != nil {
				return fmt.Errorf("CRI floor, round %d: %w", round, err)
			}
		}
		for _, name := range strings.Split(b.o.agents, ",") {
			if err := b.session(ctx, name, round); err != nil {
				return fmt.Errorf("%s, round %d: %w", name, round, err)
			}
		}
	}
	return nil
}

// floor measures the same pods made directly through CRI, with no agent
// running: single pods one at a time, then the bursts.
func (b *bench) floor(ctx context.Context, round int) error {
	logf("round %d: CRI floor", round)
	f := cri.NewFloor(b.env.CRI, cri.FloorOptions{
		Image: scenario.Image, Dir: filepath.Join(b.o.out, "floor"),
		CgroupParent: filepath.Join(b.o.cgroupRoot, "floor"), Namespace: b.o.namespace,
	})
	var made []cri.FloorPod
	defer func() { _ = f.Remove(context.WithoutCancel(ctx), made) }()
	// The first pod of a run pays for cold caches; it is not counted.
	for i := range b.o.floorSingle + 1 {
		p, err := f.Run(ctx, fmt.Sprintf("floor-r%d-%d", round, i))
		made = append(made, p)
		if err != nil {
			return err
		}
		if i > 0 {
			b.env.Samples.Add(result.Floor, "start.running", p.Took.Seconds())
		}
		if err := f.Remove(ctx, []cri.FloorPod{p}); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
	sizes := []int{30}
	if round <= b.o.burstRounds {
		sizes = append(sizes, 100)
	}
	for _, n := range sizes {
		cpu := scenario.StartCPU(b.env.RuntimePid)
		pods, took, err := f.Burst(ctx, fmt.Sprintf("floor%d-r%d", n, round), n)
		made = append(made, pods...)
		if err != nil {
			return err
		}
		series := fmt.Sprintf("burst%d", n)
		b.env.Samples.Add(result.Floor, series+".cpu.runtime", cpu.Stop()[0])
		b.env.Samples.Add(result.Floor, series+".last", took.Seconds())
		for _, p := range pods {
			b.env.Samples.Add(result.Floor, series+".pod", p.Took.Seconds())
		}
		logf("round %d: CRI floor: %d pods running after %.2fs", round, n, took.Seconds())
		start := time.Now()
		if err := f.Remove(ctx, pods); err != nil {
			return err
		}
		logf("round %d: CRI floor: %d pods removed in %.2fs", round, n, time.Since(start).Seconds())
		time.Sleep(time.Second)
	}
	return nil
}

// session runs one agent for one round: start it, wait until it serves
// the node, run the scenarios, stop it and empty the runtime.
func (b *bench) session(ctx context.Context, name string, round int) (err error) {
	last := round == b.o.rounds
	logf("round %d: starting %s", round, name)
	cfg := b.agents[name]
	cfg.LogFile = filepath.Join(b.o.out, "logs", fmt.Sprintf("%s-r%d.log", name, round))
	proc, err := agent.Start(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			logf("%s log (last lines):\n%s", name, proc.LogTail(30))
		}
		proc.Stop(context.WithoutCancel(ctx), 5*time.Second)
		if cerr := b.clean(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()
	api, err := agent.NewAPIClient(cfg.Port, filepath.Join(b.o.state, "pki", "apiserver-kubelet-client.crt"),
		filepath.Join(b.o.state, "pki", "apiserver-kubelet-client.key"))
	if err != nil {
		return err
	}
	s := &scenario.Session{Env: b.env, Agent: name, Round: round, Pid: proc.Pid(), API: api}
	ready := time.Now()
	if err := s.WaitReady(ctx, proc.Started(), proc.Exited()); err != nil {
		return err
	}
	logf("round %d: %s serves the node (ready and warmed up in %.1fs)", round, name, time.Since(ready).Seconds())

	opsBefore, _ := api.Histograms(ctx, "kubelet_runtime_operations_duration_seconds", "operation_type")
	startBefore, _ := api.Histograms(ctx, "kubelet_pod_start_duration_seconds", "")
	defer func() {
		if err != nil {
			return
		}
		if after, herr := api.Histograms(ctx, "kubelet_runtime_operations_duration_seconds", "operation_type"); herr == nil {
			b.ops[name] = add(b.ops[name], after.Sub(opsBefore))
		}
		if after, herr := api.Histograms(ctx, "kubelet_pod_start_duration_seconds", ""); herr == nil {
			b.podStart[name] = add(b.podStart[name], after.Sub(startBefore))
		}
	}()

	if last && b.o.idle > 0 {
		time.Sleep(5 * time.Second)
		if _, err := s.Idle(ctx, b.o.idle, "idle0"); err != nil {
			return err
		}
	}
	var profile <-chan error
	if round == 1 && b.o.profileDir != "" {
		profile = b.profile(ctx, api, name+"-latency", b.o.profileSecs)
	}
	if err := s.SingleStarts(ctx, b.o.single, ""); err != nil {
		return err
	}
	if err := s.Exits(ctx, b.o.exits, ""); err != nil {
		return err
	}
	if err := s.Burst(ctx, 30); err != nil {
		return err
	}
	if round <= b.o.burstRounds {
		if err := s.Burst(ctx, 100); err != nil {
			return err
		}
	}
	if profile != nil {
		if err := <-profile; err != nil {
			logf("%s: CPU profile: %v", name, err)
		}
	}
	if last && b.o.idle > 0 {
		return b.footprint(ctx, s, api, name)
	}
	return nil
}

// footprint is the last round's tail: idle with pods, the cost of
// /stats/summary, ConfigMap propagation, and the scale part.
func (b *bench) footprint(ctx context.Context, s *scenario.Session, api *agent.APIClient, name string) error {
	_, cms, cmPods, err := s.FootprintSet(ctx, b.o.footprintN, b.o.configMaps)
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second)
	// The ConfigMaps change as the idle window opens: berth's propagation
	// costs it next to nothing, upstream's happens at its periodic resync,
	// within the window or after it.
	prop, err := s.StartPropagation(ctx, cms, cmPods, b.o.propTimeout)
	if err != nil {
		return err
	}
	var profile <-chan error
	if b.o.profileDir != "" {
		profile = b.profile(ctx, api, name+"-idle", int(b.o.idle.Seconds()))
	}
	rate, err := s.Idle(ctx, b.o.idle, "idle100")
	if err != nil {
		return err
	}
	if profile != nil {
		if err := <-profile; err != nil {
			logf("%s: CPU profile: %v", name, err)
		}
	}
	if err := s.SummaryCost(ctx, b.o.summaryReqs, rate, b.o.footprintN); err != nil {
		logf("%s: /stats/summary: %v", name, err)
	}
	if b.o.scale > b.o.footprintN {
		if _, err := s.ScaleUp(ctx, b.o.scale-b.o.footprintN); err != nil {
			return err
		}
		time.Sleep(5 * time.Second)
		if err := s.SingleStarts(ctx, b.o.scaleChecks, "scale."); err != nil {
			return err
		}
		for range b.o.scaleChecks {
			if err := s.Exits(ctx, 1, "scale."); err != nil {
				return err
			}
		}
		if _, err := s.Idle(ctx, b.o.idleScale, "idlescale"); err != nil {
			return err
		}
		if err := s.Freshness(ctx); err != nil {
			return err
		}
	}
	// The pods are left to clean, after the agent is stopped: deleting
	// 250 pods through an agent would add a minute per agent to the run.
	prop.Wait()
	return nil
}

// profile fetches a CPU profile of secs seconds from the agent in the
// background.
func (b *bench) profile(ctx context.Context, api *agent.APIClient, name string, secs int) <-chan error {
	done := make(chan error, 1)
	go func() {
		body, _, err := api.Get(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs))
		if err == nil {
			err = os.WriteFile(filepath.Join(b.o.profileDir, name+".pprof"), body, 0o644)
		}
		done <- err
	}()
	return done
}

func add(a, b agent.OpStats) agent.OpStats {
	out := agent.OpStats{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		s := out[k]
		s.Sum += v.Sum
		s.Count += v.Count
		out[k] = s
	}
	return out
}

// clean empties the runtime and the namespace between agents: every
// sandbox is stopped and removed through CRI, every pod object deleted
// with grace 0, and what the agents leave on the host (mounts, empty pod
// cgroups) is removed.
func (b *bench) clean(ctx context.Context) error {
	n, err := b.env.CRI.RemoveAll(ctx, 8)
	if err != nil {
		return fmt.Errorf("empty the runtime: %w", err)
	}
	if n > 0 {
		logf("removed %d sandboxes from the runtime", n)
	}
	pods, err := b.env.Kube.CoreV1().Pods(b.o.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var uids []string
	for _, p := range pods.Items {
		uids = append(uids, string(p.UID))
		err := b.env.Kube.CoreV1().Pods(b.o.namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	for _, c := range b.agents {
		if err := agent.UnmountUnder(c.Dir); err != nil {
			return err
		}
	}
	agent.RemovePodCgroups("/", uids)
	agent.RemovePodCgroups(b.o.cgroupRoot, uids)
	return nil
}

func ensureNamespace(ctx context.Context, kube kubernetes.Interface, ns string) error {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	// Pods are admitted only once the namespace's default ServiceAccount
	// exists.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if _, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no default ServiceAccount in %s: %w", ns, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// report prints the table, writes it as Markdown and writes every sample
// as JSON next to the agents' directories.
func (b *bench) report() error {
	lines := result.Compute(b.env.Samples, rows(b.o))
	fmt.Println()
	fmt.Printf("berthbench %s — berth vs upstream kubelet v1.37.2, same node, containerd, control plane\n",
		time.Now().Format("2006-01-02 15:04"))
	if err := result.WriteText(os.Stdout, lines); err != nil {
		return err
	}
	fmt.Println()
	b.writeBreakdown(os.Stdout)

	var md strings.Builder
	_ = result.WriteMarkdown(&md, lines)
	md.WriteString("\n")
	b.writeBreakdown(&md)
	if err := os.WriteFile(filepath.Join(b.o.out, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(map[string]any{
		"date": time.Now().Format(time.RFC3339), "samples": b.env.Samples.Snapshot(),
		"runtimeOperations": b.ops, "podStartDuration": b.podStart,
	}, "", " ")
	if err != nil {
		return err
	}
	path := filepath.Join(b.o.out, "results.json")
	logf("results: %s, %s", path, filepath.Join(b.o.out, "results.md"))
	return os.WriteFile(path, raw, 0o644)
}
