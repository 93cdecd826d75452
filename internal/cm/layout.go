package cm

import (
	"path"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Layout names the node's cgroups as upstream's CgroupName does, in the
// form the cgroup driver expects: "/kubepods/burstable/pod<uid>" for
// cgroupfs, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice"
// for systemd. The names are also the paths below each hierarchy's mount.
type Layout struct {
	// Root is cgroupRoot ("/" when empty).
	Root string
	// PerQOS is cgroupsPerQOS: pods get cgroups of their own under
	// Root/kubepods, Burstable and BestEffort ones below a QoS cgroup.
	// Without it every pod's cgroup parent is Root itself.
	PerQOS bool
	// Systemd is set for the systemd cgroup driver.
	Systemd bool
}

// NewLayout returns the layout for cgroupRoot, cgroupsPerQOS and
// cgroupDriver ("cgroupfs" or "systemd").
func NewLayout(root string, perQOS bool, driver string) Layout {
	return Layout{Root: root, PerQOS: perQOS, Systemd: driver == "systemd"}
}

// nodeAllocatableName is upstream's defaultNodeAllocatableCgroupName.
const nodeAllocatableName = "kubepods"

// podPrefix prefixes a pod's UID in its cgroup's name.
const podPrefix = "pod"

// rootParts splits Root into name components, as upstream's
// ParseCgroupfsToCgroupName.
func (l Layout) rootParts() []string {
	var parts []string
	for _, p := range strings.Split(l.Root, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}

// name renders name components in the driver's form.
func (l Layout) name(parts []string) string {
	if len(parts) == 0 {
		return "/"
	}
	if !l.Systemd {
		return "/" + path.Join(parts...)
	}
	// systemd nests slices: each level's name carries its parents',
	// joined by "-", so a "-" inside a component is escaped as "_"
	// (upstream's ToSystemd and systemd's ExpandSlice).
	var b strings.Builder
	prefix := ""
	for _, p := range parts {
		p = strings.ReplaceAll(p, "-", "_")
		if prefix == "" {
			prefix = p
		} else {
			prefix += "-" + p
		}
		b.WriteString("/" + prefix + ".slice")
	}
	return b.String()
}

// nodeParts are the components of the node allocatable cgroup.
func (l Layout) nodeParts() []string {
	parts := l.rootParts()
	if l.PerQOS {
		parts = append(parts, nodeAllocatableName)
	}
	return parts
}

// Pods is the cgroup all pods live under ("/kubepods"), upstream's
// NodeAllocatableRoot and the "pods" system container of the Summary API.
func (l Layout) Pods() string { return l.name(l.nodeParts()) }

// qosParts are the components of a QoS class's cgroup: Guaranteed pods
// sit directly in the node allocatable cgroup.
func (l Layout) qosParts(qos v1.PodQOSClass) []string {
	parts := l.nodeParts()
	if !l.PerQOS {
		return parts // there are no QoS cgroups
	}
	switch qos {
	case v1.PodQOSBurstable, v1.PodQOSBestEffort:
		parts = append(parts, strings.ToLower(string(qos)))
	}
	return parts
}

// QOS is the cgroup of a QoS class; Guaranteed's is Pods.
func (l Layout) QOS(qos v1.PodQOSClass) string { return l.name(l.qosParts(qos)) }

// Pod is the cgroup of a pod of the given class, the cgroup parent of its
// sandbox. Without PerQOS it is Root for every pod, as upstream's no-op
// pod container manager answers.
func (l Layout) Pod(uid types.UID, qos v1.PodQOSClass) string {
	if !l.PerQOS {
		return l.name(l.rootParts())
	}
	return l.name(append(l.qosParts(qos), podPrefix+string(uid)))
}

// PodCandidates lists where a pod's own cgroup may be, one place per QoS
// class, for callers that know only its UID; none without PerQOS.
func (l Layout) PodCandidates(uid types.UID) []string {
	if !l.PerQOS {
		return nil
	}
	return []string{
		l.Pod(uid, v1.PodQOSBurstable),
		l.Pod(uid, v1.PodQOSBestEffort),
		l.Pod(uid, v1.PodQOSGuaranteed),
	}
}

// ParseName converts a configured cgroup name (kubeReservedCgroup,
// systemReservedCgroup) to the cgroup's path, as upstream's
// CgroupManager.CgroupName followed by Name: a cgroupfs name is taken
// as is ("/kube-reserved"); a systemd one by its last slice
// ("/kube.slice/kube-reserved.slice" is "/kube.slice/kube-reserved.slice",
// and so is "kube-reserved.slice").
func (l Layout) ParseName(name string) string {
	var parts []string
	if l.Systemd {
		base := strings.TrimSuffix(path.Base(name), ".slice")
		if base == "/" || base == "." || base == "" {
			return "/"
		}
		for _, p := range strings.Split(base, "-") {
			parts = append(parts, strings.ReplaceAll(p, "_", "-"))
		}
		return l.name(parts)
	}
	for _, p := range strings.Split(name, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return l.name(parts)
}
