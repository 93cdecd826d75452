package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
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
	if net.ParseIP(cfg.Address) == nil {
		bad("address (--address) %q is not an IP address", cfg.Address)
	}
	if ns := cfg.UserNamespaces; ns != nil && ns.IDsPerPod != nil {
		switch ids := *ns.IDsPerPod; {
		case ids < 65536:
			bad("invalid configuration: userNamespaces.idsPerPod must not be less than %d", 65536)
		case ids%65536 != 0:
			bad("invalid configuration: userNamespaces.idsPerPod must be a multiple of %d", 65536)
		case ids > math.MaxUint32:
			bad("invalid configuration: userNamespaces.idsPerPod must not be more than %d", int64(math.MaxUint32))
		}
	}
	errs = append(errs, validateServer(cfg)...)
	errs = append(errs, validateShutdown(cfg)...)

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
	if cfg.EventRecordQPS != nil && *cfg.EventRecordQPS < 0 {
		bad("eventRecordQPS (--event-qps) %d must not be negative", *cfg.EventRecordQPS)
	}
	if cfg.EventBurst < 0 {
		bad("eventBurst (--event-burst) %d must not be negative", cfg.EventBurst)
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
	errs = append(errs, validateCgroups(cfg)...)

	// Container logs, as upstream validates them and its log manager
	// parses them.
	if _, err := parseLogMaxSize(cfg.ContainerLogMaxSize); err != nil {
		bad("containerLogMaxSize (--container-log-max-size) %q: %v", cfg.ContainerLogMaxSize, err)
	}
	if n := ptr.Deref(cfg.ContainerLogMaxFiles, 0); n < 2 {
		bad("containerLogMaxFiles (--container-log-max-files) %d must be at least 2", n)
	}
	if n := ptr.Deref(cfg.ContainerLogMaxWorkers, 0); n < 1 {
		bad("containerLogMaxWorkers %d must be at least 1", n)
	}
	if cfg.ContainerLogMonitorInterval == nil || cfg.ContainerLogMonitorInterval.Duration < 3*time.Second {
		bad("containerLogMonitorInterval must be at least 3s, got %v", ptr.Deref(cfg.ContainerLogMonitorInterval, metav1.Duration{}).Duration)
	}

	for _, c := range []struct{ name, val string }{
		{"kubeletCgroups (--kubelet-cgroups)", cfg.KubeletCgroups},
		{"systemCgroups (--system-cgroups)", cfg.SystemCgroups},
	} {
		if c.val != "" && !path.IsAbs(c.val) {
			bad("%s %q must be an absolute cgroup name, starting with /", c.name, c.val)
		}
	}
	if cfg.SystemCgroups != "" && cfg.CgroupRoot == "" {
		// Upstream's rule: system processes are moved out of the root
		// cgroup only when pods have a root of their own.
		bad("systemCgroups (--system-cgroups) needs cgroupRoot")
	}

	return joinErrors(errs)
}

// parseLogMaxSize parses containerLogMaxSize into bytes, as upstream's log
// manager does; a negative size disables rotation. Zero, which would rotate
// every log at each check, is refused.
func parseLogMaxSize(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("not a quantity such as 10Mi: %w", err)
	}
	n, ok := q.AsInt64()
	switch {
	case !ok:
		return 0, errors.New("not a whole number of bytes")
	case n == 0:
		return 0, errors.New("must not be zero; a negative size disables rotation")
	}
	return n, nil
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
