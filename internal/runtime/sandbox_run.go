package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"

	v1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// parallelSandboxStarts is how many sandboxes are created at once on a
// machine with cpus CPUs. Creating a sandbox is the heaviest CRI call (the
// runtime's shim and pause process, a network namespace, the CNI plugins,
// each a process of its own); beyond about two per CPU more of them only
// contend for the CPU and for the runtime's and the CNI plugins' locks, and
// every pod of a burst waits for the slowest. Bounded, pods come up in the
// order they arrived: measured on 2 CPUs, 100 pods at once reach Running in
// 11.2 s for the last and 6.1 s for the median instead of 12.9 s and 11.4 s
// (docs/benchmarks.md). Upstream's kubelet has no such bound.
func parallelSandboxStarts(cpus int) int {
	return max(2, 2*cpus)
}

// RuntimeHandlers resolves a pod's runtimeClassName to the CRI runtime
// handler its sandbox runs with (objects.RuntimeClasses, upstream's
// runtimeclass manager). A class that does not exist is an error
// satisfying apierrors.IsNotFound.
type RuntimeHandlers interface {
	LookupRuntimeHandler(runtimeClassName *string) (string, error)
}

// runtimeHandler is the pod's runtime handler: "" (the runtime's default)
// without a runtimeClassName. Standalone there is no RuntimeClass to read:
// such a pod is refused rather than run on the default handler, which may
// isolate it less than its class asks for (upstream ignores the field
// without an API server).
func (m *Manager) runtimeHandler(pod *v1.Pod) (string, error) {
	name := pod.Spec.RuntimeClassName
	if name == nil || *name == "" {
		return "", nil
	}
	if m.opts.RuntimeClasses == nil {
		return "", fmt.Errorf("runtimeClassName %q: no API server to read RuntimeClass %q from", *name, *name)
	}
	return m.opts.RuntimeClasses.LookupRuntimeHandler(name)
}

// makeSandboxConfig builds the sandbox config of a pod, reading the host
// resolv.conf and, for a pod with hostUsers: false, asking the runtime
// about user namespaces, and records the events the conversion asks for.
// It returns the runtime handler of the pod's RuntimeClass with it.
func (m *Manager) makeSandboxConfig(ctx context.Context, rs internalapi.RuntimeService, id podIdentity, pod *v1.Pod, attempt uint32) (*runtimeapi.PodSandboxConfig, string, error) {
	hostDNS, err := m.hostDNS()
	if err != nil {
		return nil, "", err
	}
	handler, err := m.runtimeHandler(pod)
	if err != nil {
		return nil, "", err
	}
	userns, err := m.podUserNamespace(ctx, rs, pod, handler)
	if err != nil {
		return nil, "", err
	}
	cfg, notes, err := sandboxConfig(pod, attempt, &m.node, hostDNS, userns)
	m.noteEvents(id, notes)
	return cfg, handler, err
}

// hostDNS parses the configured host resolv.conf; none configured gives
// an empty config.
func (m *Manager) hostDNS() (*runtimeapi.DNSConfig, error) {
	if m.node.resolvConf == "" {
		return &runtimeapi.DNSConfig{}, nil
	}
	f, err := os.Open(m.node.resolvConf)
	if err != nil {
		return nil, fmt.Errorf("read resolv.conf: %w", err)
	}
	defer f.Close()
	cfg, err := parseResolvConf(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", m.node.resolvConf, err)
	}
	return cfg, nil
}

// runSandbox creates and starts the pod's sandbox with the runtime
// handler of its RuntimeClass and returns its ID and, for pods on the pod
// network, its IPs. A handler the runtime does not have is the runtime's
// error.
func (m *Manager) runSandbox(ctx context.Context, rs internalapi.RuntimeService, pod *v1.Pod, cfg *runtimeapi.PodSandboxConfig, handler string) (string, []string, error) {
	if err := os.MkdirAll(cfg.GetLogDirectory(), 0o755); err != nil {
		return "", nil, fmt.Errorf("create log directory for pod %q: %w", podDesc(pod), err)
	}
	select {
	case m.sandboxSlots <- struct{}{}:
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	if handler != "" {
		klog.FromContext(ctx).V(2).Info("Running pod with runtime handler", "pod", klog.KObj(pod), "runtimeHandler", handler)
	}
	id, err := rs.RunPodSandbox(ctx, cfg, handler)
	<-m.sandboxSlots
	if err != nil {
		return "", nil, m.wrap(err)
	}
	resp, err := rs.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return id, nil, fmt.Errorf("status of new sandbox: %w", m.wrap(err))
	}
	if resp.GetStatus() == nil {
		return id, nil, errors.New("status of new sandbox: runtime returned none")
	}
	if pod.Spec.HostNetwork {
		return id, nil, nil
	}
	return id, sandboxIPs(resp.GetStatus()), nil
}
