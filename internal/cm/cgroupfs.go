package cm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// cgroup2SuperMagic is CGROUP2_SUPER_MAGIC from linux/magic.h.
const cgroup2SuperMagic = 0x63677270

// cgroupFS writes cgroups on the host: one unified hierarchy (v2) or one
// per controller below root (v1, also on hybrid hosts, where the unified
// hierarchy has no controllers). Values are written with plain
// open/write/close; nothing is executed.
type cgroupFS struct {
	root string
	v2   bool
	// v1 maps each controller berth writes to its hierarchy's mount.
	v1 map[string]string
	// hugePageSizes are the host's page sizes when the hugetlb controller
	// is there; nil leaves huge pages alone.
	hugePageSizes []int64

	// enabled remembers the v2 cgroups whose subtree_control already
	// delegates the controllers, so that a pod's cgroup costs no reads of
	// its parents'.
	mu      sync.Mutex
	enabled map[string]bool

	// openFlags open a file to write; tests add O_CREATE, as a directory
	// outside cgroupfs has no files of its own.
	openFlags int
}

// newCgroupFS inspects the cgroup mount at root (/sys/fs/cgroup) and the
// huge page sizes under hugePagesDir (/sys/kernel/mm/hugepages).
func newCgroupFS(root, hugePagesDir string) (*cgroupFS, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil {
		return nil, fmt.Errorf("cgroup mount %s: %w", root, err)
	}
	f := &cgroupFS{root: root, enabled: map[string]bool{}, openFlags: os.O_WRONLY | os.O_TRUNC}
	sizes := hostHugePageSizes(hugePagesDir)
	if st.Type == cgroup2SuperMagic {
		f.v2 = true
		b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
		if err != nil {
			return nil, fmt.Errorf("cgroup v2 controllers: %w", err)
		}
		if slices.Contains(strings.Fields(string(b)), "hugetlb") {
			f.hugePageSizes = sizes
		}
		return f, nil
	}
	f.v1 = map[string]string{}
	for _, c := range hierarchies {
		dir := filepath.Join(root, c)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			f.v1[c] = dir
		}
	}
	for _, c := range []string{"cpu", "memory"} {
		if f.v1[c] == "" {
			return nil, fmt.Errorf("cgroup v1 %s controller not mounted under %s", c, root)
		}
	}
	if f.v1["hugetlb"] != "" {
		f.hugePageSizes = sizes
	}
	return f, nil
}

// hostHugePageSizes lists the page sizes the kernel supports, in bytes,
// from directories named like hugepages-2048kB.
func hostHugePageSizes(dir string) []int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var sizes []int64
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		s, ok = strings.CutSuffix(s, "kB")
		if !ok {
			continue
		}
		if kb, err := strconv.ParseInt(s, 10, 64); err == nil && kb > 0 {
			sizes = append(sizes, kb*1024)
		}
	}
	slices.Sort(sizes)
	return sizes
}

// dirs are the directories of a cgroup, one per hierarchy berth writes.
func (f *cgroupFS) dirs(name string) []string {
	if f.v2 {
		return []string{filepath.Join(f.root, name)}
	}
	var out []string
	for _, c := range hierarchies {
		if m := f.v1[c]; m != "" {
			out = append(out, filepath.Join(m, name))
		}
	}
	return out
}

// exists reports whether the cgroup is there in every hierarchy.
func (f *cgroupFS) exists(name string) bool {
	for _, d := range f.dirs(name) {
		if _, err := os.Stat(d); err != nil {
			return false
		}
	}
	return true
}

// create makes the cgroup (and its parents) and applies rc.
func (f *cgroupFS) create(name string, rc ResourceConfig) error {
	if f.v2 {
		if err := f.mkdirV2(name); err != nil {
			return err
		}
	} else {
		for _, d := range f.dirs(name) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("create cgroup %s: %w", name, err)
			}
		}
	}
	return f.update(name, rc)
}

// mkdirV2 creates a v2 cgroup level by level, delegating each parent's
// controllers to its children first (runc does the same), so that the
// new cgroup has cpu.weight, memory.max and pids.max.
func (f *cgroupFS) mkdirV2(name string) error {
	parts := strings.Split(strings.Trim(name, "/"), "/")
	cur := f.root
	for _, p := range parts {
		if p == "" {
			continue
		}
		if err := f.enableControllers(cur); err != nil {
			return err
		}
		cur = filepath.Join(cur, p)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", name, err)
		}
	}
	return nil
}

// enableControllers writes every controller dir offers to its
// cgroup.subtree_control, once.
func (f *cgroupFS) enableControllers(dir string) error {
	f.mu.Lock()
	done := f.enabled[dir]
	f.mu.Unlock()
	if done {
		return nil
	}
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read controllers of %s: %w", dir, err)
	}
	on, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("read subtree_control of %s: %w", dir, err)
	}
	enabled := strings.Fields(string(on))
	var add []string
	for _, c := range strings.Fields(string(avail)) {
		if !slices.Contains(enabled, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) > 0 {
		if err := f.write(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(add, " ")); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.enabled[dir] = true
	f.mu.Unlock()
	return nil
}

// update applies rc to an existing cgroup.
func (f *cgroupFS) update(name string, rc ResourceConfig) error {
	writes := files(rc, f.v2, f.hugePageSizes)
	for i := 0; i < len(writes); i++ {
		w := writes[i]
		dir, ok := f.dirOf(name, w.controller)
		if !ok {
			continue // a controller this host does not have (pids on an old kernel)
		}
		err := f.write(filepath.Join(dir, w.file), w.value)
		if err != nil && w.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// A shorter CFS period can be refused while the old quota is in
		// place; runc then writes the quota first and the period again.
		if err != nil && w.file == "cpu.cfs_period_us" && errors.Is(err, syscall.EINVAL) &&
			i+1 < len(writes) && writes[i+1].file == "cpu.cfs_quota_us" {
			q := writes[i+1]
			if err = f.write(filepath.Join(dir, q.file), q.value); err == nil {
				err = f.write(filepath.Join(dir, w.file), w.value)
			}
			i++
		}
		if err != nil {
			return fmt.Errorf("set cgroup %s: %w", name, err)
		}
	}
	return nil
}

// dirOf is the directory of a cgroup in a controller's hierarchy.
func (f *cgroupFS) dirOf(name, controller string) (string, bool) {
	if f.v2 {
		return filepath.Join(f.root, name), true
	}
	m := f.v1[controller]
	return filepath.Join(m, name), m != ""
}

// remove deletes an empty cgroup from every hierarchy under root, also
// those the runtime created it in (cpuset, devices, freezer...). rmdir
// only removes empty cgroups: one still in use stays.
func (f *cgroupFS) remove(name string) error {
	dirs := []string{filepath.Join(f.root, name)}
	if !f.v2 {
		entries, err := os.ReadDir(f.root)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() || e.Type()&fs.ModeSymlink != 0 {
				dirs = append(dirs, filepath.Join(f.root, e.Name(), name))
			}
		}
	}
	var errs []error
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// readInt reads a number from a cgroup file ("max" is -1).
func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// write writes value to an existing cgroup file.
func (f *cgroupFS) write(path, value string) error {
	fh, err := os.OpenFile(path, f.openFlags, 0o644)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(value)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}
