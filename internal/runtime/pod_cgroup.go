package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cgroupRoot is where cgroup filesystems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// removePodCgroups removes the pod-level cgroup that the runtime created
// from the sandbox's cgroup parent. runc removes the container cgroups but
// not their parent, so without this every pod would leave directories
// behind. The pod's QoS class is not known here (the spec may be gone), so
// every class's path is tried; rmdir only removes empty cgroups, so a
// cgroup still in use is never touched. Errors are not fatal: a leftover
// empty cgroup costs nothing but a directory.
func removePodCgroups(root, driver string, uid types.UID) error {
	var paths []string
	for _, qos := range []v1.PodQOSClass{v1.PodQOSGuaranteed, v1.PodQOSBurstable, v1.PodQOSBestEffort} {
		paths = append(paths, cgroupParentFor(uid, qos, driver))
	}
	hierarchies, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	// cgroup v2 (unified at root) and v1 hierarchies (one per controller,
	// plus "unified" on hybrid hosts) are all directories under root.
	dirs := []string{root}
	for _, h := range hierarchies {
		if h.IsDir() {
			dirs = append(dirs, filepath.Join(root, h.Name()))
		}
	}
	var errs []error
	for _, d := range dirs {
		for _, p := range paths {
			if err := os.Remove(filepath.Join(d, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
