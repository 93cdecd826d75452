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
	// cpuWithCPUAcct says cpu and cpuacct are one mount (the usual
	// "cpu,cpuacct"), so one open directory serves both.
	cpuWithCPUAcct bool
	// swap says memory.memsw.* exist: the kernel accounts swap (a boot
	// option), for every cgroup or none.
	swap bool
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
	if v.cpu != "" && v.cpuacct != "" {
		a, errA := os.Stat(v.cpu)
		b, errB := os.Stat(v.cpuacct)
		v.cpuWithCPUAcct = errA == nil && errB == nil && os.SameFile(a, b)
	}
	if v.memory != "" {
		_, err := os.Stat(filepath.Join(v.memory, "memory.memsw.usage_in_bytes"))
		v.swap = err == nil
	}
	return v, nil
}

func (v *cgroupV1) read(r *fileReader, name string, now time.Time) (cgroupSample, error) {
	s := cgroupSample{Time: now}
	var errs []error
	if v.cpuacct != "" {
		if err := v.readCPU(r, name, &s); err != nil {
			errs = append(errs, err)
		}
	}
	if v.memory != "" {
		if err := v.readMemory(r, name, &s); err != nil {
			errs = append(errs, err)
		}
	}
	if v.pids != "" {
		if d, err := r.cgroupDir(v.pids, name); err == nil {
			if n, ok := r.optUintAt(d, "pids.current"); ok {
				s.HasPids, s.Pids = true, n
			}
			d.close()
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

// readCPU reads cpuacct's usage and, when there is usage, cpu's settings.
func (v *cgroupV1) readCPU(r *fileReader, name string, s *cgroupSample) error {
	d, err := r.cgroupDir(v.cpuacct, name)
	if err != nil {
		return err
	}
	defer d.close()
	usage, err := r.uintAt(d, "cpuacct.usage")
	if err != nil {
		return err
	}
	s.HasCPU, s.CPUUsage = true, usage
	if b, ok := r.optAt(d, "cpuacct.stat"); ok {
		s.CPUUser, s.CPUSystem = parseCPUAcctStat(b)
	}
	if v.cpu == "" {
		return nil
	}
	cpu := d
	if !v.cpuWithCPUAcct {
		if cpu, err = r.cgroupDir(v.cpu, name); err != nil {
			return nil // settings stay zero, as when their files are missing
		}
		defer cpu.close()
	}
	s.CPUShares, _ = r.optUintAt(cpu, "cpu.shares")
	s.CPUPeriod, _ = r.optUintAt(cpu, "cpu.cfs_period_us")
	s.CPUQuota, _ = r.optUintAt(cpu, "cpu.cfs_quota_us")
	return nil
}

// parseCPUAcctStat reads cpuacct.stat's user and system time, in ns.
func parseCPUAcctStat(b []byte) (user, system uint64) {
	eachKV(b, func(k []byte, n uint64) {
		switch string(k) {
		case "user":
			user = n * uint64(time.Second) / userHZ
		case "system":
			system = n * uint64(time.Second) / userHZ
		}
	})
	return user, system
}

func (v *cgroupV1) readMemory(r *fileReader, name string, s *cgroupSample) error {
	d, err := r.cgroupDir(v.memory, name)
	if err != nil {
		return err
	}
	defer d.close()
	usage, err := r.uintAt(d, "memory.usage_in_bytes")
	if err != nil {
		return err
	}
	s.HasMemory, s.MemUsage = true, usage
	s.MemMaxUsage, _ = r.optUintAt(d, "memory.max_usage_in_bytes")
	s.MemFailcnt, _ = r.optUintAt(d, "memory.failcnt")
	if l, ok := r.optUintAt(d, "memory.limit_in_bytes"); ok {
		s.MemLimit = limit(l)
	}
	var st memoryStatV1
	if b, ok := r.optAt(d, "memory.stat"); ok {
		st = parseMemoryStatV1(b)
	}
	s.MemCache, s.MemRSS, s.MemMappedFile = st.Cache, st.RSS, st.MappedFile
	s.PgFault, s.PgMajFault = st.PgFault, st.PgMajFault
	s.HierPgFault, s.HierPgMajFault = st.HierPgFault, st.HierPgMajFault
	s.MemWorkingSet = workingSet(usage, st.InactiveFile)
	// memsw counts memory and swap together.
	if !v.swap {
		return nil
	}
	if memsw, ok := r.optUintAt(d, "memory.memsw.usage_in_bytes"); ok {
		s.HasSwap = true
		if memsw > usage {
			s.SwapUsage = memsw - usage
		}
		if l, ok := r.optUintAt(d, "memory.memsw.limit_in_bytes"); ok && limit(l) != 0 && s.MemLimit != 0 && l > s.MemLimit {
			s.SwapLimit = l - s.MemLimit
		}
	}
	return nil
}

// memoryStatV1 is what berth reports from a v1 memory.stat: the total_*
// fields count the cgroup and its descendants, pgfault and pgmajfault the
// cgroup alone.
type memoryStatV1 struct {
	Cache, RSS, MappedFile, InactiveFile uint64 // total_*
	PgFault, PgMajFault                  uint64
	HierPgFault, HierPgMajFault          uint64 // total_pgfault, total_pgmajfault
}

func parseMemoryStatV1(b []byte) memoryStatV1 {
	var m memoryStatV1
	eachKV(b, func(k []byte, n uint64) {
		switch string(k) {
		case "total_cache":
			m.Cache = n
		case "total_rss":
			m.RSS = n
		case "total_mapped_file":
			m.MappedFile = n
		case "total_inactive_file":
			m.InactiveFile = n
		case "pgfault":
			m.PgFault = n
		case "pgmajfault":
			m.PgMajFault = n
		case "total_pgfault":
			m.HierPgFault = n
		case "total_pgmajfault":
			m.HierPgMajFault = n
		}
	})
	return m
}

// children lists child cgroups in the memory hierarchy, or cpuacct's when
// memory is not mounted; berth's pod and container cgroups exist in all.
func (v *cgroupV1) children(name string) ([]string, error) {
	return listChildren(join(v.primary(), name))
}

func (v *cgroupV1) procs(r *fileReader, name string) ([]int, error) {
	return r.readProcs(v.primary(), name)
}

func (v *cgroupV1) primary() string {
	if v.memory != "" {
		return v.memory
	}
	return v.cpuacct
}
