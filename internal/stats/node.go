package stats

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// meminfo holds the /proc/meminfo fields berth uses, in bytes.
type meminfo struct {
	MemTotal, MemFree, Cached, AnonPages, InactiveFile, SwapTotal, SwapFree uint64
}

func parseMeminfo(b []byte) (meminfo, error) {
	var m meminfo
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		key, rest := nextField(line)
		var p *uint64
		switch string(key) {
		case "MemTotal:":
			p = &m.MemTotal
		case "MemFree:":
			p = &m.MemFree
		case "Cached:":
			p = &m.Cached
		case "AnonPages:":
			p = &m.AnonPages
		case "Inactive(file):":
			p = &m.InactiveFile
		case "SwapTotal:":
			p = &m.SwapTotal
		case "SwapFree:":
			p = &m.SwapFree
		default:
			continue
		}
		num, rest := nextField(rest)
		if len(num) == 0 {
			continue
		}
		v, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return m, fmt.Errorf("parse meminfo %s: %w", key, err)
		}
		// "kB" only when it is the third and last field.
		if unit, rest := nextField(rest); string(unit) == "kB" {
			if extra, _ := nextField(rest); len(extra) == 0 {
				v *= 1024
			}
		}
		*p = v
	}
	if m.MemTotal == 0 {
		return m, fmt.Errorf("meminfo has no MemTotal")
	}
	return m, nil
}

// procStat is what /proc/stat tells about the node: busy CPU time and the
// boot time.
type procStat struct {
	CPUUsage, CPUUser, CPUSystem uint64 // cumulative ns over all CPUs
	BootTime                     time.Time
}

// parseProcStat reads the aggregate "cpu" line (user nice system idle
// iowait irq softirq steal, in USER_HZ) and btime.
func parseProcStat(b []byte) (procStat, error) {
	var ps procStat
	found := false
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		// Only two lines matter; the others (intr has thousands of
		// fields) are not split.
		key, rest := nextField(line)
		switch string(key) {
		case "cpu":
			var v [8]uint64
			for i := range v {
				var f []byte
				if f, rest = nextField(rest); len(f) == 0 {
					break
				}
				n, err := strconv.ParseUint(string(f), 10, 64)
				if err != nil {
					return ps, fmt.Errorf("parse /proc/stat cpu line: %w", err)
				}
				v[i] = n
			}
			tick := uint64(time.Second) / userHZ
			user, nice, system, irq, softirq, steal := v[0], v[1], v[2], v[5], v[6], v[7]
			ps.CPUUser = (user + nice) * tick
			ps.CPUSystem = (system + irq + softirq) * tick
			ps.CPUUsage = (user + nice + system + irq + softirq + steal) * tick
			found = true
		case "btime":
			if f, _ := nextField(rest); len(f) > 0 {
				if sec, err := strconv.ParseInt(string(f), 10, 64); err == nil {
					ps.BootTime = time.Unix(sec, 0)
				}
			}
		}
	}
	if !found {
		return ps, fmt.Errorf("/proc/stat has no cpu line")
	}
	return ps, nil
}

// rlimit is the node's task limit and count (upstream pidlimit.Stats).
type rlimit struct {
	MaxPID, Running int64
	HasMax, HasRun  bool
}

func readRlimit(r *fileReader, procRoot string) rlimit {
	var l rlimit
	// The ceiling is the smaller of pid_max and threads-max: both bound tasks.
	for _, f := range []string{"sys/kernel/pid_max", "sys/kernel/threads-max"} {
		if v, err := r.uintFile(filepath.Join(procRoot, f)); err == nil {
			if !l.HasMax || int64(v) < l.MaxPID {
				l.MaxPID, l.HasMax = int64(v), true
			}
		}
	}
	// /proc/loadavg "0.1 0.2 0.3 2/345 678": 345 tasks exist.
	if b, err := r.readFile(filepath.Join(procRoot, "loadavg")); err == nil {
		l.Running, l.HasRun = parseLoadavgTasks(b)
	}
	return l
}

// parseLoadavgTasks reads the number of tasks from /proc/loadavg.
func parseLoadavgTasks(b []byte) (int64, bool) {
	var f []byte
	for range 4 {
		if f, b = nextField(b); len(f) == 0 {
			return 0, false
		}
	}
	_, total, ok := bytes.Cut(f, []byte{'/'})
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(total), 10, 64)
	return n, err == nil
}

// readNode samples the node as cAdvisor's root container: the root cgroup
// where it has the numbers (v1), /proc otherwise. Memory limit is the
// machine's memory, so that "available" is what is left of it.
func readNode(r *fileReader, cg cgroupFS, procRoot string, now time.Time) (cgroupSample, error) {
	s, _ := cg.read(r, "/", now) // the root may lack files; /proc fills in
	s.Time = now
	b, err := r.readFile(filepath.Join(procRoot, "meminfo"))
	if err != nil {
		return s, fmt.Errorf("read meminfo: %w", err)
	}
	mi, err := parseMeminfo(b)
	if err != nil {
		return s, err
	}
	if !s.HasCPU {
		b, err := r.readFile(filepath.Join(procRoot, "stat"))
		if err != nil {
			return s, fmt.Errorf("read /proc/stat: %w", err)
		}
		ps, err := parseProcStat(b)
		if err != nil {
			return s, err
		}
		s.HasCPU, s.CPUUsage, s.CPUUser, s.CPUSystem = true, ps.CPUUsage, ps.CPUUser, ps.CPUSystem
	}
	if !s.HasMemory {
		rootMemoryFromStat(r, cg, &s, mi)
	}
	s.MemLimit = mi.MemTotal
	s.HasSwap, s.SwapUsage, s.SwapLimit = true, 0, mi.SwapTotal
	if mi.SwapTotal > mi.SwapFree {
		s.SwapUsage = mi.SwapTotal - mi.SwapFree
	}
	return s, nil
}

// rootMemoryFromStat fills the root's memory on cgroup v2, which has no
// memory.current at the root: anon+file from the root memory.stat, as runc
// does so that usage means what v1's usage_in_bytes means, or meminfo.
func rootMemoryFromStat(r *fileReader, cg cgroupFS, s *cgroupSample, mi meminfo) {
	s.HasMemory = true
	if v2, ok := cg.(*cgroupV2); ok {
		if b, err := r.readFile(filepath.Join(v2.root, "memory.stat")); err == nil {
			st := parseMemoryStatV2(b)
			st.apply(s)
			s.MemUsage = s.MemRSS + s.MemCache
			s.MemWorkingSet = workingSet(s.MemUsage, st.InactiveFile)
			return
		}
	}
	s.MemUsage = mi.MemTotal - mi.MemFree
	s.MemRSS, s.MemCache = mi.AnonPages, mi.Cached
	s.MemWorkingSet = workingSet(s.MemUsage, mi.InactiveFile)
}

// machineInfo identifies the machine for cAdvisor's machine_* metrics.
type machineInfo struct {
	MachineID, SystemUUID, BootID string
	NumCores                      int
	MemoryCapacity                uint64
	BootTime                      time.Time
}

func readMachineInfo(procRoot string, numCPU int) machineInfo {
	m := machineInfo{NumCores: numCPU}
	first := func(paths ...string) string {
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		return ""
	}
	m.MachineID = first("/etc/machine-id", "/var/lib/dbus/machine-id")
	m.SystemUUID = first("/sys/class/dmi/id/product_uuid")
	m.BootID = first(filepath.Join(procRoot, "sys/kernel/random/boot_id"))
	if b, err := os.ReadFile(filepath.Join(procRoot, "meminfo")); err == nil {
		if mi, err := parseMeminfo(b); err == nil {
			m.MemoryCapacity = mi.MemTotal
		}
	}
	if b, err := os.ReadFile(filepath.Join(procRoot, "stat")); err == nil {
		if ps, err := parseProcStat(b); err == nil {
			m.BootTime = ps.BootTime
		}
	}
	return m
}
