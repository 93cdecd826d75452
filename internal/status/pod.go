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
