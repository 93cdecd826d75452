package stats

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
// such as "/kubepods/burstable/pod<uid>". The fileReader is the caller's
// (one housekeeping pass's); the hierarchies keep no state that changes.
type cgroupFS interface {
	// read samples a cgroup; an error wrapping fs.ErrNotExist means the
	// cgroup is gone.
	read(r *fileReader, path string, now time.Time) (cgroupSample, error)
	// children lists the names of a cgroup's child cgroups.
	children(path string) ([]string, error)
	// procs lists the processes directly in a cgroup, in a slice valid
	// until r's next procs.
	procs(r *fileReader, path string) ([]int, error)
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

// parseUint parses one unsigned number; "max" reads as 0, berth's "no
// limit", and so does a negative number (cpu.cfs_quota_us reports -1 for
// none).
func parseUint(b []byte) (uint64, error) {
	if string(b) == "max" {
		return 0, nil
	}
	// string(b) of a short number is converted on the stack: strconv
	// copies it before keeping it in an error. Negative numbers are tried
	// first because a failed ParseUint allocates its error.
	if len(b) > 0 && b[0] == '-' {
		if i, err := strconv.ParseInt(string(b), 10, 64); err == nil && i < 0 {
			return 0, nil
		}
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", b, err)
	}
	return v, nil
}

// eachKV calls f for every "key value" line of a flat-keyed file such as
// memory.stat or cpu.stat, skipping lines whose value is not a number.
// key is only valid during the call (switch on string(key) allocates
// nothing).
func eachKV(b []byte, f func(key []byte, v uint64)) {
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			continue
		}
		f(k, n)
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

// readProcs reads the cgroup.procs file of cgroup name in the hierarchy
// mounted at root into r.pids.
func (r *fileReader) readProcs(root, name string) ([]int, error) {
	d, err := r.cgroupDir(root, name)
	if err != nil {
		return nil, err
	}
	defer d.close()
	b, err := r.readAt(d, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	r.pids = parseProcs(b, r.pids[:0])
	return r.pids, nil
}

// parseProcs appends the PIDs of a cgroup.procs file to pids, skipping
// what is not a number.
func parseProcs(b []byte, pids []int) []int {
	for len(b) > 0 {
		var f []byte
		f, b = nextField(b)
		if len(f) == 0 {
			continue // trailing space
		}
		if pid, err := strconv.Atoi(string(f)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// nextField splits off the first whitespace-separated field of b.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !isSpace(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// parsePSI parses a PSI file (cpu.pressure, /proc/pressure/memory, ...):
// lines "some|full avg10=.. avg60=.. avg300=.. total=..".
func parsePSI(b []byte) (*statsapi.PSIStats, error) {
	psi := &statsapi.PSIStats{}
	seen := false
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		kind, rest := nextField(line)
		var d *statsapi.PSIData
		switch string(kind) {
		case "some":
			d = &psi.Some
		case "full":
			d = &psi.Full
		default:
			continue
		}
		seen = true
		for len(rest) > 0 {
			var kv []byte
			kv, rest = nextField(rest)
			if len(kv) == 0 {
				continue
			}
			k, v, _ := bytes.Cut(kv, []byte{'='})
			var err error
			switch string(k) {
			case "avg10":
				d.Avg10, err = strconv.ParseFloat(string(v), 64)
			case "avg60":
				d.Avg60, err = strconv.ParseFloat(string(v), 64)
			case "avg300":
				d.Avg300, err = strconv.ParseFloat(string(v), 64)
			case "total":
				d.Total, err = strconv.ParseUint(string(v), 10, 64)
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

// readPSIAt reads a PSI file of directory d; nil when the kernel does not
// offer it.
func (r *fileReader) readPSIAt(d dirFD, name string) *statsapi.PSIStats {
	b, ok := r.optAt(d, name)
	if !ok {
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
