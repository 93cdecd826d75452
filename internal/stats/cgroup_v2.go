package stats

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"
)

// cgroupV2 reads the unified hierarchy mounted at root.
type cgroupV2 struct {
	root string
}

func (v *cgroupV2) read(r *fileReader, name string, now time.Time) (cgroupSample, error) {
	s := cgroupSample{Time: now}
	d, err := r.cgroupDir(v.root, name)
	if err != nil {
		return s, fmt.Errorf("read cgroup %s: %w", name, err)
	}
	defer d.close()
	var errs []error
	// cpu.stat's usage is there even without the cpu controller enabled.
	if b, err := r.readAt(d, "cpu.stat"); err != nil {
		errs = append(errs, err)
	} else {
		s.HasCPU, s.CPUUsage, s.CPUUser, s.CPUSystem = parseCPUStatV2(b)
	}
	if s.HasCPU {
		if w, ok := r.optUintAt(d, "cpu.weight"); ok && w > 0 {
			s.CPUShares = weightToShares(w)
		}
		if b, ok := r.optAt(d, "cpu.max"); ok {
			s.CPUQuota, s.CPUPeriod = parseCPUMax(b)
		}
	}
	if err := readMemoryV2(r, d, &s); err != nil {
		errs = append(errs, err)
	}
	if n, ok := r.optUintAt(d, "pids.current"); ok {
		s.HasPids, s.Pids = true, n
	}
	s.CPUPSI = r.readPSIAt(d, "cpu.pressure")
	s.MemoryPSI = r.readPSIAt(d, "memory.pressure")
	s.IOPSI = r.readPSIAt(d, "io.pressure")
	if !s.HasCPU && !s.HasMemory {
		if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", name, os.ErrNotExist))
		}
		return s, fmt.Errorf("read cgroup %s: %w", name, errors.Join(errs...))
	}
	return s, nil
}

// parseCPUStatV2 reads cpu.stat's cumulative times, in ns; ok says it has
// usage_usec.
func parseCPUStatV2(b []byte) (ok bool, usage, user, system uint64) {
	eachKV(b, func(k []byte, n uint64) {
		switch string(k) {
		case "usage_usec":
			ok, usage = true, n*uint64(time.Microsecond)
		case "user_usec":
			user = n * uint64(time.Microsecond)
		case "system_usec":
			system = n * uint64(time.Microsecond)
		}
	})
	return ok, usage, user, system
}

// parseCPUMax reads cpu.max, "$MAX $PERIOD"; quota 0 means none. A value
// that does not parse reads as 0.
func parseCPUMax(b []byte) (quota, period uint64) {
	q, p, ok := bytes.Cut(bytes.TrimSpace(b), []byte{' '})
	if !ok {
		return 0, 0
	}
	quota, _ = parseUint(q)
	period, _ = parseUint(p)
	return quota, period
}

func readMemoryV2(r *fileReader, d dirFD, s *cgroupSample) error {
	usage, err := r.uintAt(d, "memory.current")
	if err != nil {
		return err
	}
	s.HasMemory, s.MemUsage = true, usage
	s.MemMaxUsage, _ = r.optUintAt(d, "memory.peak")
	if l, ok := r.optUintAt(d, "memory.max"); ok {
		s.MemLimit = limit(l)
	}
	var st memoryStatV2
	if b, ok := r.optAt(d, "memory.stat"); ok {
		st = parseMemoryStatV2(b)
	}
	st.apply(s)
	s.MemWorkingSet = workingSet(usage, st.InactiveFile)
	if b, ok := r.optAt(d, "memory.events"); ok {
		s.MemFailcnt = parseMemoryEventsMax(b)
	}
	if swap, ok := r.optUintAt(d, "memory.swap.current"); ok {
		s.HasSwap, s.SwapUsage = true, swap
		if l, ok := r.optUintAt(d, "memory.swap.max"); ok {
			s.SwapLimit = limit(l)
		}
	}
	return nil
}

// memoryStatV2 is what berth reports from a v2 memory.stat; every field
// counts the cgroup and its descendants.
type memoryStatV2 struct {
	Anon, File, FileMapped, InactiveFile uint64
	PgFault, PgMajFault                  uint64
}

func parseMemoryStatV2(b []byte) memoryStatV2 {
	var m memoryStatV2
	eachKV(b, func(k []byte, n uint64) {
		switch string(k) {
		case "anon":
			m.Anon = n
		case "file":
			m.File = n
		case "file_mapped":
			m.FileMapped = n
		case "inactive_file":
			m.InactiveFile = n
		case "pgfault":
			m.PgFault = n
		case "pgmajfault":
			m.PgMajFault = n
		}
	})
	return m
}

// apply sets s's fields that memory.stat gives (not the working set, which
// needs the usage).
func (m memoryStatV2) apply(s *cgroupSample) {
	s.MemRSS, s.MemCache, s.MemMappedFile = m.Anon, m.File, m.FileMapped
	s.PgFault, s.HierPgFault = m.PgFault, m.PgFault
	s.PgMajFault, s.HierPgMajFault = m.PgMajFault, m.PgMajFault
}

// parseMemoryEventsMax is memory.events' "max": how often usage hit the
// limit, v1's failcnt.
func parseMemoryEventsMax(b []byte) uint64 {
	var max uint64
	eachKV(b, func(k []byte, n uint64) {
		if string(k) == "max" {
			max = n
		}
	})
	return max
}

// weightToShares converts cpu.weight back to v1 shares the way cAdvisor
// does, so that container_spec_cpu_shares reads the same on both.
func weightToShares(w uint64) uint64 {
	return 2 + (w-1)*262142/9999
}

func (v *cgroupV2) children(name string) ([]string, error) {
	return listChildren(join(v.root, name))
}

func (v *cgroupV2) procs(r *fileReader, name string) ([]int, error) {
	return r.readProcs(v.root, name)
}
