package stats

import (
	"os"
	"path"
	"slices"
	"strings"
)

// Where berth's pods live is internal/cm's Layout: with cgroupfs a pod is
// at /kubepods[/burstable|/besteffort]/pod<uid> and each container (the
// sandbox's pause container too) in a child named by its ID; systemd
// nests slices, kubepods-burstable-pod<uid_>.slice, with containers in
// scopes such as cri-containerd-<id>.scope.

// childFor picks the child cgroup that belongs to a container ID: its own
// name (cgroupfs) or a scope that carries it (systemd).
func childFor(children []string, id string) (string, bool) {
	if slices.Contains(children, id) {
		return id, true
	}
	for _, c := range children {
		if strings.Contains(c, id) {
			return c, true
		}
	}
	return "", false
}

// selfCgroup returns the cgroup berth runs in, from /proc/self/cgroup: the
// memory controller's on v1 (what upstream uses for the "kubelet" system
// container), the unified one on v2.
func selfCgroup(procRoot string, v2 bool) string {
	b, err := os.ReadFile(path.Join(procRoot, "self", "cgroup"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if !v2 && slices.Contains(strings.Split(parts[1], ","), "memory") {
			return parts[2]
		}
	}
	return ""
}
