package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// subPathsDir is the directory of a pod's subPath bind mounts, as
// upstream's: <pod dir>/volume-subpaths/<volume>/<container>/<index>. The
// volume manager unmounts and removes it with the pod's volumes, and with
// the directories of pods gone while berth was down.
const subPathsDir = "volume-subpaths"

// subPathBind is one subPath to bind: the path inside its volume, both with
// every symlink resolved, and where the bind mount goes.
type subPathBind struct {
	volumePath string
	path       string
	target     string
	// opened, if set, is called between opening the subPath and mounting
	// it: the window a container would race in (tests swap files there).
	opened func()
}

// subPathTarget is where the subPath of a container's index-th volume
// mount is bind-mounted. Container and volume names are DNS labels, safe
// as path segments.
func subPathTarget(podDir, volume, container string, index int) string {
	return filepath.Join(podDir, subPathsDir, volume, container, strconv.Itoa(index))
}

// bindSubPath bind-mounts b.path onto b.target and returns b.target, the
// path the runtime mounts into the container. It closes the race between
// checking a subPath and the runtime resolving it again (CVE-2017-1002101,
// CVE-2021-25741) as upstream does: every component below the volume is
// opened with openat(O_PATH|O_NOFOLLOW), so that a symlink swapped in
// anywhere fails the open, and the mount's source is the opened file
// itself (/proc/self/fd/N), which no later rename or symlink can redirect.
// A target already bound to the same file is reused (a restarted
// container); one bound to another is replaced.
func bindSubPath(b subPathBind) (string, error) {
	if !within(b.volumePath, b.path) {
		return "", fmt.Errorf("subpath %q not within volume path %q", b.path, b.volumePath)
	}
	fd, err := openNoFollow(b.volumePath, b.path)
	if err != nil {
		return "", fmt.Errorf("open subpath %s: %w", b.path, err)
	}
	defer unix.Close(fd)
	var src unix.Stat_t
	if err := unix.Fstat(fd, &src); err != nil {
		return "", fmt.Errorf("stat subpath %s: %w", b.path, err)
	}

	var dst unix.Stat_t
	if err := unix.Lstat(b.target, &dst); err == nil {
		if sameFile(&src, &dst) {
			return b.target, nil
		}
		// Bound to something else, or left from a failed attempt.
		if err := unix.Unmount(b.target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return "", fmt.Errorf("unmount stale subpath mount %s: %w", b.target, err)
		}
		// A mount point of the wrong type (the subPath was a file and is a
		// directory now, or the reverse) is made again.
		if err := os.Remove(b.target); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			return "", fmt.Errorf("remove stale subpath mount point %s: %w", b.target, err)
		}
	}
	if err := makeBindTarget(b.target, src.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
		return "", err
	}
	if b.opened != nil {
		b.opened()
	}
	source := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := unix.Mount(source, b.target, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("bind-mount subpath %s on %s: %w", b.path, b.target, err)
	}
	// The mount must show what was opened; anything else is a bug here.
	if err := unix.Lstat(b.target, &dst); err != nil || !sameFile(&src, &dst) {
		_ = unix.Unmount(b.target, unix.MNT_DETACH)
		return "", fmt.Errorf("subpath mount %s does not show %s", b.target, b.path)
	}
	return b.target, nil
}

// makeBindTarget creates the mount point: a directory for a directory, an
// empty file for anything else (a bind mount over a file takes the type of
// its source).
func makeBindTarget(target string, dir bool) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return fmt.Errorf("create subpath mount directory: %w", err)
	}
	if dir {
		if err := os.Mkdir(target, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create subpath mount point: %w", err)
		}
		return nil
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create subpath mount point: %w", err)
	}
	return f.Close()
}

// openNoFollow opens path, which lies inside base, one component at a time
// with O_PATH|O_NOFOLLOW, and fails on a symlink anywhere below base. base
// itself must have its symlinks resolved. The caller closes the fd.
func openNoFollow(base, path string) (int, error) {
	rel, err := filepath.Rel(base, path)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Open(base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", base, err)
	}
	current := base
	for _, seg := range strings.Split(rel, string(filepath.Separator)) {
		if seg == "." || seg == "" {
			continue
		}
		if seg == ".." {
			unix.Close(fd)
			return -1, fmt.Errorf("path %s is outside of %s", path, base)
		}
		current = filepath.Join(current, seg)
		child, err := unix.Openat(fd, seg, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", current, err)
		}
		fd = child
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("stat %s: %w", current, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(fd)
			return -1, fmt.Errorf("unexpected symlink found %s", current)
		}
	}
	return fd, nil
}

func sameFile(a, b *unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }
