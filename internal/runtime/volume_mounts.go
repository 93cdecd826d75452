package runtime

import (
	"github.com/berth-dev/berth/internal/container"

	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// mountParams is what converting a container's volume mounts needs besides
// the pod: where each volume is on the host, the container's environment
// (for subPathExpr) and whether the runtime can make mounts recursively
// read-only.
type mountParams struct {
	hostPath    func(volumeName string) (string, bool)
	env         []envVar
	supportsRRO bool
	// podDir is the pod's directory, under which subPaths are bind-mounted.
	podDir string
	// bindSubPath makes the bind mount of a subPath and returns the path to
	// hand the runtime (bindSubPath; tests record instead).
	bindSubPath func(subPathBind) (string, error)
	// images are the pulled images of the image volumes, by volume name.
	images map[string]*runtimeapi.ImageSpec
}

// volumeMounts converts container c's volumeMounts to CRI mounts, as
// upstream's makeMounts does: the volume's host path (with subPath or
// subPathExpr, checked and created inside the volume, then bind-mounted
// under the pod's directory), read-only when the mount or the volume type
// asks for it, the mount propagation. Errors are configuration errors
// (CreateContainerConfigError). The only IO is on the host side of
// subPaths.
func volumeMounts(pod *v1.Pod, c *v1.Container, p mountParams) ([]*runtimeapi.Mount, error) {
	if err := checkVolumeDevices(pod, c); err != nil {
		return nil, err
	}
	var out []*runtimeapi.Mount
	for i, vm := range c.VolumeMounts {
		vol := podVolume(pod, vm.Name)
		if vol != nil && vol.Image != nil {
			mount, err := imageMount(vm, p)
			if err != nil {
				return nil, err
			}
			out = append(out, mount)
			continue
		}
		hostPath, ok := "", false
		if vol != nil && p.hostPath != nil {
			hostPath, ok = p.hostPath(vm.Name)
		}
		if !ok {
			// Either not in the spec or not set up: the volume manager
			// should have set it up before the container was started.
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}

		subPath, err := mountSubPath(vm, p.env)
		if err != nil {
			return nil, err
		}
		if subPath != "" {
			base, resolved, err := prepareSubPath(hostPath, subPath)
			if err == nil {
				resolved, err = p.bindSubPath(subPathBind{
					volumePath: base,
					path:       resolved,
					target:     subPathTarget(p.podDir, vm.Name, c.Name, i),
				})
			}
			if err != nil {
				// Like upstream, the details of the host's file system stay
				// out of the pod's status; the log has them.
				klog.ErrorS(err, "Failed to prepare subPath for volumeMount of the container", "pod", klog.KObj(pod), "containerName", c.Name, "volumeMountName", vm.Name)
				var mkErr mkdirError
				if errors.As(err, &mkErr) {
					return nil, fmt.Errorf("failed to create subPath directory for volumeMount %q of container %q", vm.Name, c.Name)
				}
				return nil, fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q", vm.Name, c.Name)
			}
			hostPath = resolved
		}

		propagation, err := mountPropagation(vm.MountPropagation)
		if err != nil {
			return nil, err
		}
		if propagation == runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL && !isPrivileged(c) {
			// The API server rejects this; a static pod reaches berth unvalidated.
			return nil, fmt.Errorf("volume mount %q: Bidirectional mount propagation is available only to privileged containers", vm.Name)
		}
		rro, err := recursiveReadOnly(vm, p.supportsRRO)
		if err != nil {
			return nil, err
		}
		out = append(out, &runtimeapi.Mount{
			ContainerPath:     absolutePath(vm.MountPath),
			HostPath:          hostPath,
			Readonly:          vm.ReadOnly || alwaysReadOnly(vol),
			RecursiveReadOnly: rro,
			Propagation:       propagation,
			// Volumes are not relabelled: berth manages no SELinux labels.
			SelinuxRelabel: false,
		})
	}
	return out, nil
}

// imageMount is the CRI mount of an image volume: the runtime mounts the
// pulled image (or its subPath) read-only, with nothing on the host side.
func imageMount(vm v1.VolumeMount, p mountParams) (*runtimeapi.Mount, error) {
	spec, ok := p.images[vm.Name]
	if !ok {
		return nil, fmt.Errorf("cannot find image volume %q to mount: its image was not pulled", vm.Name)
	}
	subPath, err := mountSubPath(vm, p.env)
	if err != nil {
		return nil, err
	}
	propagation, err := mountPropagation(vm.MountPropagation)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.Mount{
		ContainerPath: absolutePath(vm.MountPath),
		Image:         spec,
		ImageSubPath:  subPath,
		Readonly:      true,
		Propagation:   propagation,
	}, nil
}

// mountSubPath is the mount's subPath, or its subPathExpr expanded with
// env, checked to stay inside the volume.
func mountSubPath(vm v1.VolumeMount, env []envVar) (string, error) {
	subPath := vm.SubPath
	if vm.SubPathExpr != "" {
		var err error
		if subPath, err = expandSubPathExpr(vm.SubPathExpr, env); err != nil {
			return "", err
		}
	}
	if subPath != "" {
		if err := checkSubPath(subPath); err != nil {
			return "", err
		}
	}
	return subPath, nil
}

// mountsAt reports whether one of the container's volume mounts is at path,
// in which case berth does not mount its own file there.
func mountsAt(c *v1.Container, path string) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(vm v1.VolumeMount) bool { return absolutePath(vm.MountPath) == path })
}

func absolutePath(p string) string {
	return filepath.Clean("/" + p)
}

// alwaysReadOnly reports volume types that are mounted read-only whatever
// the mount says: their content belongs to the kubelet (upstream: the
// plugins' ReadOnly attribute), and claims marked read-only.
func alwaysReadOnly(vol *v1.Volume) bool {
	src := vol.VolumeSource
	switch {
	case src.ConfigMap != nil, src.Secret != nil, src.DownwardAPI != nil, src.Projected != nil:
		return true
	case src.PersistentVolumeClaim != nil:
		return src.PersistentVolumeClaim.ReadOnly
	}
	return false
}

func isPrivileged(c *v1.Container) bool {
	return c.SecurityContext != nil && isTrue(c.SecurityContext.Privileged)
}

// checkVolumeDevices fails for raw block devices, which berth does not
// support: running without the device would be worse than not running.
func checkVolumeDevices(pod *v1.Pod, c *v1.Container) error {
	for _, d := range c.VolumeDevices {
		vol := podVolume(pod, d.Name)
		if vol == nil {
			return fmt.Errorf("cannot find volume %q to mount into container %q", d.Name, c.Name)
		}
		return errNotSupported{fmt.Sprintf("volume device %q of type %s", d.Name, volumeType(vol))}
	}
	return nil
}

// expandSubPathExpr expands $(VAR) references in a subPathExpr from the
// container's environment; a variable that is unset or empty is an error
// (upstream ExpandContainerVolumeMounts).
func expandSubPathExpr(expr string, env []envVar) (string, error) {
	vars := make(map[string]string, len(env))
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	var missing []string
	out := container.Expand(expr, func(name string) (string, bool) {
		v := vars[name]
		if v == "" && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		return v, true
	})
	if len(missing) > 0 {
		slices.Sort(missing)
		return "", fmt.Errorf("missing value for %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// checkSubPath rejects what the API server rejects: absolute paths and
// back-steps, which would leave the volume.
func checkSubPath(subPath string) error {
	if filepath.IsAbs(subPath) {
		return fmt.Errorf("error SubPath `%s` must not be an absolute path", subPath)
	}
	if slices.Contains(strings.Split(filepath.ToSlash(subPath), "/"), "..") {
		return fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", subPath)
	}
	return nil
}

// mkdirError marks a failure to create a missing subPath directory.
type mkdirError struct{ err error }

func (e mkdirError) Error() string { return "create subPath directory: " + e.err.Error() }
func (e mkdirError) Unwrap() error { return e.err }

// prepareSubPath returns the volume's path and the path of subPath in it,
// both with every symlink resolved. A missing subPath is created
// as a directory with the volume root's mode (as upstream does, so that the
// runtime does not create it with another owner and mode).
//
// A container can write symlinks into its volumes, so the subPath is
// looked at only through an os.Root of the volume, which refuses to follow
// a link out of it; the resolved path must lie inside the volume too.
// This is only the check: a container may swap a directory of the path
// for a symlink right after it, so the path is then opened and bound by
// bindSubPath, which fails on any symlink.
func prepareSubPath(volumePath, subPath string) (base, resolved string, err error) {
	root, err := os.OpenRoot(volumePath)
	if err != nil {
		return "", "", err
	}
	defer root.Close()
	_, err = root.Stat(subPath)
	if errors.Is(err, fs.ErrNotExist) {
		fi, statErr := os.Stat(volumePath)
		if statErr != nil {
			return "", "", mkdirError{statErr}
		}
		mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if err := mkdirAllIn(root, subPath, mode); err != nil {
			return "", "", mkdirError{err}
		}
	} else if err != nil {
		return "", "", err // among others: a symlink that leaves the volume
	}

	if base, err = filepath.EvalSymlinks(volumePath); err != nil {
		return "", "", err
	}
	if resolved, err = filepath.EvalSymlinks(filepath.Join(volumePath, subPath)); err != nil {
		return "", "", err
	}
	if !within(base, resolved) {
		return "", "", fmt.Errorf("subPath %q resolves to %s, outside the volume %s", subPath, resolved, base)
	}
	return base, resolved, nil
}

// mkdirAllIn creates each missing directory of path inside root with mode
// (regardless of the umask).
func mkdirAllIn(root *os.Root, path string, mode fs.FileMode) error {
	parts := strings.Split(filepath.Clean(path), string(filepath.Separator))
	for i := range parts {
		dir := filepath.Join(parts[:i+1]...)
		err := root.Mkdir(dir, mode&fs.ModePerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := root.Chmod(dir, mode); err != nil {
			return err
		}
	}
	return nil
}

func within(base, path string) bool {
	if base == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == base || strings.HasPrefix(path, base+"/")
}

// mountPropagation converts a mount's propagation (upstream
// translateMountPropagation); unset means private.
func mountPropagation(mode *v1.MountPropagationMode) (runtimeapi.MountPropagation, error) {
	switch {
	case mode == nil, *mode == v1.MountPropagationNone:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	case *mode == v1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, nil
	case *mode == v1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, nil
	}
	return 0, fmt.Errorf("invalid MountPropagation mode: %q", *mode)
}

// recursiveReadOnly resolves a mount's recursiveReadOnly (upstream
// resolveRecursiveReadOnly).
func recursiveReadOnly(vm v1.VolumeMount, supported bool) (bool, error) {
	if vm.RecursiveReadOnly == nil || *vm.RecursiveReadOnly == v1.RecursiveReadOnlyDisabled {
		return false, nil
	}
	if !vm.ReadOnly {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not read-only", vm.Name)
	}
	if vm.MountPropagation != nil && *vm.MountPropagation != v1.MountPropagationNone {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not compatible with propagation %q", vm.Name, *vm.MountPropagation)
	}
	switch mode := *vm.RecursiveReadOnly; mode {
	case v1.RecursiveReadOnlyIfPossible:
		return supported, nil
	case v1.RecursiveReadOnlyEnabled:
		if !supported {
			return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not supported by the runtime", vm.Name)
		}
		return true, nil
	default:
		return false, fmt.Errorf("unknown recursive read-only mode %q", mode)
	}
}
