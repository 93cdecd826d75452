package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// validate checks the fields berth acts on, plus the ports (as upstream
// does), after defaulting and flags. It reports every problem, not just the
// first. Each message names the field and, where there is one, its flag.
func validate(cfg *kubeletconfig.KubeletConfiguration) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"syncFrequency (--sync-frequency)", cfg.SyncFrequency.Duration},
		{"fileCheckFrequency (--file-check-frequency)", cfg.FileCheckFrequency.Duration},
		{"runtimeRequestTimeout (--runtime-request-timeout)", cfg.RuntimeRequestTimeout.Duration},
		{"nodeStatusUpdateFrequency (--node-status-update-frequency)", cfg.NodeStatusUpdateFrequency.Duration},
		{"nodeStatusReportFrequency", cfg.NodeStatusReportFrequency.Duration},
	} {
		if d.val <= 0 {
			bad("%s must be greater than zero, got %v", d.name, d.val)
		}
	}

	if cfg.Port < 1 || cfg.Port > 65535 {
		bad("port (--port) %d must be between 1 and 65535", cfg.Port)
	}
	if cfg.ReadOnlyPort < 0 || cfg.ReadOnlyPort > 65535 {
		bad("readOnlyPort (--read-only-port) %d must be between 0 and 65535 (0 disables it)", cfg.ReadOnlyPort)
	}
	if cfg.HealthzPort != nil && (*cfg.HealthzPort < 0 || *cfg.HealthzPort > 65535) {
		bad("healthzPort %d must be between 0 and 65535 (0 disables it)", *cfg.HealthzPort)
	}
	if net.ParseIP(cfg.Address) == nil {
		bad("address (--address) %q is not an IP address", cfg.Address)
	}

	if err := validateEndpoint(cfg.ContainerRuntimeEndpoint); err != nil {
		bad("containerRuntimeEndpoint (--container-runtime-endpoint) %q: %v", cfg.ContainerRuntimeEndpoint, err)
	}
	if cfg.ImageServiceEndpoint != "" {
		if err := validateEndpoint(cfg.ImageServiceEndpoint); err != nil {
			bad("imageServiceEndpoint (--image-service-endpoint) %q: %v", cfg.ImageServiceEndpoint, err)
		}
	}

	switch cfg.CgroupDriver {
	case "cgroupfs", "systemd":
	default:
		bad("cgroupDriver (--cgroup-driver) %q is not supported, want cgroupfs or systemd", cfg.CgroupDriver)
	}

	switch {
	case cfg.PodLogsDir == "":
		bad("podLogsDir must not be empty")
	case !filepath.IsAbs(cfg.PodLogsDir):
		bad("podLogsDir %q must be an absolute path", cfg.PodLogsDir)
	case filepath.Clean(cfg.PodLogsDir) != cfg.PodLogsDir:
		bad("podLogsDir %q must be a clean path (%q)", cfg.PodLogsDir, filepath.Clean(cfg.PodLogsDir))
	}

	if m := cfg.MaxParallelImagePulls; m != nil {
		switch {
		case *m < 1:
			bad("maxParallelImagePulls %d must be at least 1", *m)
		case *m > 1 && cfg.SerializeImagePulls != nil && *cfg.SerializeImagePulls:
			bad("maxParallelImagePulls %d needs serializeImagePulls: false", *m)
		}
	}

	if cfg.MaxPods < 0 {
		bad("maxPods (--max-pods) %d must not be negative", cfg.MaxPods)
	}
	for _, ip := range cfg.ClusterDNS {
		if net.ParseIP(ip) == nil {
			bad("clusterDNS (--cluster-dns) %q is not an IP address", ip)
		}
	}

	// The API client and node registration, as upstream validates them.
	if cfg.KubeAPIQPS != nil && *cfg.KubeAPIQPS < 0 {
		bad("kubeAPIQPS (--kube-api-qps) %d must not be negative", *cfg.KubeAPIQPS)
	}
	if cfg.KubeAPIBurst < 0 {
		bad("kubeAPIBurst (--kube-api-burst) %d must not be negative", cfg.KubeAPIBurst)
	}
	if cfg.NodeLeaseDurationSeconds <= 0 {
		bad("nodeLeaseDurationSeconds %d must be greater than zero", cfg.NodeLeaseDurationSeconds)
	}
	errs = append(errs, validateTaints(cfg.RegisterWithTaints)...)
	if _, err := parseResourceList("kubeReserved (--kube-reserved)", cfg.KubeReserved); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseResourceList("systemReserved (--system-reserved)", cfg.SystemReserved); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, validateEvictionHard(cfg.EvictionHard)...)

	return joinErrors(errs)
}

// validateEndpoint accepts what the CRI client can dial on Linux: a unix
// socket URL with an absolute path.
func validateEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || u.Path == "" {
			return fmt.Errorf("want unix:// followed by an absolute socket path, e.g. %s", DefaultRuntimeEndpoint)
		}
		return nil
	case "npipe":
		return fmt.Errorf("npipe endpoints are for Windows; berth runs on Linux, use a unix:// socket")
	case "":
		return fmt.Errorf("want a unix:// URL, e.g. %s", DefaultRuntimeEndpoint)
	default:
		return fmt.Errorf("protocol %q is not supported, want unix://", u.Scheme)
	}
}
