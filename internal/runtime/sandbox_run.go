package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"

	v1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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

// makeSandboxConfig builds the sandbox config of a pod, reading the host
// resolv.conf and, for a pod with hostUsers: false, asking the runtime
// about user namespaces, and records the events the conversion asks for.
func (m *Manager) makeSandboxConfig(ctx context.Context, rs internalapi.RuntimeService, id podIdentity, pod *v1.Pod, attempt uint32) (*runtimeapi.PodSandboxConfig, error) {
	hostDNS, err := m.hostDNS()
	if err != nil {
		return nil, err
	}
	userns, err := m.podUserNamespace(ctx, rs, pod)
	if err != nil {
		return nil, err
	}
	cfg, notes, err := sandboxConfig(pod, attempt, &m.node, hostDNS, userns)
	m.noteEvents(id, notes)
	return cfg, err
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

// runSandbox creates and starts the pod's sandbox and returns its ID and,
// for pods on the pod network, its IPs.
func (m *Manager) runSandbox(ctx context.Context, rs internalapi.RuntimeService, pod *v1.Pod, cfg *runtimeapi.PodSandboxConfig) (string, []string, error) {
	if pod.Spec.RuntimeClassName != nil && *pod.Spec.RuntimeClassName != "" {
		// The handler comes from the RuntimeClass object in the API.
		return "", nil, errNotSupported{fmt.Sprintf("runtimeClassName %q", *pod.Spec.RuntimeClassName)}
	}
	if err := os.MkdirAll(cfg.GetLogDirectory(), 0o755); err != nil {
		return "", nil, fmt.Errorf("create log directory for pod %q: %w", podDesc(pod), err)
	}
	select {
	case m.sandboxSlots <- struct{}{}:
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	id, err := rs.RunPodSandbox(ctx, cfg, "")
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
