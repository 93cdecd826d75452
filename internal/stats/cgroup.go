package stats

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// cgroupSample is one reading of one cgroup, in the units cAdvisor reports.
// Fields a hierarchy does not offer stay zero with their Has* flag false.
type cgroupSample struct {
	Time time.Time

	HasCPU                         bool
	CPUUsage, CPUUser, CPUSystem   uint64 // cumulative ns
	CPUShares, CPUPeriod, CPUQuota uint64 // settings; quota 0 means none

	HasMemory     bool
	MemUsage      uint64
	MemMaxUsage   uint64
	MemWorkingSet uint64 // usage minus inactive file pages, as cAdvisor
	MemRSS        uint64
	MemCache      uint64
	MemMappedFile uint64
	MemFailcnt    uint64
	// PgFault and PgMajFault count this cgroup alone (cAdvisor's
	// "container" scope, what the Summary API reports); the Hier* fields
	// include its descendants. cgroup v2 only offers the latter.
	PgFault, PgMajFault         uint64
	HierPgFault, HierPgMajFault uint64
	MemLimit                    uint64 // 0: unlimited

	HasSwap   bool
	SwapUsage uint64
	SwapLimit uint64 // 0: unlimited

	HasPids bool
	Pids    uint64 // tasks (threads), as the pids controller counts them

	// Pressure stall information, cgroup v2 only.
	CPUPSI, MemoryPSI, IOPSI *statsapi.PSIStats
}

// cgroupFS reads one cgroup hierarchy (v1 or v2). Paths are cgroup names
// such as "/kubepods/burstable/pod<uid>".
type cgroupFS interface {
	// read samples a cgroup; an error wrapping fs.ErrNotExist means the
	// cgroup is gone.
	read(path string, now time.Time) (cgroupSample, error)
	// children lists the names of a cgroup's child cgroups.
	children(path string) ([]string, error)
	// procs lists the processes directly in a cgroup.
	procs(path string) ([]int, error)
}

// memoryUnlimited is the size above which a limit means "none"; the kernel
// rounds the unset limit down to a page multiple, so it is not MaxInt64.
const memoryUnlimited = uint64(1) << 62

// userHZ converts the clock ticks of cpuacct.stat to nanoseconds; Linux
// reports them in USER_HZ, 100 on every architecture berth runs on.
const userHZ = 100

// cgroup2SuperMagic is CGROUP2_SUPER_MAGIC from linux/magic.h.
const cgroup2SuperMagic = 0x63677270

// newCgroupFS returns the reader for the hierarchy mounted at mount: cgroup
// v2 when mount itself is a cgroup2 file system, else the v1 controllers
// below it (hybrid hosts keep v1 for the resource controllers).
func newCgroupFS(mount string) (cgroupFS, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(mount, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", mount, err)
	}
	if st.Type == cgroup2SuperMagic {
		return &cgroupV2{root: mount}, nil
	}
	return newCgroupV1(mount)
}

// readUint reads a file holding one unsigned number; "max" reads as 0,
// berth's "no limit".
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseUint(strings.TrimSpace(string(b)))
}

func parseUint(s string) (uint64, error) {
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Some files report -1 for "none" (cpu.cfs_quota_us).
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return v, nil
}

// eachKV calls f for every "key value" line of a flat-keyed file such as
// memory.stat or cpu.stat.
func eachKV(b []byte, f func(key string, v uint64)) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			continue
		}
		f(string(k), n)
	}
}

// limit turns a raw limit into berth's form, 0 for none.
func limit(v uint64) uint64 {
	if v >= memoryUnlimited {
		return 0
	}
	return v
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

// listChildren lists the subdirectories of dir.
func listChildren(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// readProcs parses a cgroup.procs file.
func readProcs(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// parsePSI parses a PSI file (cpu.pressure, /proc/pressure/memory, ...).
func parsePSI(b []byte) (*statsapi.PSIStats, error) {
	psi := &statsapi.PSIStats{}
	seen := false
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var d *statsapi.PSIData
		switch fields[0] {
		case "some":
			d = &psi.Some
		case "full":
			d = &psi.Full
		default:
			continue
		}
		seen = true
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "avg10":
				d.Avg10, err = strconv.ParseFloat(v, 64)
			case "avg60":
				d.Avg60, err = strconv.ParseFloat(v, 64)
			case "avg300":
				d.Avg300, err = strconv.ParseFloat(v, 64)
			case "total":
				d.Total, err = strconv.ParseUint(v, 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("parse PSI %q: %w", kv, err)
			}
		}
	}
	if !seen {
		return nil, errors.New("no PSI data")
	}
	return psi, nil
}

// readPSI reads a PSI file; nil when the kernel does not offer it.
func readPSI(path string) *statsapi.PSIStats {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	psi, err := parsePSI(b)
	if err != nil {
		return nil
	}
	return psi
}

// join joins a hierarchy root and a cgroup name.
func join(root, name string) string {
	return filepath.Join(root, filepath.FromSlash(name))
}
