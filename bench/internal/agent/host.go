package agent

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// EnsureCgroupRoot creates root in every cgroup v1 hierarchy (and the
// unified one), as the upstream kubelet requires its cgroupRoot to exist.
func EnsureCgroupRoot(root string) error {
	hs, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return err
	}
	for _, h := range hs {
		if !h.IsDir() {
			continue
		}
		if err := os.MkdirAll(filepath.Join("/sys/fs/cgroup", h.Name(), root), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// RemovePodCgroups removes the empty pod cgroups of the given pod UIDs
// under parent/kubepods/{,burstable,besteffort}/pod<uid> in every
// hierarchy: the runtime removes the containers' cgroups, an agent that was
// stopped before it cleaned up leaves the pods'.
func RemovePodCgroups(parent string, uids []string) {
	hs, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hs {
		for _, qos := range []string{"", "burstable", "besteffort"} {
			for _, u := range uids {
				_ = os.Remove(filepath.Join("/sys/fs/cgroup", h.Name(), parent, "kubepods", qos, "pod"+u))
			}
		}
	}
}

// UnmountUnder lazily unmounts every mount point under dir, deepest
// first: an agent stopped with pods leaves their volumes (tmpfs for
// tokens and secrets) mounted in its root directory.
func UnmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], prefix) {
			mounts = append(mounts, fields[4])
		}
	}
	slices.Sort(mounts)
	slices.Reverse(mounts)
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	return sc.Err()
}
