package admission

import (
	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// bindAll is the host IP that stands for every address.
const bindAll = "0.0.0.0"

type hostPort struct {
	ip       string
	protocol v1.Protocol
	port     int32
}

// hostPorts lists the host ports a pod holds while it runs: those of its app
// containers and sidecars (a plain init container's ports are not held).
// An empty IP means every address, an empty protocol TCP.
func hostPorts(pod *v1.Pod) []hostPort {
	var ports []hostPort
	add := func(c *v1.Container) {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
			if hp.ip == "" {
				hp.ip = bindAll
			}
			if hp.protocol == "" {
				hp.protocol = v1.ProtocolTCP
			}
			ports = append(ports, hp)
		}
	}
	for i := range pod.Spec.InitContainers {
		if container.IsSidecar(&pod.Spec.InitContainers[i]) {
			add(&pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	return ports
}

// portsConflict reports whether pod wants a host port that one of others
// holds: the same protocol and port on the same IP, or where either side
// binds every address. (Ports within the pod itself are not compared, as
// upstream does not.)
func portsConflict(pod *v1.Pod, others []*v1.Pod) bool {
	want := hostPorts(pod)
	if len(want) == 0 {
		return false
	}
	type protoPort struct {
		protocol v1.Protocol
		port     int32
	}
	used := map[protoPort]map[string]bool{} // by protocol/port: the IPs bound
	for _, p := range others {
		for _, hp := range hostPorts(p) {
			k := protoPort{hp.protocol, hp.port}
			if used[k] == nil {
				used[k] = map[string]bool{}
			}
			used[k][hp.ip] = true
		}
	}
	for _, hp := range want {
		ips := used[protoPort{hp.protocol, hp.port}]
		if len(ips) > 0 && (hp.ip == bindAll || ips[bindAll] || ips[hp.ip]) {
			return true
		}
	}
	return false
}
