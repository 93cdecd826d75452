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

// makeSandboxConfig builds the sandbox config of a pod, reading the host
// resolv.conf, and records the events the conversion asks for.
func (m *Manager) makeSandboxConfig(id podIdentity, pod *v1.Pod, attempt uint32) (*runtimeapi.PodSandboxConfig, error) {
	hostDNS, err := m.hostDNS()
	if err != nil {
		return nil, err
	}
	cfg, notes, err := sandboxConfig(pod, attempt, &m.node, hostDNS)
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
	id, err := rs.RunPodSandbox(ctx, cfg, "")
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
