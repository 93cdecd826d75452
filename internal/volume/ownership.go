package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	v1 "k8s.io/api/core/v1"
)

// Permission bits upstream adds for the fsGroup (volume_linux.go).
const (
	rwMask   = os.FileMode(0o660)
	roMask   = os.FileMode(0o440)
	execMask = os.FileMode(0o110)
)

// applyFSGroup gives the pod's fsGroup access to a writable volume as
// upstream's SetVolumeOwnership does: every file and directory gets the
// group and its group (and owner) read/write bits, directories also setgid
// and execute; readOnly volumes get read bits only. Symlinks are chowned
// but not chmodded (that would change their target). With policy
// OnRootMismatch nothing is walked when the root already looks right.
func applyFSGroup(dir string, fsGroup *int64, policy *v1.PodFSGroupChangePolicy, readOnly bool) error {
	if fsGroup == nil {
		return nil
	}
	if policy != nil && *policy == v1.FSGroupChangeOnRootMismatch && !needsOwnershipChange(dir, *fsGroup, readOnly) {
		return nil
	}
	gid := int(*fsGroup)
	var errs []error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, -1, gid); err != nil {
			errs = append(errs, err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mask := rwMask
		if readOnly {
			mask = roMask
		}
		if info.IsDir() {
			mask |= os.ModeSetgid | execMask
		}
		if err := os.Chmod(path, info.Mode()|mask); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply fsGroup %d to %s: %w", gid, dir, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("apply fsGroup %d to %s: %w", gid, dir, err)
	}
	return nil
}

// needsOwnershipChange: the root is not owned by the group, lacks the
// group's bits or setgid (upstream's requiresPermissionChange).
func needsOwnershipChange(dir string, gid int64, readOnly bool) bool {
	info, err := os.Stat(dir)
	if err != nil {
		return true
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || int64(st.Gid) != gid || !info.IsDir() {
		return true
	}
	want := rwMask
	if readOnly {
		want = roMask
	}
	want |= execMask
	return info.Mode().Perm()&want != want || info.Mode()&os.ModeSetgid == 0
}
