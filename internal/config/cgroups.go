package config

import (
	"fmt"
	"path"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/internal/app"
)

// defaultCFSPeriod is cpuCFSQuotaPeriod's default.
var defaultCFSPeriod = metav1.Duration{Duration: 100 * time.Millisecond}

// Keys of enforceNodeAllocatable, as upstream's kubetypes.
const (
	enforcePods                      = "pods"
	enforceSystemReserved            = "system-reserved"
	enforceSystemReservedCompressibe = "system-reserved-compressible"
	enforceKubeReserved              = "kube-reserved"
	enforceKubeReservedCompressible  = "kube-reserved-compressible"
	enforceNone                      = "none"
)

// validateCgroups checks the cgroup settings internal/cm acts on, with
// upstream's rules and messages.
func validateCgroups(cfg *kubeletconfig.KubeletConfiguration) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	perQOS := ptr.Deref(cfg.CgroupsPerQOS, true)
	if p := ptr.Deref(cfg.CPUCFSQuotaPeriod, defaultCFSPeriod).Duration; p < time.Millisecond || p > time.Second {
		bad("invalid configuration: cpuCFSQuotaPeriod (--cpu-cfs-quota-period) %v must be between 1ms and 1sec, inclusive", p)
	}
	for _, c := range []struct{ name, val string }{
		{"cgroupRoot (--cgroup-root)", cfg.CgroupRoot},
		{"kubeReservedCgroup (--kube-reserved-cgroup)", cfg.KubeReservedCgroup},
		{"systemReservedCgroup (--system-reserved-cgroup)", cfg.SystemReservedCgroup},
	} {
		if c.val != "" && !path.IsAbs(c.val) {
			bad("%s %q must be an absolute cgroup name, starting with /", c.name, c.val)
		}
	}

	keys := cfg.EnforceNodeAllocatable
	if slices.Contains(keys, enforceSystemReserved) && slices.Contains(keys, enforceSystemReservedCompressibe) {
		bad("invalid configuration: both %q and %q cannot be specified together in enforceNodeAllocatable (--enforce-node-allocatable)", enforceSystemReserved, enforceSystemReservedCompressibe)
	}
	if slices.Contains(keys, enforceKubeReserved) && slices.Contains(keys, enforceKubeReservedCompressible) {
		bad("invalid configuration: both %q and %q cannot be specified together in enforceNodeAllocatable (--enforce-node-allocatable)", enforceKubeReserved, enforceKubeReservedCompressible)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			bad("invalid configuration: duplicated enforcements %q in enforceNodeAllocatable (--enforce-node-allocatable)", k)
			continue
		}
		seen[k] = true
		switch k {
		case enforcePods:
		case enforceSystemReserved, enforceSystemReservedCompressibe:
			if cfg.SystemReservedCgroup == "" {
				bad("invalid configuration: systemReservedCgroup (--system-reserved-cgroup) must be specified when %q or %q included in enforceNodeAllocatable (--enforce-node-allocatable)", enforceSystemReserved, enforceSystemReservedCompressibe)
			}
		case enforceKubeReserved, enforceKubeReservedCompressible:
			if cfg.KubeReservedCgroup == "" {
				bad("invalid configuration: kubeReservedCgroup (--kube-reserved-cgroup) must be specified when %q or %q included in enforceNodeAllocatable (--enforce-node-allocatable)", enforceKubeReserved, enforceKubeReservedCompressible)
			}
		case enforceNone:
			if len(keys) > 1 {
				bad("invalid configuration: enforceNodeAllocatable (--enforce-node-allocatable) may not contain additional enforcements when %q is specified", enforceNone)
			}
			continue
		default:
			bad("invalid configuration: option %q specified for enforceNodeAllocatable (--enforce-node-allocatable). Valid options are %q, %q, %q, %q, %q or %q",
				k, enforcePods, enforceSystemReserved, enforceSystemReservedCompressibe, enforceKubeReserved, enforceKubeReservedCompressible, enforceNone)
			continue
		}
		if !perQOS {
			bad("invalid configuration: cgroupsPerQOS (--cgroups-per-qos) must be set to true when %q contained in enforceNodeAllocatable (--enforce-node-allocatable)", k)
		}
	}
	return errs
}

// cgroupOptions reads the defaulted cgroup settings; with cgroupsPerQOS
// an empty cgroupRoot is "/", as upstream's kubelet command sets it.
func cgroupOptions(cfg *kubeletconfig.KubeletConfiguration) app.CgroupOptions {
	o := app.CgroupOptions{
		PerQOS:               ptr.Deref(cfg.CgroupsPerQOS, true),
		Root:                 cfg.CgroupRoot,
		CPUCFSQuota:          ptr.Deref(cfg.CPUCFSQuota, true),
		CPUCFSQuotaPeriod:    ptr.Deref(cfg.CPUCFSQuotaPeriod, defaultCFSPeriod).Duration,
		PodPidsLimit:         ptr.Deref(cfg.PodPidsLimit, -1),
		KubeReservedCgroup:   cfg.KubeReservedCgroup,
		SystemReservedCgroup: cfg.SystemReservedCgroup,
	}
	if o.PerQOS && o.Root == "" {
		o.Root = "/"
	}
	for _, k := range cfg.EnforceNodeAllocatable {
		if k != enforceNone {
			o.EnforceNodeAllocatable = append(o.EnforceNodeAllocatable, k)
		}
	}
	return o
}
