package stats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cgroupV2 reads the unified hierarchy mounted at root.
type cgroupV2 struct {
	root string
}

func (v *cgroupV2) read(name string, now time.Time) (cgroupSample, error) {
	dir := join(v.root, name)
	s := cgroupSample{Time: now}
	var errs []error
	// cpu.stat's usage is there even without the cpu controller enabled.
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.stat")); err != nil {
		errs = append(errs, err)
	} else {
		eachKV(b, func(k string, n uint64) {
			switch k {
			case "usage_usec":
				s.HasCPU, s.CPUUsage = true, n*uint64(time.Microsecond)
			case "user_usec":
				s.CPUUser = n * uint64(time.Microsecond)
			case "system_usec":
				s.CPUSystem = n * uint64(time.Microsecond)
			}
		})
	}
	if s.HasCPU {
		if w, err := readUint(filepath.Join(dir, "cpu.weight")); err == nil && w > 0 {
			s.CPUShares = weightToShares(w)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
			if quota, period, ok := strings.Cut(strings.TrimSpace(string(b)), " "); ok {
				s.CPUQuota, _ = parseUint(quota)
				s.CPUPeriod, _ = parseUint(period)
			}
		}
	}
	if err := v.readMemory(dir, &s); err != nil {
		errs = append(errs, err)
	}
	if n, err := readUint(filepath.Join(dir, "pids.current")); err == nil {
		s.HasPids, s.Pids = true, n
	}
	s.CPUPSI = readPSI(filepath.Join(dir, "cpu.pressure"))
	s.MemoryPSI = readPSI(filepath.Join(dir, "memory.pressure"))
	s.IOPSI = readPSI(filepath.Join(dir, "io.pressure"))
	if !s.HasCPU && !s.HasMemory {
		if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", name, os.ErrNotExist))
		}
		return s, fmt.Errorf("read cgroup %s: %w", name, errors.Join(errs...))
	}
	return s, nil
}

func (v *cgroupV2) readMemory(dir string, s *cgroupSample) error {
	usage, err := readUint(filepath.Join(dir, "memory.current"))
	if err != nil {
		return err
	}
	s.HasMemory, s.MemUsage = true, usage
	s.MemMaxUsage, _ = readUint(filepath.Join(dir, "memory.peak"))
	if l, err := readUint(filepath.Join(dir, "memory.max")); err == nil {
		s.MemLimit = limit(l)
	}
	var inactiveFile uint64
	if b, err := os.ReadFile(filepath.Join(dir, "memory.stat")); err == nil {
		eachKV(b, func(k string, n uint64) {
			switch k {
			case "anon":
				s.MemRSS = n
			case "file":
				s.MemCache = n
			case "file_mapped":
				s.MemMappedFile = n
			case "inactive_file":
				inactiveFile = n
			case "pgfault":
				s.PgFault, s.HierPgFault = n, n
			case "pgmajfault":
				s.PgMajFault, s.HierPgMajFault = n, n
			}
		})
	}
	s.MemWorkingSet = workingSet(usage, inactiveFile)
	if b, err := os.ReadFile(filepath.Join(dir, "memory.events")); err == nil {
		eachKV(b, func(k string, n uint64) {
			if k == "max" {
				s.MemFailcnt = n
			}
		})
	}
	if swap, err := readUint(filepath.Join(dir, "memory.swap.current")); err == nil {
		s.HasSwap, s.SwapUsage = true, swap
		if l, err := readUint(filepath.Join(dir, "memory.swap.max")); err == nil {
			s.SwapLimit = limit(l)
		}
	}
	return nil
}

// weightToShares converts cpu.weight back to v1 shares the way cAdvisor
// does, so that container_spec_cpu_shares reads the same on both.
func weightToShares(w uint64) uint64 {
	return 2 + (w-1)*262142/9999
}

func (v *cgroupV2) children(name string) ([]string, error) {
	return listChildren(join(v.root, name))
}

func (v *cgroupV2) procs(name string) ([]int, error) {
	return readProcs(filepath.Join(join(v.root, name), "cgroup.procs"))
}
