package main

import (
	"context"
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
	ctrdPid, err := readPid(o.runtimePidFile)
	if err != nil {
		return err
	}
	var cpPids []int
	for _, name := range []string{"kube-apiserver.pid", "etcd.pid"} {
		pid, err := readPid(filepath.Join(o.state, name))
		if err != nil {
			return err
		}
		cpPids = append(cpPids, pid)
	}
	b := &bench{
		o: o,
		env: &scenario.Env{Kube: kube, CRI: criClient, Tracker: tracker, Samples: result.NewSamples(),
			Node: o.node, NS: o.namespace, Logf: logf, RuntimePid: ctrdPid, ControlPlanePids: cpPids},
		agents: map[string]agent.Config{},
		ops:    map[string]agent.OpStats{},
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
		case result.Baseline:
			if o.baseline == "" {
				return fmt.Errorf("agent %q needs -baseline", name)
			}
			c.Binary = o.baseline
		default:
			return fmt.Errorf("unknown agent %q (want berth, upstream, baseline)", name)
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

// clean empties the runtime and the namespace between agents: every
// sandbox is stopped and removed through CRI, every pod object deleted
// with grace 0, and what the agents leave on the host (mounts, empty pod
// cgroups) is removed.
func (b *bench) clean(ctx context.Context) error {
	n, err := b.env.CRI.RemoveAll(ctx, 16)
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

// readPid reads a pid file; an empty path gives 0 (not measured).
func readPid(path string) (int, error) {
	if path == "" {
		return 0, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, nil
}

func sumCPU(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}
