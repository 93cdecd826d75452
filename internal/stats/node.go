package stats

import (
	"bufio"
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
	fields := map[string]*uint64{
		"MemTotal:": &m.MemTotal, "MemFree:": &m.MemFree, "Cached:": &m.Cached,
		"AnonPages:": &m.AnonPages, "Inactive(file):": &m.InactiveFile,
		"SwapTotal:": &m.SwapTotal, "SwapFree:": &m.SwapFree,
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 {
			continue
		}
		if p, ok := fields[f[0]]; ok {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return m, fmt.Errorf("parse meminfo %s: %w", f[0], err)
			}
			if len(f) == 3 && f[2] == "kB" {
				v *= 1024
			}
			*p = v
		}
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
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "cpu":
			var v [8]uint64
			for i := 0; i < len(v) && i+1 < len(f); i++ {
				n, err := strconv.ParseUint(f[i+1], 10, 64)
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
			if len(f) > 1 {
				if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil {
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

func readRlimit(procRoot string) rlimit {
	var r rlimit
	// The ceiling is the smaller of pid_max and threads-max: both bound tasks.
	for _, f := range []string{"sys/kernel/pid_max", "sys/kernel/threads-max"} {
		if v, err := readUint(filepath.Join(procRoot, f)); err == nil {
			if !r.HasMax || int64(v) < r.MaxPID {
				r.MaxPID, r.HasMax = int64(v), true
			}
		}
	}
	// /proc/loadavg "0.1 0.2 0.3 2/345 678": 345 tasks exist.
	if b, err := os.ReadFile(filepath.Join(procRoot, "loadavg")); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 4 {
			if _, total, ok := strings.Cut(f[3], "/"); ok {
				if n, err := strconv.ParseInt(total, 10, 64); err == nil {
					r.Running, r.HasRun = n, true
				}
			}
		}
	}
	return r
}

// readNode samples the node as cAdvisor's root container: the root cgroup
// where it has the numbers (v1), /proc otherwise. Memory limit is the
// machine's memory, so that "available" is what is left of it.
func readNode(cg cgroupFS, procRoot string, now time.Time) (cgroupSample, error) {
	s, _ := cg.read("/", now) // the root may lack files; /proc fills in
	s.Time = now
	b, err := os.ReadFile(filepath.Join(procRoot, "meminfo"))
	if err != nil {
		return s, fmt.Errorf("read meminfo: %w", err)
	}
	mi, err := parseMeminfo(b)
	if err != nil {
		return s, err
	}
	if !s.HasCPU {
		b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
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
		rootMemoryFromStat(cg, &s, mi)
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
func rootMemoryFromStat(cg cgroupFS, s *cgroupSample, mi meminfo) {
	s.HasMemory = true
	if v2, ok := cg.(*cgroupV2); ok {
		if b, err := os.ReadFile(filepath.Join(v2.root, "memory.stat")); err == nil {
			var inactiveFile uint64
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
			s.MemUsage = s.MemRSS + s.MemCache
			s.MemWorkingSet = workingSet(s.MemUsage, inactiveFile)
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
