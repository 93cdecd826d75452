package stats

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// fsInfo describes the file system holding a path (statfs).
type fsInfo struct {
	Device                     string // e.g. /dev/vda1, from mountinfo
	Capacity, Available, Usage uint64 // bytes; Usage counts blocks in use
	Inodes, InodesFree         uint64
	dev                        uint64 // st_dev, to find Device
}

func statFS(path string) (fsInfo, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return fsInfo{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bsize := uint64(st.Bsize)
	info := fsInfo{
		Capacity:   st.Blocks * bsize,
		Available:  st.Bavail * bsize,
		Usage:      (st.Blocks - st.Bfree) * bsize,
		Inodes:     st.Files,
		InodesFree: st.Ffree,
	}
	var s syscall.Stat_t
	if err := syscall.Stat(path, &s); err == nil {
		info.dev = uint64(s.Dev)
	}
	return info, nil
}

// usage is the space and inodes some files take.
type usage struct {
	Bytes, Inodes uint64
}

func (u *usage) add(o usage) {
	u.Bytes += o.Bytes
	u.Inodes += o.Inodes
}

// diskBytes is what a file occupies on disk, as du counts it.
func diskBytes(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Blocks) * 512
	}
	return uint64(fi.Size())
}

// errWalkBudget stops a walk that reached its entry budget.
var errWalkBudget = errors.New("walk budget exhausted")

// dirUsage adds up the disk usage and inodes under dir, counting each hard
// link once and visiting at most budget entries; truncated says the budget
// ran out and the numbers are a lower bound. It never follows symlinks or
// leaves dir's file system, so a volume cannot make it walk the node.
func dirUsage(dir string, budget int) (u usage, truncated bool, err error) {
	root, err := os.Lstat(dir)
	if err != nil {
		return u, false, err
	}
	rootDev := uint64(0)
	if st, ok := root.Sys().(*syscall.Stat_t); ok {
		rootDev = uint64(st.Dev)
	}
	seen := map[uint64]struct{}{}
	visited := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if visited++; visited > budget {
			return errWalkBudget
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && d.IsDir() && p != dir && uint64(st.Dev) != rootDev {
			return filepath.SkipDir // a mount inside the volume
		}
		if ok && st.Nlink > 1 && !d.IsDir() {
			if _, dup := seen[st.Ino]; dup {
				return nil
			}
			seen[st.Ino] = struct{}{}
		}
		u.Inodes++
		u.Bytes += diskBytes(fi)
		return nil
	})
	if errors.Is(err, errWalkBudget) {
		return u, true, nil
	}
	return u, false, err
}

// logDirUsage reads a pod's log directory (PodLogsDir/<ns>_<name>_<uid>):
// files directly in it belong to the pod, files in each subdirectory to
// the container of that name (with its rotated and previous logs). It
// stats files; it does not walk deeper.
func logDirUsage(dir string) (pod usage, containers map[string]usage, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return pod, nil, err
	}
	containers = map[string]usage{}
	for _, e := range entries {
		if !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				pod.add(usage{Bytes: diskBytes(fi), Inodes: 1})
			}
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		u := usage{Inodes: 1} // the directory itself
		for _, f := range files {
			if fi, err := f.Info(); err == nil && !f.IsDir() {
				u.add(usage{Bytes: diskBytes(fi), Inodes: 1})
			}
		}
		containers[e.Name()] = u
	}
	return pod, containers, nil
}

// fileUsage is one file's usage; zero and false when it does not exist.
func fileUsage(path string) (usage, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return usage{}, false
	}
	return usage{Bytes: diskBytes(fi), Inodes: 1}, true
}

// mountDevices maps st_dev numbers to the mount source that cAdvisor names
// a file system by ("/dev/vda1", "overlay", "tmpfs"), from mountinfo.
func mountDevices(path string) (map[uint64]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[uint64]string{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		left, right, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) < 3 || len(rf) < 2 {
			continue
		}
		var major, minor uint64
		if _, err := fmt.Sscanf(lf[2], "%d:%d", &major, &minor); err != nil {
			continue
		}
		dev := mkdev(major, minor)
		if _, ok := out[dev]; !ok {
			out[dev] = rf[1]
		}
	}
	return out, s.Err()
}

// mkdev builds a Linux dev_t the way glibc's makedev does.
func mkdev(major, minor uint64) uint64 {
	return (major&0x00000fff)<<8 | (major&0xfffff000)<<32 | (minor & 0x000000ff) | (minor&0xffffff00)<<12
}
