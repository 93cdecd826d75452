package runtime

import (
	"fmt"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
)

// sandboxConfig converts a pod to the CRI sandbox config for a given
// attempt. hostDNS is the parsed host resolv.conf; userns the pod's user
// namespace (podUserNamespace). It returns events the caller should record
// (DNS fallbacks and trimming).
func sandboxConfig(pod *v1.Pod, attempt uint32, node *nodeConfig, hostDNS *runtimeapi.DNSConfig, userns *runtimeapi.UserNamespace) (*runtimeapi.PodSandboxConfig, []eventNote, error) {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      pod.Name,
			Namespace: pod.Namespace,
			Uid:       string(pod.UID),
			Attempt:   attempt,
		},
		Labels:       podLabels(pod),
		Annotations:  pod.Annotations,
		LogDirectory: podLogsDir(node.podLogsDir, pod.Namespace, pod.Name, pod.UID),
		PortMappings: portMappings(pod),
	}
	dns, notes := podDNSConfig(pod, node, hostDNS)
	cfg.DnsConfig = dns

	// A host-network pod has the node's hostname; the runtime sees to that
	// when Hostname is empty.
	if !pod.Spec.HostNetwork {
		hostname, domain, err := podHostnameAndDomain(pod, node.clusterDomain)
		if err != nil {
			return nil, notes, err
		}
		if hostname, err = kernelHostname(hostname, domain, pod.Spec.SetHostnameAsFQDN); err != nil {
			return nil, notes, err
		}
		cfg.Hostname = hostname
	}

	linux, err := sandboxLinuxConfig(pod, node, userns)
	if err != nil {
		return nil, notes, err
	}
	cfg.Linux = linux
	return cfg, notes, nil
}

func sandboxLinuxConfig(pod *v1.Pod, node *nodeConfig, userns *runtimeapi.UserNamespace) (*runtimeapi.LinuxPodSandboxConfig, error) {
	ns, err := namespaceOptions(pod, userns)
	if err != nil {
		return nil, err
	}
	sc := &runtimeapi.LinuxSandboxSecurityContext{
		Privileged:       hasPrivilegedContainer(pod),
		NamespaceOptions: ns,
		// The pause container runs confined whatever the workload asks for
		// (upstream issue #84623).
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
	}
	sysctls := map[string]string{}
	if psc := pod.Spec.SecurityContext; psc != nil {
		for _, s := range psc.Sysctls {
			sysctls[utilsysctl.NormalizeName(s.Name)] = s.Value
		}
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		groups, policy, err := supplementalGroups(psc)
		if err != nil {
			return nil, err
		}
		sc.SupplementalGroups, sc.SupplementalGroupsPolicy = groups, policy
		sc.SelinuxOptions = seLinuxOptions(psc.SELinuxOptions)
	}
	return &runtimeapi.LinuxPodSandboxConfig{
		CgroupParent:    node.cgroups.Pod(pod.UID, container.PodQOS(pod)),
		SecurityContext: sc,
		Sysctls:         sysctls,
		Resources:       sandboxResources(pod, node),
		Overhead:        overheadResources(pod, node),
	}, nil
}

// podLabels are the sandbox labels: the pod's own plus the three that
// identify it, which berth and crictl select on.
func podLabels(pod *v1.Pod) map[string]string {
	labels := make(map[string]string, len(pod.Labels)+3)
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[container.LabelPodName] = pod.Name
	labels[container.LabelPodNamespace] = pod.Namespace
	labels[container.LabelPodUID] = string(pod.UID)
	return labels
}

// podLogsDir is where the runtime writes a pod's container logs:
// <root>/<namespace>_<name>_<uid>.
func podLogsDir(root, namespace, name string, uid types.UID) string {
	return filepath.Join(root, strings.Join([]string{namespace, name, string(uid)}, "_"))
}

// portMappings lists every container port, as upstream does: the runtime
// publishes those with a hostPort and ignores the rest. A port name used
// twice in a container counts once.
func portMappings(pod *v1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	for _, c := range pod.Spec.Containers {
		names := map[string]bool{}
		for _, p := range c.Ports {
			name := p.Name
			if name == "" {
				family := "any"
				if p.HostIP != "" {
					family = "v4"
					if strings.Contains(p.HostIP, ":") {
						family = "v6"
					}
				}
				name = fmt.Sprintf("%s-%s-%s:%d:%d", family, p.Protocol, p.HostIP, p.ContainerPort, p.HostPort)
			}
			if names[name] {
				continue
			}
			names[name] = true
			out = append(out, &runtimeapi.PortMapping{
				Protocol:      protocol(p.Protocol),
				ContainerPort: p.ContainerPort,
				HostPort:      p.HostPort,
				HostIp:        p.HostIP,
			})
		}
	}
	return out
}

func protocol(p v1.Protocol) runtimeapi.Protocol {
	switch p {
	case v1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case v1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	}
	return runtimeapi.Protocol_TCP
}

// podHostnameAndDomain is the pod's short hostname (spec.hostname or the
// pod name, cut to 63 characters) and, with a subdomain, its DNS domain
// <subdomain>.<namespace>.svc.<cluster domain>.
func podHostnameAndDomain(pod *v1.Pod, clusterDomain string) (hostname, domain string, err error) {
	if o := pod.Spec.HostnameOverride; o != nil {
		if msgs := validation.IsDNS1123Subdomain(*o); len(msgs) > 0 {
			return "", "", fmt.Errorf("pod HostnameOverride %q is not a valid DNS subdomain: %s", *o, strings.Join(msgs, ";"))
		}
		h, err := truncateHostname(pod.Name, *o)
		return h, "", err
	}
	hostname = pod.Name
	if pod.Spec.Hostname != "" {
		if msgs := validation.IsDNS1123Label(pod.Spec.Hostname); len(msgs) > 0 {
			return "", "", fmt.Errorf("pod Hostname %q is not a valid DNS label: %s", pod.Spec.Hostname, strings.Join(msgs, ";"))
		}
		hostname = pod.Spec.Hostname
	}
	if hostname, err = truncateHostname(pod.Name, hostname); err != nil {
		return "", "", err
	}
	if sub := pod.Spec.Subdomain; sub != "" {
		if msgs := validation.IsDNS1123Label(sub); len(msgs) > 0 {
			return "", "", fmt.Errorf("pod Subdomain %q is not a valid DNS label: %s", sub, strings.Join(msgs, ";"))
		}
		domain = fmt.Sprintf("%s.%s.svc.%s", sub, pod.Namespace, clusterDomain)
	}
	return hostname, domain, nil
}

// truncateHostname cuts a hostname to the kernel's 63 characters, without
// leaving a trailing '-' or '.'.
func truncateHostname(podName, hostname string) (string, error) {
	const maxLen = 63
	if len(hostname) <= maxLen {
		return hostname, nil
	}
	h := strings.TrimRight(hostname[:maxLen], "-.")
	if h == "" {
		return "", fmt.Errorf("hostname for pod %q was invalid: %q", podName, hostname)
	}
	return h, nil
}

// kernelHostname is the hostname the sandbox gets: the FQDN when the pod
// asks for it with setHostnameAsFQDN and has a domain.
func kernelHostname(hostname, domain string, asFQDN *bool) (string, error) {
	if domain == "" || asFQDN == nil || !*asFQDN {
		return hostname, nil
	}
	const maxLen = 64
	fqdn := hostname + "." + domain
	if len(fqdn) > maxLen {
		return "", fmt.Errorf("failed to construct FQDN from pod hostname and cluster domain, FQDN %s is too long (%d characters is the max, %d characters requested)", fqdn, maxLen, len(fqdn))
	}
	return fqdn, nil
}

// namespaceOptions says which Linux namespaces the pod shares with the node
// (NODE), among its containers (POD) or keeps per container (CONTAINER).
func namespaceOptions(pod *v1.Pod, userns *runtimeapi.UserNamespace) (*runtimeapi.NamespaceOption, error) {
	// A pod that asks for a user namespace of its own never gets the
	// node's: without a mapping for it the pod does not run.
	// (POD is the zero mode: a nil userns reads as POD too.)
	if pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers && (userns.GetMode() != runtimeapi.NamespaceMode_POD || len(userns.GetUids()) == 0 || len(userns.GetGids()) == 0) {
		return nil, errNoUserNamespaces
	}
	ns := &runtimeapi.NamespaceOption{
		Network:       runtimeapi.NamespaceMode_POD,
		Ipc:           runtimeapi.NamespaceMode_POD,
		Pid:           runtimeapi.NamespaceMode_CONTAINER,
		UsernsOptions: userns,
	}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case pod.Spec.HostPID:
		ns.Pid = runtimeapi.NamespaceMode_NODE
	case pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace:
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	return ns, nil
}

func hasPrivilegedContainer(pod *v1.Pod) bool {
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			return true
		}
	}
	return false
}

// supplementalGroups lists fsGroup first, then supplementalGroups.
func supplementalGroups(psc *v1.PodSecurityContext) ([]int64, runtimeapi.SupplementalGroupsPolicy, error) {
	var groups []int64
	if psc.FSGroup != nil {
		groups = append(groups, *psc.FSGroup)
	}
	groups = append(groups, psc.SupplementalGroups...)
	var policy runtimeapi.SupplementalGroupsPolicy
	if psc.SupplementalGroupsPolicy != nil {
		v, ok := runtimeapi.SupplementalGroupsPolicy_value[string(*psc.SupplementalGroupsPolicy)]
		if !ok {
			return nil, 0, fmt.Errorf("unsupported supplementalGroupsPolicy: %s", *psc.SupplementalGroupsPolicy)
		}
		policy = runtimeapi.SupplementalGroupsPolicy(v)
	}
	return groups, policy, nil
}

func seLinuxOptions(o *v1.SELinuxOptions) *runtimeapi.SELinuxOption {
	if o == nil {
		return nil
	}
	return &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
}
