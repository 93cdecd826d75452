package status

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// setPodIPs sets podIP(s) from the active sandbox: at most one address of
// the node's primary IP family, then one of the other family. When no
// sandbox is ready the old addresses stay (a finished pod keeps its IP in
// its status, as upstream). Host-network pods get the node's addresses.
func setPodIPs(s *v1.PodStatus, in Input) {
	var ips []string
	if in.Runtime.ActiveSandboxID() != "" {
		ips = sortIPs(in.Runtime.LatestSandbox().IPs, in.NodeIPs)
	} else if !anySandboxReady(in.Runtime) {
		for _, ip := range in.Old.PodIPs {
			ips = append(ips, ip.IP)
		}
	}
	if len(ips) == 0 && in.Pod.Spec.HostNetwork {
		ips = sortIPs(in.NodeIPs, in.NodeIPs)
	}
	for _, ip := range ips {
		s.PodIPs = append(s.PodIPs, v1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		s.PodIP = ips[0]
	}
}

func anySandboxReady(rt *container.PodStatus) bool {
	if rt == nil {
		return false
	}
	for _, sb := range rt.Sandboxes {
		if sb.State == container.SandboxReady {
			return true
		}
	}
	return false
}

// sortIPs picks from ips the first address of the primary node IP's family
// (IPv4 when unknown), then the first of the other family, each in its
// canonical form. Unparseable addresses are dropped.
func sortIPs(ips, nodeIPs []string) []string {
	primaryV4 := true
	if len(nodeIPs) > 0 {
		if a, err := netip.ParseAddr(nodeIPs[0]); err == nil {
			primaryV4 = a.Unmap().Is4()
		}
	}
	pick := func(v4 bool) (string, bool) {
		for _, s := range ips {
			a, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			a = a.Unmap()
			if a.Is4() == v4 {
				return a.String(), true
			}
		}
		return "", false
	}
	var out []string
	if ip, ok := pick(primaryV4); ok {
		out = append(out, ip)
	}
	if ip, ok := pick(!primaryV4); ok {
		out = append(out, ip)
	}
	return out
}

// qosClass is the pod's QoS class, computed as upstream's ComputePodQOS
// (once set it never changes). BestEffort: no cpu or memory requests or
// limits anywhere; Guaranteed: every container has cpu and memory limits
// equal to its requests; else Burstable. Pod-level resources, when set,
// decide alone. A limit without a request counts as a request of the same
// amount, as API defaulting makes it.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	if r := pod.Spec.Resources; r != nil && hasCPUOrMemory(r) {
		return requirementsQOS(r)
	}
	var qos v1.PodQOSClass
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := requirementsQOS(&list[i].Resources)
			switch {
			case c == v1.PodQOSBurstable:
				return c
			case qos == "":
				qos = c
			case qos != c:
				return v1.PodQOSBurstable // Guaranteed and BestEffort mixed
			}
		}
	}
	if qos == "" {
		return v1.PodQOSBestEffort
	}
	return qos
}

var qosResources = []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory}

func hasCPUOrMemory(r *v1.ResourceRequirements) bool {
	for _, name := range qosResources {
		if _, ok := r.Requests[name]; ok {
			return true
		}
		if _, ok := r.Limits[name]; ok {
			return true
		}
	}
	return false
}

// requirementsQOS classifies one set of requirements: each of cpu and memory
// is BestEffort (neither set), Guaranteed (request == limit) or Burstable;
// they must agree for the set to be other than Burstable.
func requirementsQOS(r *v1.ResourceRequirements) v1.PodQOSClass {
	if len(r.Requests) == 0 && len(r.Limits) == 0 {
		return v1.PodQOSBestEffort
	}
	var qos v1.PodQOSClass
	for _, name := range qosResources {
		lim := r.Limits[name]
		req, ok := r.Requests[name]
		if !ok {
			req = lim
		}
		var c v1.PodQOSClass
		switch {
		case !req.Equal(lim):
			return v1.PodQOSBurstable
		case req.IsZero():
			c = v1.PodQOSBestEffort
		default:
			c = v1.PodQOSGuaranteed
		}
		if qos == "" {
			qos = c
		} else if qos != c {
			return v1.PodQOSBurstable
		}
	}
	return qos
}
