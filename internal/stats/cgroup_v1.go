package stats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cgroupV1 reads the v1 controllers berth needs, each from its own mount
// below the cgroup root (named "cpuacct", "cpu,cpuacct", ... by distro).
type cgroupV1 struct {
	cpuacct, cpu, memory, pids string // mount dirs; "" when not mounted
}

func newCgroupV1(mount string) (*cgroupV1, error) {
	entries, err := os.ReadDir(mount)
	if err != nil {
		return nil, fmt.Errorf("read cgroup mounts: %w", err)
	}
	find := func(controller string) string {
		// A plain name wins (often a symlink to the joint mount).
		if fi, err := os.Stat(filepath.Join(mount, controller)); err == nil && fi.IsDir() {
			return filepath.Join(mount, controller)
		}
		for _, e := range entries {
			if slices.Contains(strings.Split(e.Name(), ","), controller) {
				return filepath.Join(mount, e.Name())
			}
		}
		return ""
	}
	v := &cgroupV1{cpuacct: find("cpuacct"), cpu: find("cpu"), memory: find("memory"), pids: find("pids")}
	if v.cpuacct == "" && v.memory == "" {
		return nil, fmt.Errorf("no cpuacct or memory cgroup controller under %s", mount)
	}
	return v, nil
}

func (v *cgroupV1) read(name string, now time.Time) (cgroupSample, error) {
	s := cgroupSample{Time: now}
	var errs []error
	if v.cpuacct != "" {
		dir := join(v.cpuacct, name)
		if usage, err := readUint(filepath.Join(dir, "cpuacct.usage")); err != nil {
			errs = append(errs, err)
		} else {
			s.HasCPU, s.CPUUsage = true, usage
			if b, err := os.ReadFile(filepath.Join(dir, "cpuacct.stat")); err == nil {
				eachKV(b, func(k string, n uint64) {
					switch k {
					case "user":
						s.CPUUser = n * uint64(time.Second) / userHZ
					case "system":
						s.CPUSystem = n * uint64(time.Second) / userHZ
					}
				})
			}
		}
	}
	if v.cpu != "" && s.HasCPU {
		dir := join(v.cpu, name)
		s.CPUShares, _ = readUint(filepath.Join(dir, "cpu.shares"))
		s.CPUPeriod, _ = readUint(filepath.Join(dir, "cpu.cfs_period_us"))
		s.CPUQuota, _ = readUint(filepath.Join(dir, "cpu.cfs_quota_us"))
	}
	if v.memory != "" {
		if err := v.readMemory(join(v.memory, name), &s); err != nil {
			errs = append(errs, err)
		}
	}
	if v.pids != "" {
		if n, err := readUint(filepath.Join(join(v.pids, name), "pids.current")); err == nil {
			s.HasPids, s.Pids = true, n
		}
	}
	if !s.HasCPU && !s.HasMemory {
		if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", name, os.ErrNotExist))
		}
		return s, fmt.Errorf("read cgroup %s: %w", name, errors.Join(errs...))
	}
	return s, nil
}

func (v *cgroupV1) readMemory(dir string, s *cgroupSample) error {
	usage, err := readUint(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return err
	}
	s.HasMemory, s.MemUsage = true, usage
	s.MemMaxUsage, _ = readUint(filepath.Join(dir, "memory.max_usage_in_bytes"))
	s.MemFailcnt, _ = readUint(filepath.Join(dir, "memory.failcnt"))
	if l, err := readUint(filepath.Join(dir, "memory.limit_in_bytes")); err == nil {
		s.MemLimit = limit(l)
	}
	var inactiveFile uint64
	if b, err := os.ReadFile(filepath.Join(dir, "memory.stat")); err == nil {
		eachKV(b, func(k string, n uint64) {
			switch k {
			case "total_cache":
				s.MemCache = n
			case "total_rss":
				s.MemRSS = n
			case "total_mapped_file":
				s.MemMappedFile = n
			case "total_inactive_file":
				inactiveFile = n
			case "pgfault":
				s.PgFault = n
			case "pgmajfault":
				s.PgMajFault = n
			case "total_pgfault":
				s.HierPgFault = n
			case "total_pgmajfault":
				s.HierPgMajFault = n
			}
		})
	}
	s.MemWorkingSet = workingSet(usage, inactiveFile)
	// memsw counts memory and swap together; only there when swap
	// accounting is on.
	if memsw, err := readUint(filepath.Join(dir, "memory.memsw.usage_in_bytes")); err == nil {
		s.HasSwap = true
		if memsw > usage {
			s.SwapUsage = memsw - usage
		}
		if l, err := readUint(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil && limit(l) != 0 && s.MemLimit != 0 && l > s.MemLimit {
			s.SwapLimit = l - s.MemLimit
		}
	}
	return nil
}

// children lists child cgroups in the memory hierarchy, or cpuacct's when
// memory is not mounted; berth's pod and container cgroups exist in all.
func (v *cgroupV1) children(name string) ([]string, error) {
	return listChildren(join(v.primary(), name))
}

func (v *cgroupV1) procs(name string) ([]int, error) {
	return readProcs(filepath.Join(join(v.primary(), name), "cgroup.procs"))
}

func (v *cgroupV1) primary() string {
	if v.memory != "" {
		return v.memory
	}
	return v.cpuacct
}
