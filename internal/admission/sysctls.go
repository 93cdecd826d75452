package admission

import (
	"fmt"
	"regexp"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
)

// ReasonSysctlForbidden is the status reason of a pod that sets a sysctl
// the node does not allow (upstream pkg/kubelet/sysctl).
const ReasonSysctlForbidden = "SysctlForbidden"

// safeSysctls are the sysctls every pod may set (upstream
// safe_sysctls.go), each with the kernel version that namespaced it: on an
// older kernel setting it would change the node's value.
var safeSysctls = []struct{ name, kernel string }{
	{"kernel.shm_rmid_forced", ""},
	{"net.ipv4.ip_local_port_range", ""},
	{"net.ipv4.tcp_syncookies", ""},
	{"net.ipv4.ping_group_range", ""},
	{"net.ipv4.ip_unprivileged_port_start", ""},
	{"net.ipv4.ip_local_reserved_ports", "3.16"},
	{"net.ipv4.tcp_keepalive_time", "4.5"},
	{"net.ipv4.tcp_fin_timeout", "4.6"},
	{"net.ipv4.tcp_keepalive_intvl", "4.5"},
	{"net.ipv4.tcp_keepalive_probes", "4.5"},
	{"net.ipv4.tcp_rmem", "4.15"},
	{"net.ipv4.tcp_wmem", "4.15"},
	{"net.ipv4.tcp_slow_start_after_idle", "4.15"},
	{"net.ipv4.tcp_notsent_lowat", "4.6"},
}

// SafeSysctls lists the safe sysctls for a kernel; with an unknown kernel
// (nil) only those namespaced in every kernel.
func SafeSysctls(kernel *version.Version) []string {
	var out []string
	for _, s := range safeSysctls {
		if s.kernel == "" || (kernel != nil && kernel.AtLeast(version.MustParseGeneric(s.kernel))) {
			out = append(out, s.name)
		}
	}
	return out
}

// sysctlPattern is what allowedUnsafeSysctls accepts: a sysctl name with
// '.' or '/' separators, optionally ending in '*' (upstream
// policyvalidation.IsValidSysctlPattern).
var sysctlPattern = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]$`)

const maxSysctlLength = 253

// Sysctls is the node's sysctl allowlist, checked at admission as
// upstream's kubelet does: a pod may set a listed sysctl (or one under a
// listed prefix) unless it lives in a namespace the pod shares with the
// node (net with hostNetwork, IPC with hostIPC, user without a user
// namespace of its own).
type Sysctls struct {
	names    map[string]utilsysctl.Namespace
	prefixes map[string]utilsysctl.Namespace
}

// NewSysctls builds the allowlist from patterns: the safe sysctls and the
// node's allowedUnsafeSysctls. A pattern that is malformed or names a
// sysctl not known to be namespaced is an error (berth does not start), as
// upstream.
func NewSysctls(patterns []string) (*Sysctls, error) {
	s := &Sysctls{names: map[string]utilsysctl.Namespace{}, prefixes: map[string]utilsysctl.Namespace{}}
	for _, p := range patterns {
		if len(p) > maxSysctlLength || !sysctlPattern.MatchString(p) {
			return nil, fmt.Errorf("sysctl %q must have at most %d characters and match regex %s", p, maxSysctlLength, sysctlPattern)
		}
		ns, nameOrPrefix, prefixed := utilsysctl.GetNamespace(p)
		if ns == utilsysctl.UnknownNamespace {
			return nil, fmt.Errorf("the sysctls %q are not known to be namespaced", nameOrPrefix)
		}
		if prefixed {
			s.prefixes[nameOrPrefix] = ns
		} else {
			s.names[nameOrPrefix] = ns
		}
	}
	return s, nil
}

// Admit rejects a pod that sets a sysctl the allowlist does not allow it,
// with upstream's reason and message.
func (s *Sysctls) Admit(pod *v1.Pod) Result {
	sc := pod.Spec.SecurityContext
	if sc == nil || len(sc.Sysctls) == 0 {
		return Result{Admit: true}
	}
	// hostUsers defaults to true: the pod shares the node's user namespace.
	hostUsers := pod.Spec.HostUsers == nil || *pod.Spec.HostUsers
	for _, sysctl := range sc.Sysctls {
		if err := s.check(sysctl.Name, pod.Spec.HostNetwork, pod.Spec.HostIPC, hostUsers); err != nil {
			return Result{Reason: ReasonSysctlForbidden, Message: fmt.Sprintf("forbidden sysctl: %v", err)}
		}
	}
	return Result{Admit: true}
}

func (s *Sysctls) check(name string, hostNet, hostIPC, hostUsers bool) error {
	name = utilsysctl.NormalizeName(name)
	ns, ok := s.names[name]
	if !ok {
		for p, pns := range s.prefixes {
			if strings.HasPrefix(name, p) {
				ns, ok = pns, true
				break
			}
		}
	}
	if !ok {
		return fmt.Errorf("%q not allowlisted", name)
	}
	if (ns == utilsysctl.IPCNamespace && hostIPC) || (ns == utilsysctl.NetNamespace && hostNet) || (ns == utilsysctl.UserNamespace && hostUsers) {
		return fmt.Errorf("%q not allowed with host %s enabled", name, ns)
	}
	return nil
}
